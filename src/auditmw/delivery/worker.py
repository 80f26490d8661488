"""One thread per sink stream: a slow or hung sink delays nobody else.

The delivery thread (:mod:`auditmw.delivery`) drains the request queue and hands
each :class:`ChannelWorker` the same ordered groups of events; each worker
encodes (chains) them for its own sink and sends them, retrying with backoff
while the sink fails.  A sink that accepts connections and never answers holds
only its own worker: the durable sinks' workers still store and acknowledge
their events, and at shutdown every healthy worker writes its final checkpoint
and closes its sink whether or not the hung one ever returns.

Durable acknowledgement goes through :class:`~auditmw.delivery.durable.Commits`: the
delivery thread numbers each drained group (its *generation*) and parks its waiters
there; a durable worker reports the generation it has stored everything up to, and
waiters are released once every durable worker has reached their generation.

A worker never dies from an exception of its own: each pass is guarded, and a
failure is recorded as ``audit.internal_error``.  If the thread dies anyway (a
sink raising a ``BaseException``), the supervisor in :mod:`auditmw.delivery`
starts a new one and records ``audit.delivery_restarted``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from auditmw.core.event import is_lifecycle
from auditmw.delivery.drops import dropped_event
from auditmw.exceptions import SinkError

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.config.values import DeliveryOptions
    from auditmw.core.protocols import AnySink
    from auditmw.core.records import Batch
    from auditmw.core.types import Event
    from auditmw.delivery.channel import Channel
    from auditmw.delivery.durable import Commits, Countdown

__all__ = ["ChannelWorker"]

logger = logging.getLogger("auditmw.delivery")

_TICK = 1.0  # seconds between a worker's ticks (checkpoints, drop records)


class ChannelWorker:
    """Delivers one channel from its own thread, with its own event loop.

    Args:
        channel: the sink stream.
        options: the delivery options (retry, backlog bound).
        commits: the durable acknowledgements shared by the workers.
        lifecycle: builds lifecycle events.
        notify: hands a lifecycle record to the delivery thread (written to every
            stream on its next pass).
    """

    def __init__(
        self,
        channel: Channel,
        *,
        options: DeliveryOptions,
        commits: Commits,
        lifecycle: Callable[..., Event],
        notify: Callable[[Event], None],
        progress: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.options = options
        self.commits = commits
        self._lifecycle = lifecycle
        self._notify = notify
        self._progress = progress
        # Events handed over (written by the delivery thread only), taken from the
        # inbox and skipped while far behind (the worker's, read by the other side).
        self.sent = 0
        self.taken = 0
        self.skipped = 0
        self.inbox: deque[Any] = deque()
        self.wake = threading.Event()
        self.stopping = False
        self.finished = threading.Event()
        self.thread: threading.Thread | None = None
        self._generation = 0
        self._next_tick = time.monotonic() + _TICK
        self._loop: asyncio.AbstractEventLoop | None = None
        if channel.durable:
            commits.register(id(self))

    # -- the thread ----------------------------------------------------------------

    def run(self) -> None:
        """The thread's body: deliver until stopped, then write the closing records."""
        self._loop = asyncio.new_event_loop()
        try:
            self._guarded(lambda: self._send(force=True))  # replay a previous spool
            while not self._pass():
                pass
            self._guarded(self._finish)
            self._guarded(self._close_sink)
        finally:
            self._loop.close()
            self.finished.set()

    def _pass(self) -> bool:
        """One wake-up; returns whether the worker is done."""
        self.wake.wait(self._timeout())
        self.wake.clear()
        stopping = self.stopping
        self._guarded(self._work)
        return stopping and not self.inbox

    def _timeout(self) -> float:
        now = time.monotonic()
        due = self._next_tick
        channel = self.channel
        if channel.failing and not channel.idle:  # idle: nothing to retry, so no spinning
            due = min(due, channel.retry_at)
        return max(0.0, due - now)

    def _guarded(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:  # one bad pass must not end delivery for this sink
            name = self.channel.name
            logger.error("auditmw sink %s: internal error %s", name, type(exc).__name__)
            details = {"stage": f"delivery:{self.channel.name}", "error": type(exc).__name__}
            self._notify(self._lifecycle("audit.internal_error", details, severity="high"))

    def _work(self) -> None:
        barriers = self._take_inbox()
        self._send()
        self._report()
        for barrier in barriers:
            barrier.arrive()
        if time.monotonic() >= self._next_tick:
            self._next_tick = time.monotonic() + _TICK
            self._tick()
            self._report()
        self._progress()

    def receive(
        self, generation: int, events: list[Event], countdowns: list[Countdown], *, shed: bool
    ) -> None:
        """Take one group from the delivery thread, in order: generation, events, barriers.

        With ``shed`` (``drop_and_record``), a sink a full buffer behind drops (and
        records) its copy of the group rather than hold up the others or the requests.
        """
        group = events
        if shed and not self.channel.durable and self.load() >= self.options.max_queue:
            group = [event for event in events if is_lifecycle(event)]
            self.skipped += len(events) - len(group)
        inbox = self.inbox
        inbox.append(generation)
        if group:
            self.sent += len(group)
            inbox.append(group)  # shared: each worker encodes, never edits, them
        inbox.extend(countdowns)
        self.wake.set()

    def load(self) -> int:
        """Events waiting for this sink (handed over, not yet stored); read by any thread."""
        return self.sent - self.taken + self.channel.backlog_events

    def _take_inbox(self) -> list[Countdown]:
        barriers: list[Countdown] = []
        inbox = self.inbox
        while inbox:
            item = inbox.popleft()
            if isinstance(item, list):
                self.taken += len(item)
                self._lost(self.channel.enqueue_events(item), "spool_full")
            elif isinstance(item, int):
                self._generation = item
            else:
                barriers.append(item)
        return barriers

    def _report(self) -> None:
        channel = self.channel
        if channel.durable and channel.idle:
            self.commits.stored(id(self), self._generation)

    # -- sending ---------------------------------------------------------------------

    def _send(self, *, force: bool = False) -> None:
        channel = self.channel
        waiting = channel.failing and time.monotonic() < channel.retry_at
        if waiting and not (force or self.stopping):
            self._park()
            return
        while (pending := channel.next()) is not None:
            try:
                self._emit(pending)
            except SinkError as exc:
                if exc.retryable:
                    self._failed(exc)
                    return
                # The sink refused this batch for good (a 4xx): retrying cannot help.
                channel.advance()
                channel.rejected += len(pending)
                self._failing(exc)
                if channel.durable:
                    self.commits.failed(self._generation)  # refused is not stored
                continue
            except Exception as exc:
                self._failed(exc)
                return
            # Here, and only here, this batch is known to be stored by this sink.
            channel.advance()
            pending.stored()  # only now may chain state name the batch's checkpoints
            if channel.failing:
                channel.failing = False
                channel.failures = 0
                logger.warning("auditmw sink %s recovered", channel.name)
                self._notify(self._lifecycle("audit.sink_recovered", {"sink": channel.name}))

    def _emit(self, batch: Batch) -> None:
        sink: AnySink = self.channel.sink
        emit = getattr(sink, "emit", None)
        if emit is not None:
            emit(batch)
        else:
            assert self._loop is not None
            self._loop.run_until_complete(sink.aemit(batch))  # type: ignore[union-attr]

    def _failing(self, exc: Exception) -> None:
        channel = self.channel
        if channel.failing:
            return
        channel.failing = True
        logger.error("auditmw sink %s failed: %s", channel.name, type(exc).__name__)
        details = {
            "sink": channel.name,
            "error": type(exc).__name__,
            "message": str(exc)[:256] if isinstance(exc, SinkError) else "",
            "retryable": not isinstance(exc, SinkError) or exc.retryable,
        }
        self._notify(self._lifecycle("audit.sink_failed", details, severity="high"))

    def _failed(self, exc: Exception) -> None:
        opts, channel = self.options, self.channel
        channel.failures += 1
        delay = min(opts.retry_max, opts.retry_initial * 2 ** min(channel.failures - 1, 30))
        delay *= 0.5 + random.random() / 2
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            delay = max(delay, min(float(hint), opts.retry_max))
        channel.retry_at = time.monotonic() + delay
        self._failing(exc)
        self._park()

    def _park(self) -> None:
        """Keep a failing channel's backlog bounded: in the spool, or trimmed in memory."""
        channel = self.channel
        if channel.spool is not None:
            channel.spool_backlog()  # what does not fit waits in memory, unencoded
            self._lost(channel.trim(self.options.max_queue), "spool_full")
            return
        self._lost(channel.trim(self.options.max_queue), "sink_backlog_full")

    def _lost(self, count: int, reason: str) -> None:
        # Counted here, recorded as one audit.events_dropped per tick (see _tick).
        if count:
            channel = self.channel
            logger.error("auditmw sink %s lost %d events: %s", channel.name, count, reason)
            channel.lost += count
            channel.lost_reason = reason
            if channel.durable:
                self.commits.failed(self._generation)  # those requests must not succeed

    # -- periodic and closing records --------------------------------------------------

    def _tick(self) -> None:
        channel = self.channel
        for record in self._drop_records():
            self._notify(record)
        if channel.failing:
            # No heartbeat checkpoints while the sink is down: they could not be
            # delivered, and encoding the backlog for them would pin it in memory.
            self._send()
            return
        channel.encode_backlog()  # the checkpoint must follow the events it covers
        extra = channel.encoder.tick(time.time_ns())
        if extra:
            self._lost(channel.enqueue(extra), "spool_full")
        self._send()

    def _drop_records(self) -> list[Event]:
        channel = self.channel
        records = []
        unencodable = getattr(channel.encoder, "dropped", 0)
        if unencodable:
            channel.encoder.dropped = 0  # type: ignore[attr-defined]
            records.append(self._dropped(unencodable, "unencodable"))
        if channel.rejected:
            records.append(self._dropped(channel.rejected, "sink_rejected"))
            channel.rejected = 0
        if channel.lost:
            records.append(self._dropped(channel.lost, channel.lost_reason))
            channel.lost = 0
        skipped = self.skipped
        if skipped:
            self.skipped -= skipped  # only the delivery thread adds: nothing is lost here
            records.append(self._dropped(skipped, "sink_backlog_full"))
        return records

    def _dropped(self, count: int, reason: str) -> Event:
        return dropped_event(self._lifecycle, count, reason, sink=self.channel.name)

    def _finish(self) -> None:
        channel = self.channel
        self._take_inbox()
        if not (channel.failing and channel.spool is not None):
            self._send(force=True)  # may record a recovery, which arrives in the inbox
        self._take_inbox()
        records = self._drop_records()
        if records:
            self._lost(channel.enqueue_events(records), "spool_full")
        channel.encode_backlog()  # the closing checkpoint must follow every event
        closing = channel.encoder.finish()
        if closing:
            channel.enqueue(closing)
        if not (channel.failing and channel.spool is not None):
            self._send(force=True)  # a last attempt, unless it would stall
        if channel.durable and channel.idle:
            self.commits.stored(id(self), self._generation)
        if channel.spool is not None:
            channel.spool_backlog()
            if channel.spool.pending:
                logger.warning(
                    "auditmw sink %s: undelivered records kept in the spool for the next start",
                    channel.name,
                )
            channel.spool.close()
        if channel.backlog_events:  # a down sink with no spool, or a full one
            logger.error(
                "auditmw sink %s closed with %d undelivered records",
                channel.name,
                channel.backlog_events,
            )

    def _close_sink(self) -> None:
        sink = self.channel.sink
        try:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
            else:
                assert self._loop is not None
                self._loop.run_until_complete(sink.aclose())  # type: ignore[union-attr]
        except Exception as exc:
            logger.error("auditmw could not close sink %s: %s", sink, type(exc).__name__)
