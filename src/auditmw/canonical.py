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

_last: tuple[int, str] = (-1, "")


def format_time(ns: int) -> str:
    """Format a wall-clock ``time.time_ns()`` value as RFC 3339 UTC, 6 fractional digits, ``Z``."""
    global _last
    second, micros = divmod(ns // 1000, 1_000_000)
    # One tuple read and one tuple write: threads never pair a second with another's prefix.
    cached_second, prefix = _last
    if second != cached_second:
        # Formatting the date part is the slow bit; consecutive events share it.
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last = (second, prefix)
    return f"{prefix}.{micros:06d}Z"


_id_lock = threading.Lock()
_id_last_ms = 0
_id_counter = 0
_pool = b""
_pool_pos = 0
_POOL_SIZE = 4096


def _random64() -> int:
    """64 random bits from a buffered ``os.urandom`` pool (one syscall per 512 ids).

    Called with ``_id_lock`` held.  ``os.urandom`` per id costs a system call and
    releases the GIL on the request path; the pool keeps CSPRNG quality without that.
    """
    global _pool, _pool_pos
    if _pool_pos + 8 > len(_pool):
        _pool, _pool_pos = os.urandom(_POOL_SIZE), 0
    start = _pool_pos
    _pool_pos = start + 8
    return int.from_bytes(_pool[start : start + 8], "big")


def new_event_id(now_ns: int | None = None) -> str:
    """Return a new UUIDv7 (RFC 9562) string, monotonic within this process.

    The 12-bit ``rand_a`` field is a counter seeded randomly each millisecond
    (RFC 9562 §6.2 method 1), so ids created in the same millisecond still sort.
    """
    global _id_last_ms, _id_counter
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    with _id_lock:
        tail = _random64()
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
    h = "%032x" % (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | counter << 64
        | 0b10 << 62
        | (tail & 0x3FFF_FFFF_FFFF_FFFF)
    )
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reset_after_fork() -> None:
    # A child must never reuse the parent's buffered random bytes.
    global _id_lock, _pool, _pool_pos
    _id_lock = threading.Lock()
    _pool, _pool_pos = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)
