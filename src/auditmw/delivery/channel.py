"""One sink stream inside the delivery thread: its encoder, backlog and failure state.

Events wait in memory, still unencoded: the channel's encoder (and so its integrity
chain) sees them only when they are first sent or moved to the spool.  The chain
therefore advances only for records handed to the sink stream, and trimming a
backlog during an outage never cuts a hole in a chain — only never-encoded events
are dropped, and the drop is recorded.  Once the sink fails and a spool is
configured, batches wait in the spool instead, and everything queued after stays
behind them so that order is kept across an outage.  A full spool takes nothing more:
later events wait in memory, unencoded, and are trimmed (and the drop recorded) there,
so a full spool never cuts a hole in a chain either.  Only the delivery thread
touches a channel.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from auditmw.core.event import is_lifecycle
from auditmw.core.records import Batch

if TYPE_CHECKING:
    from auditmw.core.protocols import AnySink
    from auditmw.core.records import Encoder
    from auditmw.core.types import Event
    from auditmw.delivery.spool import Spool

__all__ = ["Channel"]

#: Events encoded between two chances for request threads to take the GIL.
ENCODE_SLICE = 64

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
        # Encoded batches (sent at least once, or records of the encoder's own) and
        # raw event lists not encoded yet, in stream order.
        self.backlog: deque[Batch | list[Event]] = deque()
        self.backlog_events = 0
        self.failing = False
        self.failures = 0
        self.retry_at = 0.0
        self.rejected = 0
        self.lost = 0  # events dropped since the last tick, recorded once per tick
        self.lost_reason = "sink_backlog_full"
        self._from_spool = False

    @property
    def idle(self) -> bool:
        return not self.backlog and not (self.spool is not None and self.spool.pending)

    def enqueue(self, batch: Batch) -> int:
        """Queue encoded ``batch`` behind everything pending; return the events dropped.

        An encoded batch is never dropped (that would cut a hole in its chain): when
        the spool is full it waits in memory, in order.
        """
        self.backlog.append(batch)
        self.backlog_events += len(batch)
        if self.spool is not None and self.spool.pending:
            self.spool_backlog()
        return 0

    def enqueue_events(self, events: list[Event]) -> int:
        """Queue raw ``events``; they are encoded when first sent or spooled."""
        self.backlog.append(events)
        self.backlog_events += len(events)
        if self.spool is not None and self.spool.pending:
            self.spool_backlog()
        return 0

    def encode_backlog(self) -> None:
        """Encode every raw event list waiting, in order (before the encoder's own records)."""
        for index, item in enumerate(self.backlog):
            if isinstance(item, list):
                batch = self._encode(item)
                self.backlog[index] = batch
                self.backlog_events += len(batch) - len(item)

    def trim(self, limit: int) -> int:
        """Drop the oldest never-encoded request events while more than ``limit`` wait.

        Encoded batches are kept (dropping them would leave a gap in the chain), and so
        are lifecycle records (they explain the outage and the drops).  Returns the
        number of events dropped.
        """
        dropped = 0
        index = 1  # the head may be mid-send
        while self.backlog_events > limit and index < len(self.backlog):
            item = self.backlog[index]
            if not isinstance(item, list):
                index += 1
                continue
            kept = [event for event in item if is_lifecycle(event)]
            removed = len(item) - len(kept)
            dropped += removed
            self.backlog_events -= removed
            if kept:
                self.backlog[index] = kept
                index += 1
            else:
                del self.backlog[index]
        if self.backlog_events > limit:
            self._coalesce_drop_records()
        return dropped

    def _coalesce_drop_records(self) -> None:
        """Merge the never-encoded ``audit.events_dropped`` records: one per reason and sink.

        A long outage adds such a record every tick, and trimming keeps lifecycle
        records; merged, they stay bounded by configuration rather than growing with
        the outage's length.  The merged record keeps the first one's place and id,
        sums the counts and spans first to last time.  Records are shared with the
        other channels, so the merge builds a new dict instead of editing one.
        """
        merged: dict[tuple[object, object], tuple[int, int]] = {}  # key -> (item, position)
        index = 1  # the head may be mid-send
        while index < len(self.backlog):
            item = self.backlog[index]
            if not isinstance(item, list):
                index += 1
                continue
            kept: list[Event] = []
            for event in item:
                if event.get("kind") != "audit.events_dropped":
                    kept.append(event)
                    continue
                details = event.get("details") or {}
                key = (details.get("reason"), details.get("sink"))
                if key not in merged:
                    merged[key] = (index, len(kept))
                    kept.append(event)
                    continue
                at_item, at_pos = merged[key]
                target = kept if at_item == index else self.backlog[at_item]
                assert isinstance(target, list)
                first = target[at_pos]
                into = first["details"]
                target[at_pos] = {
                    **first,
                    "details": {
                        **into,
                        "count": into.get("count", 0) + details.get("count", 0),
                        "last_time": max(into.get("last_time", ""), details.get("last_time", "")),
                    },
                }
                self.backlog_events -= 1
            if kept:
                self.backlog[index] = kept
                index += 1
            else:
                del self.backlog[index]

    def _to_spool(self, batch: Batch) -> bool:
        assert self.spool is not None
        try:
            return self.spool.append(batch)
        except OSError as exc:
            logger.error("auditmw spool of %s failed: %s", self.name, exc.strerror)
            return False

    def spool_backlog(self) -> int:
        """Move the memory backlog to the spool, in order, while it has room.

        Raw events are encoded (chained) only as they go in.  When the spool is full
        the rest waits in memory: an encoded batch at the front stays whole, the raw
        events behind it stay unencoded, so :meth:`trim` can drop them without cutting
        a hole in the chain.  Returns the events dropped: always 0.
        """
        while self.backlog:
            item = self.backlog[0]
            batch = self._encode(item) if isinstance(item, list) else item
            if isinstance(item, list):
                self.backlog[0] = batch
                self.backlog_events += len(batch) - len(item)
            if not self._to_spool(batch):
                break  # full: the encoded batch keeps its place at the front
            self.backlog.popleft()
            self.backlog_events -= len(batch)
        return 0

    def next(self) -> Batch | None:
        if self.spool is not None and (damaged := self.spool.take_damage()):
            # Torn spool records (a crash mid-write): lost, recorded on the next tick.
            self.lost, self.lost_reason = self.lost + damaged, "spool_damaged"
        if self.spool is not None and self.spool.pending:
            batch = self.spool.peek()
            if batch is not None:
                self._from_spool = True
                return batch
        self._from_spool = False
        if not self.backlog:
            return None
        head = self.backlog[0]
        if isinstance(head, list):  # first attempt: encode (chain) it now
            batch = self._encode(head)
            self.backlog[0] = batch
            self.backlog_events += len(batch) - len(head)
            return batch
        return head

    def advance(self) -> None:
        if self._from_spool:
            assert self.spool is not None
            self.spool.advance()
        else:
            self.backlog_events -= len(self.backlog.popleft())

    def _encode(self, events: list[Event]) -> Batch:
        """Encode ``events`` in slices of ``ENCODE_SLICE``, yielding the GIL between them.

        Chaining a batch of hundreds of events holds the GIL for milliseconds; the event
        loop serving requests would wait that long (the end-to-end p99).  Between slices
        ``time.sleep(0)`` lets a waiting request thread run.  The records are the same as
        one call's: an encoder's state carries over from call to call.
        """
        if len(events) <= ENCODE_SLICE:
            return self.encoder.encode(events)
        batch = Batch()
        for start in range(0, len(events), ENCODE_SLICE):
            if start:
                time.sleep(0)
            batch.extend(self.encoder.encode(events[start : start + ENCODE_SLICE]))
        return batch
