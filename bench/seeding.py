"""Helpers shared by the benchmark seeders."""

import numpy as np


def timestamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds -> ISO 8601 UTC strings PostgreSQL reads."""
    stamps = (seconds * 1000).astype("int64").astype("datetime64[ms]")
    return np.datetime_as_string(stamps, unit="ms", timezone="UTC").tolist()


def distinct_raters(rng: np.random.Generator, items: int, k: int, pool: int) -> np.ndarray:
    """items x k rater indices, distinct within a row, uniform over the pool."""
    out = rng.integers(0, pool, size=(items, k))
    while True:
        s = np.sort(out, axis=1)
        bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
        if not bad.size:
            return out
        out[bad] = rng.integers(0, pool, size=(bad.size, k))
