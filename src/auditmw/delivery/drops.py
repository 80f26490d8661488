"""Losses are counted, never silent: each becomes an ``audit.events_dropped`` record.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from auditmw.core.canonical import format_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.core.types import Event

__all__ = ["DropCounter", "dropped_event"]


class DropCounter:
    """Events refused on the request side (buffer full), until the delivery thread records them.

    The count is taken off only once its record exists (:meth:`settle`), so a thread
    that dies in between loses nothing.
    """

    __slots__ = ("_lock", "count", "first", "last")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first = 0
        self.last = 0

    def add(self) -> None:
        """Count one refused event at the current time."""
        now = time.time_ns()
        with self._lock:
            if self.count == 0:
                self.first = now
            self.count += 1
            self.last = now

    def snapshot(self) -> tuple[int, int, int] | None:
        """``(count, first_ns, last_ns)`` of the drops not yet recorded, or ``None``."""
        if not self.count:
            return None
        with self._lock:
            return self.count, self.first, self.last

    def settle(self, count: int) -> None:
        """Take off ``count`` drops whose record now exists."""
        with self._lock:
            self.count -= count


def dropped_event(
    lifecycle: Callable[..., Event],
    count: int,
    reason: str,
    *,
    first: int | None = None,
    last: int | None = None,
    **extra: Any,
) -> Event:
    """The ``audit.events_dropped`` record of ``count`` events lost for ``reason``."""
    now = time.time_ns()
    details: dict[str, Any] = {
        "count": count,
        "first_time": format_time(now if first is None else first),
        "last_time": format_time(now if last is None else last),
        "reason": reason,
        **extra,
    }
    return lifecycle("audit.events_dropped", details, severity="high")
