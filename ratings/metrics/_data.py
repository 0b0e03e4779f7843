"""Input handling shared by the agreement metrics: missing values, label codes, count matrices.

Everything here is internal. Inputs are plain Python data (lists of lists, ``None`` for a
missing rating); the helpers turn them into small integer code arrays and per-unit count
matrices so the statistics themselves are a few vectorised numpy expressions.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")

# Reasons given when a statistic is undefined (value None).
EMPTY = "no units given"
ONE_RATER = "only one rater: there are no pairs of ratings"
NO_PAIRS = "no unit has two or more ratings"
ONE_CATEGORY = "only one category used: expected disagreement is 0"
NO_RATINGS = "no ratings given: every value is missing"


@dataclass(frozen=True, slots=True)
class MetricResult:
    """Value of an agreement statistic together with what it was computed from.

    ``value`` is ``None`` exactly when the statistic is undefined for the data, and then
    ``reason`` says why in plain words; otherwise ``reason`` is ``None``. ``value`` is never
    NaN. ``n_units`` counts the units (items, positions) given, ``n_pairable_units`` those
    with at least two usable ratings, and ``n_values`` the ratings that entered the formula.
    """

    value: float | None
    reason: str | None
    n_units: int
    n_pairable_units: int
    n_values: int


@dataclass(frozen=True, slots=True)
class Encoded:
    """Flattened ratings: ``codes[i]`` is the category index of entry ``i`` or -1 if missing."""

    codes: np.ndarray  # int64, one entry per cell of the input, row-major
    lengths: np.ndarray  # int64, length of each input row (missing cells included)
    domain: list[Any]  # category labels; sorted numbers for numeric data
    numeric_domain: np.ndarray | None  # float values of the domain, or None for labels

    @property
    def n_rows(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def n_categories(self) -> int:
        return len(self.domain)

    def row_index(self) -> np.ndarray:
        """Row number of every flattened cell."""
        return np.repeat(np.arange(self.n_rows), self.lengths)

    def is_rectangular(self) -> bool:
        return self.n_rows == 0 or bool((self.lengths == self.lengths[0]).all())

    def n_rated_rows(self) -> int:
        """Rows with at least one rating."""
        rated = self.row_index()[self.codes >= 0]
        return int(np.unique(rated).size)

    def n_rated_columns(self) -> int:
        """Columns (positions within rows) with at least one rating."""
        rated = self.col_index()[self.codes >= 0]
        return int(np.unique(rated).size)

    def col_index(self) -> np.ndarray:
        """Position of every flattened cell within its row."""
        starts = np.cumsum(self.lengths) - self.lengths
        return np.arange(self.codes.shape[0]) - np.repeat(starts, self.lengths)


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def is_missing(value: Any) -> bool:
    """``None`` and any floating NaN (Python float, numpy float16/32/64) are missing."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    return False


_is_missing_scalar = is_missing


def _rows_of(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    if isinstance(rows, (str, bytes)):
        raise TypeError("expected a list of rows (lists), not a string")
    out = list(rows)
    for row in out:
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence | np.ndarray):
            raise TypeError("every row must be a list of ratings (use None for missing)")
    return out


def encode(
    rows: Sequence[Sequence[Any]],
    *,
    numeric: bool,
    value_order: Sequence[Hashable] | None = None,
) -> Encoded:
    """Turn rows of ratings into integer codes.

    ``None`` and float NaN are missing. With ``numeric=True`` every rating must be a real
    number and the domain is the sorted set of distinct values. Otherwise ratings may be any
    hashable labels. ``value_order`` fixes the domain and its order (ratings outside it raise
    ``ValueError``).
    """
    if _is_numeric_matrix(rows):
        # A 2-D numeric array (NaN for missing) needs no walk over Python objects.
        matrix = np.asarray(rows, dtype=float)
        lengths = np.full(matrix.shape[0], matrix.shape[1], dtype=np.int64)
        values = matrix.ravel()
        all_real = True
    else:
        row_list = _rows_of(rows)
        lengths = np.fromiter((len(r) for r in row_list), dtype=np.int64, count=len(row_list))
        flat = list(chain.from_iterable(row_list))
        kinds = set(map(type, flat))
        kinds.discard(type(None))
        all_real = all(issubclass(k, numbers.Real) for k in kinds)
        if all_real:
            values = np.array(flat, dtype=float) if flat else np.empty(0)

    if all_real:
        valid = ~np.isnan(values)
        if np.isinf(values[valid]).any():
            raise ValueError("ratings must be finite numbers")
        distinct, inverse = _distinct_numbers(values[valid])
        codes = np.full(values.shape[0], -1, dtype=np.int64)
        if value_order is None:
            codes[valid] = inverse
            return Encoded(codes, lengths, distinct.tolist(), distinct)
        lookup = _order_lookup(value_order)
        try:
            table = np.array([lookup[v] for v in distinct.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"rating {exc.args[0]!r} is not in value_order") from None
        codes[valid] = table[inverse] if table.size else inverse
        domain = list(value_order)
        return Encoded(codes, lengths, domain, _numeric_or_none(domain))

    if numeric:
        bad = next(v for v in flat if not _is_missing_scalar(v) and not isinstance(v, numbers.Real))
        raise ValueError(f"this level needs numeric ratings, got {bad!r}")
    distinct_labels = {v for v in flat if not _is_missing_scalar(v)}
    if value_order is None:
        try:
            domain = sorted(distinct_labels)
        except TypeError:
            domain = sorted(distinct_labels, key=repr)
        lookup = {v: i for i, v in enumerate(domain)}
    else:
        lookup = _order_lookup(value_order)
        unknown = [v for v in distinct_labels if v not in lookup]
        if unknown:
            raise ValueError(f"rating {unknown[0]!r} is not in value_order")
        domain = list(value_order)
    get = lookup.get
    codes = np.fromiter((get(v, -1) for v in flat), dtype=np.int64, count=len(flat))
    # NaN objects are not equal to themselves, so they never match a key and stay -1.
    return Encoded(codes, lengths, domain, None)


def _is_numeric_matrix(rows: Any) -> bool:
    """True for a 2-D numpy array of booleans, integers or floats."""
    return isinstance(rows, np.ndarray) and rows.ndim == 2 and (rows.dtype.kind in "biuf")


def _distinct_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and the index of each value among them (like ``np.unique``).

    Integer-valued ratings in a modest range (rating scales) are counted with ``np.bincount``
    instead of sorted, which is several times faster on large inputs.
    """
    if values.size:
        low, high = float(values.min()), float(values.max())
        if high - low < 1_000_000 and bool((np.floor(values) == values).all()):
            offsets = (values - low).astype(np.int64)
            present = np.bincount(offsets) > 0
            position = np.cumsum(present) - 1
            return low + np.flatnonzero(present).astype(float), position[offsets]
    return np.unique(values, return_inverse=True)


def _order_lookup(value_order: Sequence[Hashable]) -> dict[Any, int]:
    lookup: dict[Any, int] = {}
    for i, v in enumerate(value_order):
        if _is_missing_scalar(v):
            raise ValueError("value_order must not contain None or NaN")
        if v in lookup:
            raise ValueError(f"value_order lists {v!r} twice")
        lookup[v] = i
    return lookup


def _numeric_or_none(domain: list[Any]) -> np.ndarray | None:
    if all(isinstance(v, numbers.Real) for v in domain):
        return np.asarray(domain, dtype=float)
    return None


def require_rectangular(enc: Encoded, what: str) -> int:
    """Return the common row length, or raise ``ValueError`` if rows differ in length."""
    if enc.n_rows == 0:
        return 0
    width = int(enc.lengths[0])
    if (enc.lengths != width).any():
        raise ValueError(f"all {what} must have the same length (use None for a missing rating)")
    return width


def counts_by_row(enc: Encoded) -> np.ndarray:
    """Count matrix (rows × categories) of the encoded ratings, via ``np.bincount``."""
    valid = enc.codes >= 0
    n_cat = enc.n_categories
    flat = enc.row_index()[valid] * n_cat + enc.codes[valid]
    size = enc.n_rows * n_cat
    return np.bincount(flat, minlength=size).reshape(enc.n_rows, n_cat)


def counts_by_column(enc: Encoded, width: int) -> np.ndarray:
    """Count matrix (columns × categories) for rectangular input, via ``np.bincount``."""
    valid = enc.codes >= 0
    n_cat = enc.n_categories
    flat = enc.col_index()[valid] * n_cat + enc.codes[valid]
    return np.bincount(flat, minlength=width * n_cat).reshape(width, n_cat)


def finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
