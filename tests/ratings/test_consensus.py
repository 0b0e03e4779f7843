"""Tests for label aggregation (majority, mean strength, Dawid–Skene, weighted vote)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings.consensus import (
    accuracy_to_weight,
    dawid_skene,
    majority_vote,
    mean_strength,
    reliability_weighted_vote,
)

# ---------------------------------------------------------------------------
# Majority vote
# ---------------------------------------------------------------------------


def test_majority_vote_hand_example() -> None:
    res = majority_vote(
        {
            "q1": ["A", "A", "B"],
            "q2": ["A", "B"],
            "q3": ["tie"],
            "q4": [],
        }
    )
    assert res["q1"].label == "A"
    assert res["q1"].confidence == pytest.approx(2 / 3)
    assert res["q1"].n_votes == 3
    assert res["q1"].support == {"A": 2, "B": 1}
    assert res["q2"].label is None
    assert res["q2"].tied
    assert res["q2"].confidence == pytest.approx(0.5)
    assert res["q3"].label == "tie"
    assert res["q3"].confidence == 1.0
    assert res["q4"].label is None
    assert res["q4"].confidence == 0.0
    assert res["q4"].n_votes == 0


def test_majority_vote_tie_policies() -> None:
    votes = {"x": ["B", "A", "A", "B", "C"]}
    assert majority_vote(votes, tie_policy="first")["x"].label == "B"
    picks = {majority_vote(votes, tie_policy="random", seed=s)["x"].label for s in range(30)}
    assert picks == {"A", "B"}
    r1 = majority_vote({k: ["A", "B"] for k in range(50)}, tie_policy="random", seed=3)
    r2 = majority_vote({k: ["A", "B"] for k in range(50)}, tie_policy="random", seed=3)
    assert [v.label for v in r1.values()] == [v.label for v in r2.values()]
    with pytest.raises(ValueError):
        majority_vote(votes, tie_policy="coin")  # type: ignore[arg-type]


def test_majority_vote_accepts_sequence() -> None:
    res = majority_vote([[1, 1, 0], [0]])
    assert res[0].label == 1
    assert res[1].label == 0


# ---------------------------------------------------------------------------
# Mean strength
# ---------------------------------------------------------------------------


def test_mean_strength_hand_example() -> None:
    res = mean_strength(
        {
            "a_better": [-2, -1, 1],
            "b_better": [2, 1, 0, 2],
            "split": [-2, 2],
            "all_tie": [0, 0],
            "empty": [],
        }
    )
    r = res["a_better"]
    assert r.label == "A"
    assert r.mean == pytest.approx(-2 / 3)
    assert r.std == pytest.approx(np.std([-2, -1, 1]))
    assert r.confidence == pytest.approx(2 / 3)
    assert r.n_votes == 3
    r = res["b_better"]
    assert r.label == "B"
    assert r.mean == pytest.approx(1.25)
    assert r.confidence == pytest.approx(3 / 4)
    r = res["split"]
    assert r.label == "tie"
    assert r.confidence == 0.0  # nobody actually voted tie
    r = res["all_tie"]
    assert r.label == "tie"
    assert r.confidence == 1.0
    r = res["empty"]
    assert r.label is None and r.mean is None and r.std is None
    assert r.confidence == 0.0


def test_mean_strength_tie_margin() -> None:
    res = mean_strength({"x": [0.5, 0, -0.25]}, tie_margin=0.5)
    assert res["x"].label == "tie"
    assert res["x"].confidence == 1.0
    assert mean_strength({"x": [0.5, 0, -0.25]})["x"].label == "B"
    with pytest.raises(ValueError):
        mean_strength({"x": [float("nan")]})
    with pytest.raises(ValueError):
        mean_strength({"x": [1]}, tie_margin=-1)


# ---------------------------------------------------------------------------
# Reliability-weighted vote
# ---------------------------------------------------------------------------


def test_reliability_weighted_vote_hand_example() -> None:
    votes = {
        "q1": [("expert", "A"), ("novice1", "B"), ("novice2", "B")],
        "q2": [("novice1", "A"), ("novice2", "B")],
        "q3": [("spammer", "A")],
    }
    weights = {"expert": 3.0, "novice1": 1.0, "novice2": 1.0, "spammer": 0.0}
    res = reliability_weighted_vote(votes, weights)
    assert res["q1"].label == "A"
    assert res["q1"].confidence == pytest.approx(3 / 5)
    assert res["q1"].support == {"A": 3.0, "B": 2.0}
    assert res["q2"].label is None and res["q2"].tied
    assert res["q3"].label is None  # only zero-weight votes
    assert res["q3"].confidence == 0.0
    # Plain majority would pick B on q1.
    assert majority_vote({"q1": [lab for _, lab in votes["q1"]]})["q1"].label == "B"


def test_reliability_weighted_vote_missing_and_bad_weights() -> None:
    votes = {"q": [("known", "A"), ("unknown", "B")]}
    with pytest.raises(KeyError):
        reliability_weighted_vote(votes, {"known": 1.0})
    res = reliability_weighted_vote(votes, {"known": 1.0}, default_weight=2.0)
    assert res["q"].label == "B"
    with pytest.raises(ValueError):
        reliability_weighted_vote(votes, {"known": -1.0, "unknown": 1.0})


def test_accuracy_to_weight() -> None:
    assert accuracy_to_weight(0.5, 2) == 0.0  # chance
    assert accuracy_to_weight(0.3, 2) == 0.0  # worse than chance is clipped
    assert accuracy_to_weight(0.75, 2) == pytest.approx(np.log(3))
    assert accuracy_to_weight(0.6, 3) == pytest.approx(np.log(2 * 0.6 / 0.4))
    assert accuracy_to_weight(1.0, 3) == 10.0
    assert accuracy_to_weight(0.9, 1) == 0.0


# ---------------------------------------------------------------------------
# Dawid–Skene
# ---------------------------------------------------------------------------

CLASSES = ["A", "B", "tie"]


def simulate_crowd(
    n_items: int = 600,
    *,
    n_good: int = 4,
    n_spam: int = 8,
    votes_per_item: int = 5,
    good_accuracy: float = 0.85,
    seed: int = 0,
) -> tuple[list[tuple[str, str, str]], dict[str, str], list[str], list[str]]:
    """A few accurate raters and many uniform-random spammers; string ids and labels."""
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    truth = rng.choice(k, n_items, p=[0.45, 0.4, 0.15])
    good = [f"good{r}" for r in range(n_good)]
    spam = [f"spam{r}" for r in range(n_spam)]
    raters = good + spam
    votes: list[tuple[str, str, str]] = []
    for i in range(n_items):
        for r in rng.choice(len(raters), votes_per_item, replace=False):
            if r < n_good and rng.random() < good_accuracy:
                label = truth[i]
            elif r < n_good:
                label = (truth[i] + rng.integers(1, k)) % k
            else:
                label = rng.integers(k)
            votes.append((f"item{i}", raters[r], CLASSES[label]))
    truth_by_item = {f"item{i}": CLASSES[t] for i, t in enumerate(truth)}
    return votes, truth_by_item, good, spam


def test_dawid_skene_hand_example() -> None:
    # Two reliable raters agree everywhere; a contrarian always answers the other label.
    votes = []
    for i, label in enumerate(["x", "y", "x", "y", "x", "x"]):
        other = "y" if label == "x" else "x"
        votes += [(i, "r1", label), (i, "r2", label), (i, "contra", other)]
    res = dawid_skene(votes)
    assert res.classes == ["x", "y"]
    assert res.labels.tolist() == ["x", "y", "x", "y", "x", "x"]
    assert res.label_of(1) == "y"
    acc = res.rater_summary()
    assert acc["r1"]["accuracy"] > 0.9
    assert acc["contra"]["accuracy"] < 0.1
    assert acc["r1"]["n_votes"] == 6
    # The contrarian's confusion matrix is (almost) the swap matrix.
    contra = res.raters.index("contra")
    assert res.confusion[contra, 0, 1] > 0.9
    assert res.confusion[contra, 1, 0] > 0.9
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0)
    assert res.posterior_of(0)["x"] > 0.99


def test_dawid_skene_beats_majority_and_ranks_raters() -> None:
    votes, truth, good, spam = simulate_crowd(seed=1)
    res = dawid_skene(votes)
    assert res.converged
    assert res.classes == CLASSES

    ds_labels = res.labels_dict()
    ds_acc = np.mean([ds_labels[i] == t for i, t in truth.items()])

    by_item: dict[str, list[str]] = {}
    for item, _, label in votes:
        by_item.setdefault(item, []).append(label)
    mv = majority_vote(by_item, tie_policy="first")
    mv_acc = np.mean([mv[i].label == t for i, t in truth.items()])

    # About 7% of items get no vote from a good rater, which caps what any method can do.
    assert ds_acc > 0.78
    assert ds_acc > mv_acc + 0.15

    summary = res.rater_summary()
    worst_good = min(summary[r]["accuracy"] for r in good)
    best_spam = max(summary[r]["accuracy"] for r in spam)
    assert worst_good > best_spam
    for r in good:
        assert summary[r]["accuracy"] == pytest.approx(0.85, abs=0.08)
    for r in spam:
        assert summary[r]["accuracy"] < 0.5

    # DS accuracies as weights for a weighted vote also beat plain majority.
    weights = {r: accuracy_to_weight(a["accuracy"], 3) for r, a in summary.items()}
    votes_by_item: dict[str, list[tuple[str, str]]] = {}
    for item, rater, label in votes:
        votes_by_item.setdefault(item, []).append((rater, label))
    wv = reliability_weighted_vote(votes_by_item, weights, tie_policy="first")
    wv_acc = np.mean([wv[i].label == t for i, t in truth.items()])
    assert wv_acc > mv_acc + 0.05


def test_dawid_skene_is_deterministic_and_monotone() -> None:
    votes, _, _, _ = simulate_crowd(n_items=300, seed=2)
    r1 = dawid_skene(votes)
    r2 = dawid_skene(votes)
    np.testing.assert_array_equal(r1.posterior, r2.posterior)
    np.testing.assert_array_equal(r1.confusion, r2.confusion)
    assert r1.log_likelihood == r2.log_likelihood
    assert r1.iterations == r2.iterations == len(r1.log_likelihood)
    lp = np.array(r1.log_posterior)
    assert np.all(np.diff(lp) >= -1e-8 * np.abs(lp[:-1]))
    assert np.all(np.isfinite(r1.log_likelihood))


def test_dawid_skene_input_forms_agree() -> None:
    votes, _, _, _ = simulate_crowd(n_items=200, seed=3)
    items = {item: k for k, item in enumerate(dict.fromkeys(v[0] for v in votes))}
    raters = {rater: k for k, rater in enumerate(dict.fromkeys(v[1] for v in votes))}
    as_ints = np.array([(items[i], raters[r], CLASSES.index(lab)) for i, r, lab in votes])
    r_str = dawid_skene(votes)
    r_arr = dawid_skene(as_ints, n_classes=3)
    np.testing.assert_allclose(r_str.posterior, r_arr.posterior, atol=1e-12)
    assert r_arr.classes == [0, 1, 2]
    assert [CLASSES[k] for k in r_arr.labels] == r_str.labels.tolist()


def test_dawid_skene_classes_argument() -> None:
    votes = [("i1", "r1", "B"), ("i1", "r2", "B"), ("i2", "r1", "A"), ("i2", "r2", "A")]
    res = dawid_skene(votes, classes=["tie", "B", "A"])
    assert res.classes == ["tie", "B", "A"]
    assert res.posterior.shape == (2, 3)
    assert res.labels.tolist() == ["B", "A"]
    with pytest.raises(ValueError):
        dawid_skene(votes, classes=["A"])
    with pytest.raises(ValueError):
        dawid_skene([(0, "r", 3)], n_classes=2)


def test_dawid_skene_zero_weight_equals_dropping_votes() -> None:
    votes, _, _, spam = simulate_crowd(n_items=200, seed=4)
    weights = [0.0 if r == spam[0] else 1.0 for _, r, _ in votes]
    weighted = dawid_skene(votes, weights=weights)
    kept = [v for v in votes if v[1] != spam[0]]
    dropped = dawid_skene(kept)
    assert weighted.items == dropped.items
    np.testing.assert_allclose(weighted.posterior, dropped.posterior, atol=1e-9)
    with pytest.raises(ValueError):
        dawid_skene(votes, weights=[1.0])


@pytest.mark.parametrize(
    "votes",
    [
        [("only", "r1", "A")],
        [("i1", "r1", "A"), ("i2", "r2", "A"), ("i2", "r1", "A")],
        [(0, "r1", "B"), (1, "r1", "B")],
    ],
)
def test_dawid_skene_degenerate_inputs(votes: list[tuple]) -> None:
    res = dawid_skene(votes)
    assert np.all(np.isfinite(res.posterior))
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0)
    assert np.all(np.isfinite(res.confusion))
    assert np.all(np.isfinite(res.rater_accuracy))
    assert np.all(np.isfinite(res.log_likelihood))
    assert res.converged
    assert set(res.labels.tolist()) == {votes[0][2]}


def test_dawid_skene_one_vote_many_classes() -> None:
    res = dawid_skene([("only", "r1", "B")], classes=["A", "B", "tie"])
    assert res.labels.tolist() == ["B"]
    assert res.posterior[0, 1] > 0.5
    assert np.all(np.isfinite(res.posterior))


def test_dawid_skene_no_smoothing_stays_finite() -> None:
    votes = [("i1", "r1", "A"), ("i1", "r2", "B"), ("i2", "r1", "A"), ("i2", "r2", "A")]
    res = dawid_skene(votes, smoothing=0.0)
    assert np.all(np.isfinite(res.posterior))
    assert np.all(np.isfinite(res.log_likelihood))


def test_dawid_skene_empty() -> None:
    res = dawid_skene([])
    assert res.items == [] and res.posterior.shape == (0, 0)
    assert res.iterations == 0
    res = dawid_skene([], n_classes=2)
    assert res.posterior.shape == (0, 2)
    np.testing.assert_allclose(res.priors, [0.5, 0.5])


def test_dawid_skene_large_scale() -> None:
    """330,000 items x 3 votes from a pool of 500 raters (vectorised EM)."""
    rng = np.random.default_rng(0)
    n_items, n_raters, k = 330_000, 500, 3
    truth = rng.choice(k, n_items, p=[0.45, 0.4, 0.15])
    accuracy = np.where(rng.random(n_raters) < 0.8, rng.uniform(0.6, 0.95, n_raters), 1 / k)
    item = np.repeat(np.arange(n_items), 3)
    rater = rng.integers(0, n_raters, item.size)
    correct = rng.random(item.size) < accuracy[rater]
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    label = np.where(correct, truth[item], wrong)
    res = dawid_skene(np.stack([item, rater, label], axis=1))
    assert res.posterior.shape == (n_items, k)
    assert res.converged
    assert np.mean(res.labels == truth[res.items]) > 0.85
    est = res.rater_accuracy
    true_acc = accuracy[np.asarray(res.raters)]
    assert np.corrcoef(est, true_acc)[0, 1] > 0.95


def test_dawid_skene_rejects_malformed_votes() -> None:
    with pytest.raises(ValueError):
        dawid_skene([("i1", "r1")])
    with pytest.raises(ValueError):
        dawid_skene(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        dawid_skene([("i1", "r1", "A")], smoothing=-1)


def test_dawid_skene_tuple_ids_and_mixed_label_types() -> None:
    votes = [(("conv", 1), "r1", 1), (("conv", 1), "r2", 1), (("conv", 2), "r1", "x")]
    res = dawid_skene(votes)
    assert res.items == [("conv", 1), ("conv", 2)]
    assert set(res.classes) == {1, "x"}
    assert res.label_of(("conv", 1)) == 1
    assert np.all(np.isfinite(res.posterior))


# ---------------------------------------------------------------------------
# The one rule per task kind: KB verdicts (cannot_judge abstains) and pairwise preferences,
# and every place that decides with it (KB report, gold promotion, quality run, exporters)
# ---------------------------------------------------------------------------

CJ = "cannot_judge"

# votes -> (the KB report's verdict, the gold answer promoted, the KTO exporter's label)
KB_TABLE = [
    ([], None, None, None),
    (["", None], None, None, None),
    ([CJ], CJ, None, None),
    ([CJ, CJ], CJ, None, None),
    (["correct"], "correct", "correct", True),
    (["correct", CJ, CJ], "correct", "correct", True),  # abstentions do not outvote a verdict
    (["incomplete", CJ], "incomplete", "incomplete", False),
    (["correct", "incorrect"], "disputed", None, None),
    (["correct", "incorrect", CJ], "disputed", None, None),
    (["correct", "incorrect", "incomplete"], "disputed", None, None),
    (["correct", "correct", "incorrect"], "correct", "correct", True),
    (["incorrect", "incorrect", CJ, CJ, CJ], "incorrect", "incorrect", False),
    # the most common verdict, but not more than half of the votes: no training label
    (["correct", "correct", "incorrect", "incomplete"], "correct", "correct", None),
    (["", "correct", None], "correct", "correct", True),
]


@pytest.mark.parametrize(("votes", "report", "gold", "kto"), KB_TABLE)
def test_kb_rule_table(votes, report, gold, kto) -> None:
    from ratings.consensus import kb_consensus

    c = kb_consensus(votes)
    assert c.verdict == report
    assert (c.verdict if c.is_decisive else None) == gold
    assert c.abstentions == votes.count(CJ)
    assert c.votes == sum(1 for v in votes if v and v != CJ)


@pytest.mark.parametrize(("votes", "report", "gold", "kto"), KB_TABLE)
def test_the_kb_report_and_the_kto_exporter_follow_the_kb_rule(votes, report, gold, kto) -> None:
    from types import SimpleNamespace

    from exports.exporters import REGISTRY
    from exports.reports import kb_consensus as report_verdict
    from ratings.models import TaskKind

    assert report_verdict(votes) == report
    record = SimpleNamespace(
        kind=TaskKind.KB_VERIFY,
        prompt="Q",
        a=SimpleNamespace(content="A"),
        votes=[SimpleNamespace(verdict=v) for v in votes],
    )
    rows = list(REGISTRY["kto"].rows(record, None, {}))
    assert [r["label"] for r in rows] == ([] if kto is None else [kto])


# preferences (negative: A better; None: no preference) -> (the exported winner, the winner
# promoted to gold: only a clear one)
PAIR_TABLE = [
    ([], "tie", None),
    ([None], "tie", None),
    ([0], "tie", "tie"),
    ([-1], "a", "a"),
    ([2], "b", "b"),
    ([-2, 1], "tie", None),  # a split: exported as a tie, not promoted
    ([-1, -1, 1], "a", "a"),
    ([-1, 0, 0], "tie", "tie"),
    ([-1, -1, 0, 0], "a", None),  # a side beats "tie" at equal counts, but not clearly
    ([1, 0], "b", None),
    ([-1, 1, 0], "tie", None),
    ([2, 2, None, -1], "b", "b"),
]


@pytest.mark.parametrize(("prefs", "winner", "gold"), PAIR_TABLE)
def test_pairwise_rule_table(prefs, winner, gold) -> None:
    from exports.aggregation import decide_majority
    from exports.canonical import Vote
    from ratings.consensus import pairwise_consensus

    c = pairwise_consensus(prefs)
    assert c.winner == winner
    assert (c.winner if c.clear else None) == gold
    votes = [
        Vote(
            rater_id=i,
            preference=p,
            both_bad=False,
            left_is_a=True,
            rationale="",
            is_external=False,
            source="",
            rubric_version=None,
            guidelines_version=1,
        )
        for i, p in enumerate(prefs)
        if p is not None
    ]
    if votes:  # the exports' majority (the aggregator drops votes without a preference)
        assert decide_majority(votes).winner == winner


def test_weighted_pairwise_rule() -> None:
    from ratings.consensus import pairwise_consensus

    # one trusted rater for A outweighs two for B
    assert pairwise_consensus([-1, 1, 1], weights=[3.0, 1.0, 1.0]).winner == "a"
    assert pairwise_consensus([-1, 1, 1], weights=[1.0, 1.0, 1.0]).winner == "b"
    c = pairwise_consensus([-1, None, 0], weights=[2.0, 9.0, 2.0])  # an abstention's weight
    assert (c.winner, c.clear, c.total) == ("a", False, 4.0)


def test_the_kb_verdicts_are_the_models_verdicts() -> None:
    from ratings.consensus import kb
    from ratings.models import Verdict

    assert {*kb.VERDICTS, kb.ABSTAIN} == set(Verdict.values)


@pytest.mark.django_db
@pytest.mark.parametrize(("votes", "report", "gold", "kto"), KB_TABLE)
def test_gold_promotion_follows_the_kb_rule(votes, report, gold, kto, project, member) -> None:
    from django.utils import timezone

    from ratings.models import Item, Judgment, TaskKind
    from ratings.services.items import consensus_answer
    from tests.factories import pairwise_conversation

    conv = pairwise_conversation(project, n_candidates=1)
    item = Item.objects.create(
        project=project,
        kind=TaskKind.KB_VERIFY,
        conversation=conv,
        response=conv.messages.last(),
        overlap=9,
    )
    for verdict in votes:
        Judgment.objects.create(
            item=item, rater=member(), verdict=verdict or "", created_at=timezone.now()
        )
    assert consensus_answer(item) == (None if gold is None else {"verdict": gold})


@pytest.mark.django_db
@pytest.mark.parametrize(("prefs", "winner", "gold"), PAIR_TABLE)
def test_gold_promotion_follows_the_pairwise_rule(prefs, winner, gold, project, member) -> None:
    from django.utils import timezone

    from ratings.models import Item, Judgment, TaskKind
    from ratings.services.items import consensus_answer
    from tests.factories import pairwise_conversation

    conv = pairwise_conversation(project)
    a, b = conv.messages.filter(role="assistant").order_by("candidate")
    item = Item.objects.create(
        project=project,
        kind=TaskKind.PAIRWISE,
        conversation=conv,
        response=a,
        response_b=b,
        overlap=9,
    )
    for preference in prefs:
        Judgment.objects.create(
            item=item, rater=member(), preference=preference, created_at=timezone.now()
        )
    assert consensus_answer(item) == (None if gold is None else {"winner": gold})


def test_the_quality_run_leaves_abstentions_out_of_kb_agreement() -> None:
    import pandas as pd

    from ratings.quality_data import JUDGMENT_COLUMNS, SCORE_COLUMNS, SCORE_CONTEXT, QualityData
    from ratings.services.quality.agreements import compute_agreements

    rows = []
    plan = {1: ["correct", "correct", CJ], 2: ["incorrect", "incorrect", CJ], 3: [CJ, "correct"]}
    for item, verdicts in plan.items():
        for rater, verdict in enumerate(verdicts):
            rows.append([len(rows) + 1, item, "kb_verify", rater, 0.0, 1000.0])
            rows[-1] += [np.nan, np.nan, 0, verdict, 0, 0, 10]
    data = QualityData(
        judgments=pd.DataFrame(rows, columns=JUDGMENT_COLUMNS),
        scores=pd.DataFrame(columns=SCORE_COLUMNS + SCORE_CONTEXT),
        gold_answers={},
        criteria={},
    )
    kb = {
        s["metric"]: s
        for s in compute_agreements(data, n_boot=0, now=None)
        if s["kind"] == "kb_verify"
    }
    # the verdicts agree wherever two raters gave one; cannot_judge is no third category
    assert kb["alpha_nominal"]["value"] == pytest.approx(1.0)
    assert kb["percent_agreement"]["value"] == pytest.approx(1.0)
    assert kb["alpha_nominal"]["n_values"] == 4  # the verdicts of items 1 and 2
