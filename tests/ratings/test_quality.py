"""Quality runs on a project with known raters: stored agreement, rater rows, gold, flags."""

import numpy as np
import pytest
from django.utils import timezone

from ratings.metrics import krippendorff_alpha
from ratings.models import (
    AgreementSnapshot,
    DriftFlag,
    Item,
    Judgment,
    QualityRun,
    RaterQuality,
    RunState,
    Score,
)
from ratings.services.quality import quality_compute

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accel_mode")]


def test_quality_run_stores_agreement_that_matches_the_metric(judged):
    project, raters = judged
    run = quality_compute(project_id=project.pk, trigger="manual", n_boot=100)
    assert run.state == RunState.SUCCEEDED and run.n_judgments == Judgment.objects.count()
    snap = AgreementSnapshot.objects.get(
        run=run, kind="score", criterion="helpfulness", metric="alpha_interval"
    )
    rows = {}
    for item_id, rater_id, value in Score.objects.filter(
        criterion__key="helpfulness", judgment__item__kind="score"
    ).values_list("judgment__item_id", "judgment__rater_id", "value"):
        rows.setdefault(rater_id, {})[item_id] = value
    items = sorted({i for r in rows.values() for i in r})
    reliability = [[rows[r].get(i) for i in items] for r in sorted(rows)]
    assert snap.value == pytest.approx(krippendorff_alpha(reliability, "interval"), abs=1e-9)
    assert snap.ci_low <= snap.value <= snap.ci_high
    metrics = set(
        AgreementSnapshot.objects.filter(run=run).values_list("kind", "criterion", "metric")
    )
    assert ("pairwise", "", "pairwise_agreement_with_ties") in metrics
    assert ("pairwise", "winner", "fleiss_kappa") in metrics
    assert ("score", "safe", "alpha_nominal") in metrics


def test_rater_rows_single_out_the_random_rater(judged):
    project, raters = judged
    run = quality_compute(project_id=project.pk, n_boot=0)
    rows = {r.rater_id: r for r in RaterQuality.objects.filter(run=run)}
    assert set(rows) == {r.pk for r in raters}
    steady = [rows[r.pk].agreement for r in raters[:3]]
    assert rows[raters[3].pk].agreement < min(steady)
    assert all(rows[r.pk].median_seconds > 0 for r in raters)
    assert rows[raters[0].pk].left_share is not None
    assert rows[raters[0].pk].mean_kappa is not None


def test_undefined_statistics_are_stored_with_a_reason(judged):
    project, _ = judged
    run = quality_compute(project_id=project.pk, n_boot=0)
    safe = AgreementSnapshot.objects.filter(run=run, criterion="safe", metric="alpha_nominal").get()
    # three raters always say "safe", one at random: defined; force the undefined case too
    assert safe.value is not None
    Score.objects.filter(criterion__key="safe").update(value=1.0)
    Judgment.objects.create(
        item=Item.objects.first(),
        rater=project.memberships.first().user,
        created_at=timezone.now(),
        is_current=False,
    )
    run2 = quality_compute(project_id=project.pk, n_boot=0, force=True)
    safe2 = AgreementSnapshot.objects.get(run=run2, criterion="safe", metric="alpha_nominal")
    assert safe2.value is None and "one category" in safe2.reason


def test_gold_accuracy_is_tracked(judged):
    project, raters = judged
    gold = Item.objects.filter(project=project, kind="pairwise").order_by("id")[:5]
    for item in gold:
        Item.objects.filter(pk=item.pk).update(is_gold=True, gold_answer={"winner": "a"})
    run = quality_compute(project_id=project.pk, n_boot=0)
    rows = {r.rater_id: r for r in RaterQuality.objects.filter(run=run)}
    for rater in raters:
        expected = np.mean(
            [
                float(np.sign(j.preference) == -1)
                for j in Judgment.objects.filter(item__in=gold, rater=rater)
            ]
        )
        assert rows[rater.pk].gold_accuracy == pytest.approx(expected)
        assert rows[rater.pk].gold_n == 5


def test_a_second_run_with_nothing_new_is_skipped(judged):
    project, _ = judged
    first = quality_compute(project_id=project.pk, n_boot=0)
    again = quality_compute(project_id=project.pk, n_boot=0)
    assert again.pk == first.pk and QualityRun.objects.count() == 1
    forced = quality_compute(project_id=project.pk, n_boot=0, force=True)
    assert forced.pk != first.pk
    assert (
        DriftFlag.objects.values("rater", "detector", "window_kind", "window_start")
        .distinct()
        .count()
        == DriftFlag.objects.count()
    )


def test_categorical_figures_get_bootstrap_intervals_too(judged):
    project, _ = judged
    run = quality_compute(project_id=project.pk, n_boot=100)
    for metric in ("fleiss_kappa", "gwet_ac1", "percent_agreement"):
        snap = AgreementSnapshot.objects.get(
            run=run, kind="pairwise", criterion="winner", metric=metric
        )
        assert snap.ci_low <= snap.value <= snap.ci_high, metric
