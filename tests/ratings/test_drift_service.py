"""Drift through the service: quality runs repeated as judgments arrive, flags persisted and
re-checked, auto-pause only on flags with the documented guarantee."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from conversations.models import Role
from ratings.drift import DEFAULT_ONLINE_CONFIG
from ratings.models import (
    DriftCursor,
    DriftFlag,
    FlagMethod,
    FlagState,
    Item,
    Judgment,
    RaterQuality,
    Score,
    TaskKind,
)
from ratings.services.items import items_queue
from ratings.services.quality import flag_update, quality_compute
from ratings.services.rubrics import rubric_set
from tests.factories import pairwise_conversation

pytestmark = pytest.mark.django_db

N_RATERS = 6
N_ITEMS = 320


@pytest.fixture
def stream_project(project, lead, member):
    """320 score items, six raters who each judge every item, half an hour apart; the last
    rater is the one a test makes drift."""
    project.has_pairwise = False
    project.save()
    rubric = rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "helpfulness", "points": 5, "anchors": ["Poor", "Excellent"]}],
    )
    for i in range(N_ITEMS // 2):
        pairwise_conversation(project, external_id=f"s{i}")
    items_queue(project=project, user=lead)
    items = list(Item.objects.filter(project=project, kind=TaskKind.SCORE).order_by("id"))
    assert len(items) == N_ITEMS
    raters = [member(Role.EVALUATOR) for _ in range(N_RATERS)]
    return project, rubric, items, raters


def judge(stream_project, first: int, last: int, *, shift: float = 0.0, seed: int = 0) -> None:
    """Items [first, last) judged by every rater; the drifter adds ``shift`` points."""
    project, rubric, items, raters = stream_project
    crit = rubric.criteria.get(key="helpfulness")
    rng = np.random.default_rng(seed + first)
    start = timezone.now() - timedelta(days=30)
    judgments, values = [], []
    for n in range(first, last):
        truth = rng.normal(3, 1)
        for r, rater in enumerate(raters):
            bias = shift if r == N_RATERS - 1 else 0.0
            judgments.append(
                Judgment(
                    item=items[n],
                    rater=rater,
                    rubric=rubric,
                    created_at=start + timedelta(minutes=30 * n + r),
                    time_on_task_ms=int(rng.integers(20_000, 60_000)),
                )
            )
            values.append(float(np.clip(np.rint(truth + bias + rng.normal(0, 0.5)), 1, 5)))
    Judgment.objects.bulk_create(judgments)
    Score.objects.bulk_create(
        Score(judgment=j, criterion=crit, value=v) for j, v in zip(judgments, values, strict=True)
    )


def test_runs_as_judgments_arrive_flag_the_drifter_once_with_a_lead_readable_summary(
    stream_project,
):
    project, _, _, raters = stream_project
    drifter = raters[-1]
    judge(stream_project, 0, 100)
    for first in range(100, 200, 20):  # a run after every 20 items, the drift from item 100
        quality_compute(project_id=project.pk, n_boot=0)
        judge(stream_project, first, first + 20, shift=1.0)
    quality_compute(project_id=project.pk, n_boot=0)
    flags = list(DriftFlag.objects.filter(project=project))
    assert flags and {f.rater_id for f in flags} == {drifter.pk}
    assert "leniency" in {f.detector for f in flags}
    assert len({f.detector for f in flags}) == len(flags)  # one flag per detector
    lenient = next(f for f in flags if f.detector == "leniency")
    assert lenient.method == FlagMethod.ONLINE and lenient.state == FlagState.OPEN
    assert lenient.is_supported and lenient.support["supported"] is True
    assert lenient.evidence["p_value"] <= DEFAULT_ONLINE_CONFIG.alpha
    assert lenient.evidence["detail"]["direction"] == "more lenient"
    assert "83,333 judgments" in lenient.evidence["summary"]
    onset = Judgment.objects.filter(rater=drifter).order_by("created_at")[100].created_at
    assert lenient.window_end >= onset  # the flagged window holds drifted judgments
    row = RaterQuality.objects.filter(project=project, rater=drifter).order_by("-run_id")[0]
    assert row.open_flags == len(flags)
    # every window was tested once: a forced run over the same data tests nothing new
    cursors = dict(DriftCursor.objects.filter(project=project).values_list("pk", "windows_tested"))
    quality_compute(project_id=project.pk, n_boot=0, force=True)
    assert dict(DriftCursor.objects.values_list("pk", "windows_tested")) == cursors
    assert DriftFlag.objects.filter(project=project).count() == len(flags)


def test_a_flag_the_latest_data_no_longer_supports_is_marked_not_deleted_and_does_not_pause(
    stream_project,
):
    project, _, _, raters = stream_project
    drifter = raters[-1]
    project.pause_flagged_raters = True
    project.save()
    judge(stream_project, 0, 100)
    judge(stream_project, 100, 200, shift=1.2)
    quality_compute(project_id=project.pk, n_boot=0)
    flag = DriftFlag.objects.get(project=project, detector="leniency")
    assert DriftFlag.objects.pausing().filter(rater=drifter).exists()
    judge(stream_project, 200, 320)  # the drifter is steady again
    quality_compute(project_id=project.pk, n_boot=0)
    flag.refresh_from_db()
    assert flag.state == FlagState.OPEN and not flag.is_supported
    assert flag.unsupported_since is not None and flag.support["basis"] == "latest_window"
    assert not DriftFlag.objects.pausing().filter(rater=drifter).exists()


def test_only_flags_with_the_guarantee_pause(stream_project, lead):
    project, _, _, raters = stream_project
    now = timezone.now()
    batch = DriftFlag.objects.create(
        project=project,
        rater=raters[0],
        detector="agreement",
        window_kind="count",
        window_start=now,
        window_end=now,
    )
    assert batch.method == FlagMethod.BATCH
    assert not DriftFlag.objects.pausing().exists()
    online = DriftFlag.objects.create(
        project=project,
        rater=raters[1],
        detector="agreement",
        window_kind="count",
        window_start=now,
        window_end=now,
        method=FlagMethod.ONLINE,
    )
    assert list(DriftFlag.objects.pausing()) == [online]
    flag_update(flag=online, user=lead, state=FlagState.ACKNOWLEDGED)
    assert not DriftFlag.objects.pausing().exists()


def test_the_rater_page_says_what_changed_and_whether_it_still_holds(stream_project, lead, client):
    project, _, _, raters = stream_project
    judge(stream_project, 0, 100)
    judge(stream_project, 100, 200, shift=1.2)
    quality_compute(project_id=project.pk, n_boot=0)
    judge(stream_project, 200, 320)
    quality_compute(project_id=project.pk, n_boot=0)
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/quality/raters/{raters[-1].pk}/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "mean score minus the other raters" in text and "83,333 judgments" in text
    assert 'data-testid="flag-unsupported"' in text
