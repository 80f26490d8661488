"""Canonical JSON, event ids and timestamps.

Events contain no floats, only ASCII keys, and integers well inside ±2**53, so a
compact, key-sorted orjson serialization is the RFC 8785 (JCS) canonical form.  The
test suite checks that property against the ``rfc8785`` package.  (For keys outside
the Basic Multilingual Plane the two differ: JCS sorts by UTF-16 code units, orjson by
code points.  The pipeline keeps every key ASCII, so events never hit that case.)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import orjson

__all__ = ["dumps", "format_time", "loads", "new_event_id"]

_OPTIONS = orjson.OPT_SORT_KEYS


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` canonically (RFC 8785 for auditmw events): sorted keys, compact.

    Raises:
        TypeError: ``obj`` holds a value that is not JSON (orjson's ``JSONEncodeError``).
    """
    return orjson.dumps(obj, option=_OPTIONS)


loads = orjson.loads

_last_second = -1
_last_prefix = ""


def format_time(ns: int) -> str:
    """Format a wall-clock ``time.time_ns()`` value as RFC 3339 UTC, 6 fractional digits, ``Z``."""
    global _last_second, _last_prefix
    second, micros = divmod(ns // 1000, 1_000_000)
    if second != _last_second:
        # Formatting the date part is the slow bit; consecutive events share it.
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = second
        return f"{_last_prefix}.{micros:06d}Z"
    return f"{_last_prefix}.{micros:06d}Z"


_id_lock = threading.Lock()
_id_last_ms = 0
_id_counter = 0


def new_event_id(now_ns: int | None = None) -> str:
    """Return a new UUIDv7 (RFC 9562) string, monotonic within this process.

    The 12-bit ``rand_a`` field is a counter seeded randomly each millisecond
    (RFC 9562 §6.2 method 1), so ids created in the same millisecond still sort.
    """
    global _id_last_ms, _id_counter
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    tail = int.from_bytes(os.urandom(8), "big")
    with _id_lock:
        if ms > _id_last_ms:
            _id_last_ms = ms
            _id_counter = tail >> 53  # 11 random bits: room to count up within the ms
        else:
            ms = _id_last_ms
            _id_counter += 1
            if _id_counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _id_last_ms = ms = ms + 1
                _id_counter = 0
        counter = _id_counter
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | counter << 64
        | 0b10 << 62
        | (tail & 0x3FFF_FFFF_FFFF_FFFF)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reset_after_fork() -> None:
    global _id_lock
    _id_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
