"""One sink stream inside the delivery thread: its encoder, backlog and failure state.

Batches wait in memory; once the sink fails and a spool is configured, they wait in
the spool instead, and everything queued after stays behind them so that order
is kept across an outage.  Only the delivery thread touches a channel.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditmw._spool import Spool
    from auditmw.sinks.base import Batch, Encoder
    from auditmw.types import AnySink

__all__ = ["Channel"]

logger = logging.getLogger("auditmw.delivery")


class Channel:
    """One sink with its encoder, its backlog (memory, then spool) and its failure state."""

    def __init__(
        self, name: str, sink: AnySink, encoder: Encoder, durable: bool, spool: Spool | None
    ) -> None:
        self.name = name
        self.sink = sink
        self.encoder = encoder
        self.durable = durable
        self.spool = spool
        self.backlog: deque[Batch] = deque()
        self.backlog_events = 0
        self.failing = False
        self.failures = 0
        self.retry_at = 0.0
        self.rejected = 0
        self._from_spool = False

    @property
    def idle(self) -> bool:
        return not self.backlog and not (self.spool is not None and self.spool.pending)

    def enqueue(self, batch: Batch) -> int:
        """Queue ``batch`` behind everything pending; return how many events were dropped."""
        if self.spool is not None and self.spool.pending:
            return self.to_spool(batch)
        self.backlog.append(batch)
        self.backlog_events += len(batch)
        return 0

    def to_spool(self, batch: Batch) -> int:
        assert self.spool is not None
        try:
            return 0 if self.spool.append(batch) else len(batch)
        except OSError as exc:
            logger.error("auditmw spool of %s failed: %s", self.name, exc.strerror)
            return len(batch)

    def spool_backlog(self) -> int:
        """Move the memory backlog to the spool, in order; return the events dropped."""
        dropped = 0
        while self.backlog:
            batch = self.backlog.popleft()
            self.backlog_events -= len(batch)
            dropped += self.to_spool(batch)
        return dropped

    def next(self) -> Batch | None:
        if self.spool is not None and self.spool.pending:
            batch = self.spool.peek()
            if batch is not None:
                self._from_spool = True
                return batch
        self._from_spool = False
        return self.backlog[0] if self.backlog else None

    def advance(self) -> None:
        if self._from_spool:
            assert self.spool is not None
            self.spool.advance()
        else:
            self.backlog_events -= len(self.backlog.popleft())
