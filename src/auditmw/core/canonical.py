"""Canonical JSON, event ids and timestamps.

Events contain no floats, only ASCII keys, and integers well inside ±2**53, so a
compact, key-sorted orjson serialization is the RFC 8785 (JCS) canonical form.  The
test suite checks that property against the ``rfc8785`` package.  (For keys outside
the Basic Multilingual Plane the two differ: JCS sorts by UTF-16 code units, orjson by
code points.  The pipeline keeps every key ASCII, so events never hit that case.)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import orjson

from auditmw import _native

__all__ = [
    "dumps",
    "format_time",
    "last_id_ms",
    "list_changes",
    "loads",
    "new_event_id",
    "sanitize",
    "valid_text",
]

_OPTIONS = orjson.OPT_SORT_KEYS


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` canonically (RFC 8785 for auditmw events): sorted keys, compact.

    Raises:
        TypeError: ``obj`` holds a value that is not JSON (orjson's ``JSONEncodeError``).
    """
    return orjson.dumps(obj, option=_OPTIONS)


loads = orjson.loads

#: Nesting kept inside one event value; deeper values become ``TRUNCATED``.
MAX_DEPTH = 64
#: Longest object key kept; longer keys are cut.
MAX_KEY = 256
#: The marker that replaces a value too deep or of a type JSON cannot hold.
TRUNCATED = "[TRUNCATED]"
_SAFE_INT = 2**53


def _pointer(parent: str, key: str) -> str:
    return f"{parent}/{key.replace('~', '~0').replace('/', '~1')}"


def valid_text(value: str) -> str:
    """Return ``value`` as valid UTF-8 text: lone surrogates become ``\\udXXX`` escapes.

    .. versionadded:: 0.2.0
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def sanitize(value: Any, pointer: str, truncated: list[str], depth: int = 0) -> Any:
    """Return ``value`` made serializable, listing in ``truncated`` each pointer it changed.

    The degraded form is deterministic: strings with lone surrogates are escaped
    (``\\ud800``, not listed, as header bytes are); integers outside ±2**53 become
    their decimal string; NaN and infinities become ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``; non-string keys become their ``str()``, keys longer than
    :data:`MAX_KEY` are cut; a value nested deeper than :data:`MAX_DEPTH` or of a type
    JSON cannot hold becomes ``"[TRUNCATED]"``.  Every change but the escape adds
    the JSON Pointer of the changed value to ``truncated``.

    Args:
        value: a value about to enter an event (a body, a claim, an annotation).
        pointer: its JSON Pointer inside the event (e.g. ``"/request/body/json"``).
        truncated: the event's ``truncated`` list, appended to.
        depth: the nesting depth of ``value`` (callers pass 0).

    .. versionadded:: 0.2.0
    """
    kind = value.__class__
    if kind is str:
        return valid_text(value)
    if kind is bool or value is None:
        return value
    if kind is int:
        if -_SAFE_INT < value < _SAFE_INT:
            return value
        truncated.append(pointer)
        return str(value)
    if kind is float:
        if math.isfinite(value):
            return value
        truncated.append(pointer)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if depth >= MAX_DEPTH or not isinstance(value, dict | list | tuple):
        truncated.append(pointer)
        return TRUNCATED
    if isinstance(value, dict):
        return _sanitize_dict(value, pointer, truncated, depth)
    return [sanitize(item, f"{pointer}/{i}", truncated, depth + 1) for i, item in enumerate(value)]


#: Pointers listed per sanitized value; beyond, the value's own pointer stands for the rest.
MAX_LISTED = 64


def list_changes(changed: list[str], root: str) -> list[str]:
    """Return the pointers to add to ``truncated`` for one sanitized value.

    At most :data:`MAX_LISTED` pointers are listed; when there are more, the first
    ``MAX_LISTED - 1`` are kept and ``root`` (the value's own pointer) is added to
    stand for the rest, so a hostile body cannot grow the event by its changes.

    .. versionadded:: 0.2.0
    """
    if len(changed) <= MAX_LISTED:
        return changed
    return [*changed[: MAX_LISTED - 1], root]


def _key_text(key: object) -> str:
    try:
        return str(key)
    except Exception:  # a key whose __str__ fails
        return f"<{type(key).__name__}>"


def _sanitize_dict(
    value: dict[Any, Any], pointer: str, truncated: list[str], depth: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        text = valid_text(key if key.__class__ is str else _key_text(key))
        changed = key.__class__ is not str or len(text) > MAX_KEY
        text = text[:MAX_KEY]
        child = _pointer(pointer, text)
        if changed or text in out:
            truncated.append(child)
            if text in out:  # two keys became one: keep the first
                continue
        out[text] = sanitize(item, child, truncated, depth + 1)
    return out


#: (first microsecond of the cached second, "YYYY-MM-DDTHH:MM:SS." for it); none at first
#: (an int base of -1 would give format_time(0) the empty prefix)
_last: tuple[float, str] = (math.inf, "")


def format_time(ns: int) -> str:
    """Format a wall-clock ``time.time_ns()`` value as RFC 3339 UTC, 6 fractional digits, ``Z``."""
    global _last
    micros = ns // 1000
    # One tuple read and one tuple write: threads never pair a second with another's prefix.
    base, prefix = _last
    if not 0 <= micros - base < 1_000_000:
        # Formatting the date part is the slow bit; consecutive events share it.
        second = micros // 1_000_000
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        base = second * 1_000_000
        _last = (base, prefix)
    return "%s%06dZ" % (prefix, micros - base)  # noqa: UP031 (faster than an f-string here)


_id_lock = threading.Lock()
_id_last_ms = 0
_id_counter = 0
_id_prefix = ""  # "tttttttt-tttt-7": the time part of every id of _id_last_ms
_pool = ""  # hex digits from os.urandom
_pool_pos = 0
_POOL_BYTES = 4096
# The first hex digit of the fourth group carries the RFC 9562 variant (0b10) in its
# top two bits and two random bits below.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_event_id(now_ns: int | None = None) -> str:
    """Return a new UUIDv7 (RFC 9562) string, monotonic within this process.

    The 12-bit ``rand_a`` field is a counter seeded randomly each millisecond
    (RFC 9562 §6.2 method 1), so ids created in the same millisecond still sort.
    The 62 random bits of ``rand_b`` come from a buffered ``os.urandom`` pool, kept
    as hex digits (one system call per ~450 ids): ``os.urandom`` per id costs a
    system call and releases the GIL on the request path.
    """
    global _id_last_ms, _id_counter, _id_prefix, _pool, _pool_pos
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    with _id_lock:
        pos = _pool_pos
        if pos + 19 > len(_pool):
            _pool, pos = os.urandom(_POOL_BYTES).hex(), 0
        if ms > _id_last_ms:
            _id_last_ms = ms
            _id_counter = int(_pool[pos : pos + 3], 16) >> 1  # 11 bits: room to count up
            pos += 3
            _id_prefix = _time_prefix(ms)
        else:
            _id_counter += 1
            if _id_counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _id_last_ms += 1
                _id_counter = 0
                _id_prefix = _time_prefix(_id_last_ms)
        _pool_pos = pos + 16
        prefix, counter, rand = _id_prefix, _id_counter, _pool[pos : pos + 16]
    return f"{prefix}{counter:03x}-{_VARIANT[rand[0]]}{rand[1:4]}-{rand[4:]}"


def _time_prefix(ms: int) -> str:
    digits = "%012x" % (ms & 0xFFFF_FFFF_FFFF)
    return f"{digits[:8]}-{digits[8:]}-7"


def _reset_after_fork() -> None:
    # A child must never reuse the parent's buffered random bytes.
    global _id_lock, _pool, _pool_pos
    _id_lock = threading.Lock()
    _pool, _pool_pos = "", 0


os.register_at_fork(after_in_child=_reset_after_fork)

#: The Python code, the reference of the C functions (tests/native compare them).
py_format_time = format_time
py_new_event_id = new_event_id


def last_id_ms() -> int:
    """The millisecond of the newest event id this process made (by whichever core runs).

    Ids are monotonic: an id asked for at an earlier time is moved to this millisecond
    (or the next, when its counter ran out).
    """
    if new_event_id is not py_new_event_id and _native.id_state is not None:
        return _native.id_state()[0]
    return _id_last_ms


if (
    _native.format_time is not None
    and _native.new_event_id is not None
    and _native.id_state is not None
):
    # The C code formats what fits 64 bits (from 1970) and hands the rest to the reference.
    _native.use_format_time_reference(py_format_time)
    format_time = _native.format_time  # type: ignore[assignment]
    new_event_id = _native.new_event_id
