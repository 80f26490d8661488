"""An in-memory sink for tests, implementing both sink protocols.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from auditmw.core.types import Event
    from auditmw.sinks.base import Batch

__all__ = ["MemorySink"]


class MemorySink:
    """Keeps every stored record in memory (like httpx's ``MockTransport``).

    ``lines`` holds the exact bytes a real sink would have stored; ``events`` holds
    them parsed back, so tests see what was stored, integrity fields included.

    Args:
        format: the stored format.
        fail: when true, every emit raises (to test failure handling).

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, format: str = "auditmw", fail: bool = False) -> None:
        self.format = format
        self.fail = fail
        self.lines: list[bytes] = []
        self.closed = False
        self._lock = threading.Lock()

    @property
    def events(self) -> list[Event]:
        """The stored records, parsed."""
        with self._lock:
            return [orjson.loads(line) for line in self.lines]

    def emit(self, batch: Batch) -> None:
        """Store the batch (or raise :class:`~auditmw.exceptions.SinkUnavailableError`)."""
        if self.fail:
            from auditmw.exceptions import SinkUnavailableError

            raise SinkUnavailableError("MemorySink set to fail")
        with self._lock:
            self.lines.extend(batch.lines)

    async def aemit(self, batch: Batch) -> None:
        """Async twin of :meth:`emit`."""
        self.emit(batch)

    def close(self) -> None:
        """Mark the sink closed."""
        self.closed = True

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    def clear(self) -> None:
        """Forget every stored record."""
        with self._lock:
            self.lines.clear()
