"""Drift detection as the service runs it: simulated raters, judgments fed in time order,
recomputed every 15 minutes (Celery beat's cadence) or every 6 hours, flags kept open.

    .venv/bin/python bench/drift_sim.py --seeds 10 --cadence 15m 6h

Design (issue 14): 100 raters over 30 days, 20,000 items x 3 ratings on one 5-point Likert
criterion (so 60,000 judgments, about 600 per rater), 5 % gold items; 8 raters drift at a
known judgment (drawn in 35-65 % of their stream), 4 by noise and 4 by leniency; and null
runs in which nobody drifts. Per rater: a bias ~ N(0, 0.2) and a noise SD ~ U(0.4, 0.7) around
the item's true score ~ N(3, 1), rounded and clipped to 1-5; time on task log-normal
(sigma 0.5) around a rater median in 30-90 s, and an item reading-time floor of 5-15 s.
Default strength: leniency +1.0 point, or extra noise of SD 1.2; half strength: +0.5, 0.6.
An item's three ratings come from three distinct raters (chosen with per-rater activity
weights in 0.5-1.5) within hours of the item's arrival.

What it exercises: at each run time T it takes the judgments made up to T, computes each
judgment's signals exactly as the service's per-judgment step does (agreement with the
leave-one-out consensus with ``ratings.metrics.long.loo_interval_agreement`` and scale range
4, gold correct when the score equals the gold answer, the label ``score:<value>``, seconds and
the reading-time floor), and calls ``ratings.drift.detect_drift_online_columns`` with the
tested-window counts stored by earlier runs, as ``quality_compute`` does with its
``DriftCursor`` rows; a rater's flag opens at their first alarm and stays open (nobody
resolves it). What it does not: the database read and write (the tests run a smaller version
through ``quality_compute`` itself). Only the raters whose number of complete windows changed
since the last run are passed in a run: each rater's result depends only on their own
observations and counts (see the function's docstring), so this gives the same flags as
passing everyone, in far less time.

Scoring: a drifting rater is found when a flag opens on them at or after their onset; delay =
their judgments from the onset (included) to the run that opened the flag. A false alarm is a
steady rater (or a drifting one before onset) with a flag; the rate is over steady raters.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratings.drift import OnlineConfig, detect_drift_online_columns  # noqa: E402
from ratings.metrics.long import (  # noqa: E402
    loo_interval_agreement,
    loo_interval_residual,
)

DAY = 86_400.0
DAYS = 30
LABELS = [f"score:{v:g}" for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
CADENCES = {"15m": 900.0, "1h": 3600.0, "6h": 21_600.0}


@dataclass
class World:
    rater: np.ndarray  # per judgment, sorted by time
    item: np.ndarray
    at: np.ndarray
    value: np.ndarray
    gold_correct: np.ndarray  # NaN when the item is not gold
    seconds: np.ndarray
    min_seconds: np.ndarray
    drifting: dict[int, tuple[str, float]] = field(default_factory=dict)  # rater -> kind, onset


def simulate(
    seed: int,
    strength: float,
    *,
    raters: int = 100,
    items: int = 20_000,
    leniency: float = 1.0,
    noise_sd: float = 1.2,
) -> World:
    """One world (``strength`` 0 = null run, 1 = default, 0.5 = half)."""
    rng = np.random.default_rng(seed)
    per_item = 3
    weight = rng.uniform(0.5, 1.5, raters)
    weight /= weight.sum()
    bias = rng.normal(0, 0.2, raters)
    noise = rng.uniform(0.4, 0.7, raters)
    median_s = rng.uniform(30, 90, raters)
    truth = rng.normal(3, 1, items)
    is_gold = rng.random(items) < 0.05
    gold_answer = np.clip(np.rint(truth), 1, 5)
    arrival = np.sort(rng.uniform(0, DAYS * DAY - 12 * 3600, items))
    floor = rng.uniform(5, 15, items)
    # three distinct raters per item (Gumbel top-k on log weights)
    keys = np.log(weight)[None, :] + rng.gumbel(size=(items, raters))
    who = np.argpartition(-keys, per_item, axis=1)[:, :per_item]
    item = np.repeat(np.arange(items), per_item)
    rater = who.reshape(-1)
    at = np.repeat(arrival, per_item) + rng.exponential(3 * 3600, items * per_item)
    at = np.minimum(at, DAYS * DAY - 1)
    order = np.argsort(at, kind="stable")
    item, rater, at = item[order], rater[order], at[order]
    n = item.size
    drift_bias = np.zeros(n)
    drift_noise = np.zeros(n)
    drifting: dict[int, tuple[str, float]] = {}
    if strength > 0:
        chosen = rng.choice(raters, 8, replace=False)
        for k, r in enumerate(chosen.tolist()):
            mine = np.flatnonzero(rater == r)
            start = int(rng.integers(int(0.35 * mine.size), int(0.65 * mine.size)))
            after = mine[start:]
            kind = "leniency" if k % 2 else "noise"
            if kind == "leniency":
                drift_bias[after] = leniency * strength
            else:
                drift_noise[after] = noise_sd * strength
            drifting[r] = (kind, float(at[mine[start]]))
    sd = np.sqrt(noise[rater] ** 2 + drift_noise**2)
    raw = truth[item] + bias[rater] + drift_bias + rng.normal(0, 1, n) * sd
    value = np.clip(np.rint(raw), 1, 5)
    gold_correct = np.where(is_gold[item], (value == gold_answer[item]).astype(float), np.nan)
    seconds = median_s[rater] * np.exp(rng.normal(0, 0.5, n))
    return World(rater, item, at, value, gold_correct, seconds, floor[item], drifting)


def _windows(n: np.ndarray, size: int, step: int, base: int) -> np.ndarray:
    return np.where(n >= base + size, (n - base - size) // step + 1, 0)


@dataclass
class Outcome:
    flagged_at: dict[int, float]  # rater -> run time of the first alarm
    delays: dict[int, int]  # drifting rater -> judgments from onset to detection
    runs: int
    windows_tested: int
    seconds: float


# The signals each detector reads: 0 = every judgment (labels, seconds), 1 = judgments with
# another rating on their item (agreement, residual), 2 = gold answers.
SIGNAL_DETECTORS = {
    0: ("label_distribution", "speed"),
    1: ("agreement", "leniency"),
    2: ("gold_accuracy",),
}


def _usable_at(world: World) -> np.ndarray:
    """When each judgment gets its agreement signal: once its item has a second rating."""
    n_items = int(world.item.max()) + 1
    order = np.lexsort((world.at, world.item))
    items, times = world.item[order], world.at[order]
    first = np.r_[True, items[1:] != items[:-1]]
    second_time = np.full(n_items, np.inf)
    rank = np.arange(items.size) - np.maximum.accumulate(np.where(first, np.arange(items.size), 0))
    second_time[items[rank == 1]] = times[rank == 1]
    return np.maximum(world.at, second_time[world.item])


def run(world: World, cadence: float, config: OnlineConfig, check: bool = False) -> Outcome:
    """Feed the judgments in time order, one call per run time, flags and counts persisted.

    Each run computes the signals of the judgments made up to its time; a rater is passed,
    for a detector, when the number of its complete windows changed since the last run (the
    others would test nothing). ``check`` compares the signals with the service's functions
    (``loo_interval_agreement`` / ``loo_interval_residual`` over everything) at every run."""
    t0 = time.perf_counter()
    n_raters = int(world.rater.max()) + 1
    n_items = int(world.item.max()) + 1
    tested: dict[tuple, int] = {}
    flagged_at: dict[int, float] = {}
    usable = _usable_at(world)
    events = [
        np.sort(world.at),  # judgments are sorted by time already
        np.sort(usable),
        np.sort(world.at[~np.isnan(world.gold_correct)]),
    ]
    event_rater = [
        world.rater,
        world.rater[np.argsort(usable, kind="stable")],
        world.rater[~np.isnan(world.gold_correct)],
    ]
    sizes = [
        (config.window_size, config.window_step, config.min_baseline),
        (config.window_size, config.window_step, config.min_baseline),
        (config.gold_window_size, config.gold_window_step, config.min_gold_baseline),
    ]
    counts = np.zeros((3, n_raters), dtype=np.int64)
    done = [0, 0, 0]
    last_windows = np.zeros((3, n_raters), dtype=np.int64)
    by_rater = [np.flatnonzero(world.rater == r) for r in range(n_raters)]
    windows_tested = 0
    runs = 0
    t = cadence
    end = DAYS * DAY + cadence
    while t <= end:
        runs += 1
        changed: dict[int, np.ndarray] = {}
        for s in range(3):
            upto = int(np.searchsorted(events[s], t, side="right"))
            counts[s] += np.bincount(event_rater[s][done[s] : upto], minlength=n_raters)
            done[s] = upto
            windows = _windows(counts[s], *sizes[s])
            moved = np.flatnonzero(windows != last_windows[s])
            last_windows[s] = windows
            if moved.size:
                changed[s] = moved
        if changed:
            k = int(np.searchsorted(world.at, t, side="right"))
            total = np.bincount(world.item[:k], weights=world.value[:k], minlength=n_items)
            n = np.bincount(world.item[:k], minlength=n_items).astype(float)
            if check:
                agreement_all = loo_interval_agreement(world.item[:k], world.value[:k], 4.0)
                residual_all = loo_interval_residual(world.item[:k], world.value[:k], 4.0)
            for s, raters in changed.items():
                idx = np.concatenate([by_rater[r][by_rater[r] < k] for r in raters.tolist()])
                x = world.value[idx]
                others = n[world.item[idx]] - 1
                with np.errstate(invalid="ignore", divide="ignore"):
                    residual = (x - (total[world.item[idx]] - x) / others) / 4.0
                residual[others < 1] = np.nan
                agreement = 1.0 - np.abs(residual)
                if check:
                    np.testing.assert_allclose(agreement, agreement_all[idx], atol=1e-12)
                    np.testing.assert_allclose(residual, residual_all[idx], atol=1e-12)
                columns = {
                    "rater": world.rater[idx],
                    "at": world.at[idx],
                    "agreement": agreement,
                    "residual": residual,
                    "gold_correct": world.gold_correct[idx],
                    "label": (x - 1).astype(np.int64),
                    "label_values": LABELS,
                    "seconds": world.seconds[idx],
                    "min_seconds": world.min_seconds[idx],
                }
                only = replace(config, gates=replace(config.gates, detectors=SIGNAL_DETECTORS[s]))
                result = detect_drift_online_columns(columns, tested, only)
                tested = result.tested
                windows_tested += result.windows_tested
                for alarm in result.alarms:
                    flagged_at.setdefault(int(alarm.rater), t)
        t += cadence
    delays = {}
    for r, (_, onset) in world.drifting.items():
        when = flagged_at.get(r)
        if when is not None and when >= onset:
            mine = world.at[world.rater == r]
            delays[r] = int(((mine >= onset) & (mine <= when)).sum())
    return Outcome(flagged_at, delays, runs, windows_tested, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--cadence", nargs="+", default=["15m", "6h"], choices=list(CADENCES))
    parser.add_argument(
        "--strength", nargs="+", type=float, default=[1.0, 0.5, 0.0], help="0 = null runs"
    )
    parser.add_argument("--leniency", type=float, default=1.0, help="points, default strength")
    parser.add_argument("--noise-sd", type=float, default=1.2, help="extra SD, default strength")
    parser.add_argument("--window-size", type=int, default=OnlineConfig.window_size)
    parser.add_argument("--window-step", type=int, default=OnlineConfig.window_step)
    parser.add_argument("--min-baseline", type=int, default=OnlineConfig.min_baseline)
    parser.add_argument("--alpha", type=float, default=OnlineConfig.alpha)
    args = parser.parse_args(argv)
    config = OnlineConfig(
        window_size=args.window_size,
        window_step=args.window_step,
        min_baseline=args.min_baseline,
        alpha=args.alpha,
    )
    print(
        f"window_size={config.window_size} alpha={config.alpha:g} seeds="
        f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    )
    header = (
        f"{'cadence':>7} {'strength':>8} {'recall':>13} {'false alarms':>18} "
        f"{'<=100 after onset':>18} {'delay median/p90/max':>21} {'runs':>5} {'s/seed':>7}"
    )
    print(header)
    for cadence in args.cadence:
        for strength in args.strength:
            found = drifting = false = steady = within = 0
            delays: list[int] = []
            runs = 0
            elapsed = 0.0
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                world = simulate(seed, strength, leniency=args.leniency, noise_sd=args.noise_sd)
                out = run(world, CADENCES[cadence], config)
                runs = out.runs
                elapsed += out.seconds
                n_raters = int(world.rater.max()) + 1
                drifting += len(world.drifting)
                found += len(out.delays)
                delays += list(out.delays.values())
                within += sum(1 for d in out.delays.values() if d <= 100)
                for r in range(n_raters):
                    if r in world.drifting:
                        continue
                    steady += 1
                    false += r in out.flagged_at
                for r, (_, onset) in world.drifting.items():
                    if r in out.flagged_at and out.flagged_at[r] < onset:
                        false += 1  # flagged before the drift began: a false alarm too
            recall = f"{found}/{drifting} {found / drifting:.1%}" if drifting else "-"
            fa = f"{false}/{steady} {false / steady:.2%}"
            if delays:
                d = np.array(delays)
                delay = f"{np.median(d):.0f}/{np.percentile(d, 90):.0f}/{d.max()}"
                w = f"{within}/{found} {within / found:.1%}"
            else:
                delay = w = "-"
            print(
                f"{cadence:>7} {strength:>8.1f} {recall:>13} {fa:>18} {w:>18} {delay:>21} "
                f"{runs:>5} {elapsed / args.seeds:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
