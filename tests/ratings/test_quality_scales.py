"""Quality runs use the criterion's full scale: per-rater weighted kappa and AC1 on Likert."""

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics

from ratings.metrics import gwet_ac1
from ratings.models import AgreementSnapshot, Judgment, RaterQuality, Score
from ratings.services.quality import quality_compute

pytestmark = pytest.mark.django_db


def likert_scores(project):
    """rater -> {item: helpfulness score} of the scoring judgments."""
    out: dict[int, dict[int, float]] = {}
    for item, rater, value in Score.objects.filter(
        criterion__key="helpfulness", judgment__item__kind="score", judgment__item__project=project
    ).values_list("judgment__item_id", "judgment__rater_id", "value"):
        out.setdefault(rater, {})[item] = value
    return out


def test_weighted_kappa_of_a_rater_pair_counts_unused_likert_points(judged):
    project, raters = judged
    # nobody uses point 3: the distances must still be those of the 5-point scale
    Score.objects.filter(criterion__key="helpfulness", value=3).update(value=2)
    run = quality_compute(project_id=project.pk, n_boot=0)
    scores = likert_scores(project)
    a, b = raters[0].pk, raters[1].pk
    shared = sorted(set(scores[a]) & set(scores[b]))
    oracle = sklearn_metrics.cohen_kappa_score(
        [scores[a][i] for i in shared],
        [scores[b][i] for i in shared],
        weights="quadratic",
        labels=[1.0, 2.0, 3.0, 4.0, 5.0],
    )
    unscaled = sklearn_metrics.cohen_kappa_score(
        [scores[a][i] for i in shared], [scores[b][i] for i in shared], weights="quadratic"
    )
    assert oracle != pytest.approx(unscaled)
    row = RaterQuality.objects.get(run=run, rater_id=a)
    stored = next(k for k in row.detail["kappa"] if k["kind"] == "score" and k["with"] == b)
    assert stored["shared"] == len(shared)
    assert stored["kappa"] == pytest.approx(oracle)


def test_ac1_of_a_likert_criterion_uses_its_five_points(judged):
    project, _ = judged
    run = quality_compute(project_id=project.pk, n_boot=50)
    scores = likert_scores(project)
    items = sorted({i for per in scores.values() for i in per})
    units = [[per.get(i) for per in scores.values()] for i in items]
    snap = AgreementSnapshot.objects.get(
        run=run, kind="score", criterion="helpfulness", metric="gwet_ac1"
    )
    assert snap.value == pytest.approx(gwet_ac1(units, categories=[1, 2, 3, 4, 5]))
    used = {v for row in units for v in row if v is not None}
    if len(used) < 5:  # the observed categories would give another value
        assert snap.value != pytest.approx(gwet_ac1(units))
    assert snap.ci_low <= snap.value <= snap.ci_high
    binary = AgreementSnapshot.objects.get(
        run=run, kind="score", criterion="safe", metric="gwet_ac1"
    )
    assert binary.value is not None
    assert Judgment.objects.filter(item__project=project).exists()
    assert np.isfinite(binary.value)
