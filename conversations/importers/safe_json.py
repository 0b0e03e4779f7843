"""One JSON value from an untrusted file, refused with a ``RecordError`` when the database or
Python could not take it (docs/formats.md, "Limits").

Refused, each with the field where it was found (when it is known):

- nesting deeper than ``IMPORT_MAX_JSON_DEPTH`` arrays and objects inside each other. The
  depth is checked without recursion: orjson parses without Python recursion (and stops at
  its own limit, 1024); what it parsed is walked with a stack (``check``); a line orjson
  refused is measured on its bytes before Python's recursive ``json`` module may see it;
- the NUL character (``\\u0000``), which PostgreSQL's ``text`` and ``jsonb`` cannot store;
- lone surrogates (``\\ud800``), which are not text and cannot be encoded as UTF-8 (only
  Python's ``json`` lets them through; orjson refuses them);
- numbers beyond the range of a double (integers of more than 308 digits), ``NaN`` and
  ``Infinity``.

``parse_line`` is the reader's entry: orjson alone for the common line, and it says whether
the value is already checked. A value that is not is checked by ``check`` before anything
recurses into it or stores it: the general parsing path does that, and the transcript fast
path (``conversations.accel.fastpath``) makes the same checks on the few fields it stores, cheaply,
since a walk of every record would cost a third of its parsing.
"""

import json
import math
import re

import numpy as np
import orjson
from django.conf import settings

from conversations.importers.records import RecordError

# A double's range, about 1.8e308: orjson reads integers beyond 64 bits as doubles and refuses
# larger ones; Python's json (for lines orjson refused) is held to the same range.
MAX_INT_DIGITS = 309
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, unrolled


class _Refused(Exception):
    def __init__(self, message: str):
        self.message = message


def too_deep_message(limit: int) -> str:
    return (
        f"is nested more than {limit} levels deep (arrays and objects inside each other); "
        "the limit is RATELOOP_IMPORT_MAX_JSON_DEPTH"
    )


def _text_problem(text: str, surrogates: bool) -> str | None:
    if "\x00" in text:
        return (
            "holds a NUL character (\\u0000), which the database cannot store; remove it "
            "(or replace it) in the file"
        )
    if surrogates:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"holds a lone surrogate (\\u{ord(text[exc.start]):04x}) at character "
                f"{exc.start}, which is not text; the file was written by a broken encoder"
            )
    return None


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def value_problem(
    value: object, max_depth: int, *, surrogates: bool = True
) -> tuple[str, str] | None:
    """(field, message) of the first thing refused in ``value``, or None. Walks with a stack,
    never recursively. ``surrogates``: look for lone surrogates too (orjson never gives
    them)."""
    if type(value) is str:
        bad = _text_problem(value, surrogates)
        return None if bad is None else ("", bad)
    stack: list[tuple[object, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if type(node) is dict:
            pairs = node.items()
        elif type(node) is list:
            pairs = enumerate(node)
        else:
            continue
        if depth > max_depth:
            return path, too_deep_message(max_depth)
        for key, child in pairs:
            if type(key) is str and (bad := _text_problem(key, surrogates)) is not None:
                return _join(path, key[:40]), f"its name {bad}"
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, _join(path, key), depth + 1))
            elif kind is str and (bad := _text_problem(child, surrogates)) is not None:
                return _join(path, key), bad
    return None


def check(value: object, field: str = "", *, surrogates: bool = False) -> None:
    """Raise ``RecordError`` if ``value`` (as orjson read it) holds what is refused."""
    problem = value_problem(value, settings.IMPORT_MAX_JSON_DEPTH, surrogates=surrogates)
    if problem is not None:
        where, message = problem
        raise RecordError(_join(field, where) if where else field, message)


def byte_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw``, counted on the bytes (strings left out),
    without parsing it. Malformed text gives an upper bound, which is what a refusal needs."""
    data = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = ((data == 0x5B) | (data == 0x7B)).astype(np.int32)
    steps -= (data == 0x5D) | (data == 0x7D)
    return int(np.cumsum(steps).max(initial=0))


def _int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"holds an integer of {digits:,} digits; at most {MAX_INT_DIGITS}")
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise _Refused(
            f"holds an integer of {digits:,} digits, beyond the range of a double; at most "
            f"{MAX_INT_DIGITS}"
        ) from None
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"holds a number too large for a double ({text[:20]}...)")
    return value


def _constant(name: str) -> float:
    raise _Refused(f"holds {name}, which is not a JSON number")


def parse_line(raw: bytes) -> tuple[object, bool]:
    """(value, checked): orjson's reading, not yet checked (see ``check``), or, for what
    orjson refused, Python's, checked; ``RecordError`` if refused."""
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError:
        return _loads_slowly(raw, "", settings.IMPORT_MAX_JSON_DEPTH), True


def loads(raw: bytes, *, field: str = "") -> object:
    """The JSON value in ``raw``, checked; ``RecordError`` (its field under ``field``)."""
    try:
        value, checked = parse_line(raw)
    except RecordError as exc:
        raise RecordError(_join(field, exc.field) if exc.field else field, exc.message) from None
    if not checked:
        check(value, field)
    return value


def _loads_slowly(raw: bytes, field: str, max_depth: int) -> object:
    """What orjson refused: a precise error, or what Python's json reads (lone surrogates,
    integers beyond 64 bits), its depth checked on the bytes before it may recurse."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            field,
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
        ) from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and byte_depth(raw) > max_depth:
        raise RecordError(field, too_deep_message(max_depth))
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise RecordError(field, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except _Refused as exc:
        raise RecordError(field, exc.message) from None
    except RecursionError:  # not reached within the depth limit; never a traceback
        raise RecordError(field, too_deep_message(max_depth)) from None
    problem = value_problem(value, max_depth, surrogates=True)
    if problem is not None:
        where, message = problem
        raise RecordError(_join(field, where) if where else field, message)
    return value
