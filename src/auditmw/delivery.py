"""Delivery: one background thread that serializes, chains and writes events.

Request threads call :meth:`Delivery.submit`, which appends to a deque and never
does I/O.  The delivery thread wakes when a batch is full or ``max_wait_ms`` has
passed, encodes the events once per sink stream (format, then integrity chain),
and hands each sink a :class:`~auditmw.sinks.base.Batch`.  Async sinks run on the
thread's own event loop, so every sink serves WSGI and ASGI apps alike.

Nothing is dropped silently: when the buffer is full the overflow policy applies
and the count is written as an ``audit.events_dropped`` event; a failing sink keeps
its backlog (in memory, or in an on-disk spool when ``spool_dir`` is set) and is
retried with exponential backoff and jitter, and the episode is recorded as
``audit.sink_failed`` / ``audit.sink_recovered``.

In durable mode, :meth:`Delivery.submit_durable` returns a
:class:`~auditmw._durable.DurableWaiter` that the delivery thread resolves once every
durable sink stored the event; events drained together share one write (group commit).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from auditmw import _process
from auditmw._channel import Channel
from auditmw._durable import DurableWaiter, resolve_all
from auditmw._spool import Spool
from auditmw.canonical import format_time
from auditmw.exceptions import SinkError
from auditmw.sinks.base import Batch, PlainEncoder

if TYPE_CHECKING:
    from auditmw.config import DeliveryOptions
    from auditmw.sinks.base import EncoderFactory
    from auditmw.types import AnySink, Event

__all__ = ["Delivery", "DurableWaiter"]

logger = logging.getLogger("auditmw.delivery")

LifecycleFactory = Callable[..., "Event"]
_TICK_NS = 1_000_000_000
_COMMIT_DELAY = 0.0002  # seconds a group commit waits for company (like commit_delay)


class _Barrier:
    """A marker in the queue: set once every event queued before it was handed to the sinks."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Delivery:
    """The per-process delivery thread for one :class:`~auditmw.auditor.Auditor`.

    Args:
        sinks: where events go.
        options: buffer, batching, overflow, mode, spool and retry settings.
        integrity: an encoder factory chaining each stream, or ``None``.
        lifecycle: builds lifecycle events (``kind, details, severity=``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        sinks: Sequence[AnySink],
        options: DeliveryOptions,
        *,
        integrity: EncoderFactory | None = None,
        lifecycle: LifecycleFactory,
    ) -> None:
        self.options = options
        self._sinks = tuple(sinks)
        self._integrity = integrity
        self._lifecycle = lifecycle
        self._max_wait = options.max_wait_ms / 1000
        self._durable = any(self._is_durable(sink) for sink in self._sinks)
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._waiting = 0
        self._lock = threading.Lock()
        self._drops = 0
        self._drop_first = 0
        self._drop_last = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pid = os.getpid()
        self._channels: list[Channel] = []
        self._pending: list[DurableWaiter] = []
        # Lifecycle records raised while delivering (sink failed, events lost): written
        # on the next pass, never from inside a send, so a failing sink cannot recurse.
        self._notices: list[Event] = []
        self._group = 0  # waiters released by the last durable commit

    def _is_durable(self, sink: AnySink) -> bool:
        return (getattr(sink, "delivery_mode", None) or self.options.mode) == "durable"

    @property
    def is_durable(self) -> bool:
        """Whether at least one sink runs in durable mode."""
        return self._durable

    # -- request side ---------------------------------------------------------------

    def submit(self, event: Event, *, force: bool = False) -> None:
        """Queue ``event`` for delivery; never does I/O, may wait under ``block`` overflow.

        Args:
            event: the event.
            force: bypass the buffer limit (lifecycle events, which are rare and must
                never be dropped).
        """
        self._put(event, None, force)

    def submit_durable(self, event: Event) -> DurableWaiter:
        """Queue ``event`` and return a waiter resolved once every durable sink stored it.

        The delivery thread is woken at once; events queued meanwhile share its next
        write (group commit).  A waiter whose event had to be dropped resolves ``False``.
        """
        waiter = DurableWaiter()
        self._put(event, waiter, False)
        return waiter

    def _put(self, event: Event, waiter: DurableWaiter | None, force: bool) -> None:
        if self._thread is None or self._pid != _process.pid:
            self._start()
        queue = self._queue
        if len(queue) >= self.options.max_queue and not force and not self._make_room():
            self._record_drop()
            if waiter is not None:
                waiter.resolve(False)
            return
        if waiter is None:
            queue.append(event)
            if len(queue) >= self.options.max_batch:
                self._wake.set()
        else:
            # The waiter follows its event in the queue, like a barrier.
            queue.extend((event, waiter))
            self._wake.set()

    def _make_room(self) -> bool:
        if self.options.overflow != "block" or self._stopping:
            return False
        deadline = time.monotonic() + self.options.block_timeout
        with self._space:
            self._waiting += 1
            self._wake.set()
            try:
                while len(self._queue) >= self.options.max_queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._space.wait(remaining)
            finally:
                self._waiting -= 1
        return True

    def _record_drop(self) -> None:
        now = time.time_ns()
        with self._lock:
            if self._drops == 0:
                self._drop_first = now
            self._drops += 1
            self._drop_last = now
        self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event submitted before this call was handed to the sinks.

        Returns:
            ``True`` when flushed, ``False`` on timeout or if delivery is closed.
        """
        if not self.is_running:
            return not self._queue
        barrier = _Barrier()
        self._queue.append(barrier)
        self._wake.set()
        return barrier.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Drain the buffer, write closing records and close the sinks.

        Events a sink could not take before the timeout go to the spool (when
        ``spool_dir`` is set) and are sent by the next process that starts.
        Idempotent.  A later :meth:`submit` starts a new thread (and reopens sinks that
        reopen lazily), so an app served twice in one process keeps auditing.
        """
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stopping = True
        self._wake.set()
        thread.join(self.options.shutdown_timeout if timeout is None else timeout)
        if thread.is_alive():
            logger.error("auditmw delivery did not drain within the shutdown timeout")
            return
        with self._lock:
            self._thread = None
            self._stopping = False

    @property
    def is_running(self) -> bool:
        """Whether the delivery thread is running in this process."""
        return self._thread is not None and self._pid == os.getpid()

    def _start(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._after_fork()
            if self._thread is not None:
                return
            self._stopping = False
            self._channels = [self._channel(i, sink) for i, sink in enumerate(self._sinks)]
            thread = threading.Thread(target=self._run, name="auditmw-delivery", daemon=True)
            self._thread = thread
            thread.start()

    def _channel(self, index: int, sink: AnySink) -> Channel:
        fmt = getattr(sink, "format", "auditmw")
        name = f"{type(sink).__name__}:{index}"
        encoder = self._integrity.encoder_for(fmt, name) if self._integrity else PlainEncoder(fmt)
        spool = None
        if self.options.spool_dir is not None:
            try:
                spool = Spool(self.options.spool_dir, name, self.options.spool_max_bytes)
            except OSError as exc:
                logger.error("auditmw cannot open the spool of %s: %s", name, exc)
        return Channel(name, sink, encoder, self._is_durable(sink), spool)

    def _after_fork(self) -> None:
        # The parent owns what it had queued (and its spool locks); the child starts clean.
        for channel in self._channels:
            if channel.spool is not None:
                channel.spool.forget()
        sinks, options = self._sinks, self.options
        self._reset()
        self._sinks, self.options = sinks, options

    # -- delivery thread --------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        next_tick = time.monotonic_ns() + _TICK_NS
        try:
            self._retry(force=True)  # replay what a previous process left in the spool
            while True:
                self._wake.wait(self._max_wait)
                if self._group > 1:
                    # Group commit: the last commit served several requests at once, so
                    # more are likely on their way; let them join this write.
                    time.sleep(_COMMIT_DELAY)
                self._wake.clear()
                stopping = self._stopping
                self._drain()
                self._retry()
                now = time.monotonic_ns()
                if now >= next_tick:
                    next_tick = now + _TICK_NS
                    self._tick()
                if stopping and not self._queue:
                    break
            self._finish()
        except BaseException:  # the thread must report, not vanish
            logger.exception("auditmw delivery thread crashed")
            raise
        finally:
            loop.close()

    def _drain(self) -> None:
        queue = self._queue
        max_batch = self.options.max_batch
        while True:
            events: list[Event] = []
            barriers: list[_Barrier] = []
            while queue and len(events) < max_batch:
                item = queue.popleft()
                kind = type(item)
                if kind is _Barrier:
                    barriers.append(item)
                elif kind is DurableWaiter:
                    self._pending.append(item)
                else:
                    events.append(item)
            # Dropped events arrived while the queued ones waited: record them after.
            drops = self._take_drops()
            if drops is not None:
                events.append(drops)
            if self._notices:
                events.extend(self._notices)
                self._notices = []
            if self._waiting:
                with self._space:
                    self._space.notify_all()
            if events:
                self._deliver(events)
            self._settle()
            for barrier in barriers:
                barrier.done.set()
            if not queue:
                return

    def _settle(self, ok: bool = True) -> None:
        """Release durable waiters once every durable channel has stored everything."""
        if self._pending and (not ok or all(c.idle for c in self._channels if c.durable)):
            pending, self._pending = self._pending, []
            self._group = len(pending)
            resolve_all(pending, ok)

    def _retry(self, *, force: bool = False) -> None:
        now = time.monotonic()
        notices: list[Event] = []
        for channel in self._channels:
            due = channel.failing and now >= channel.retry_at
            if (due or force) and not channel.idle:
                self._send(channel, Batch(), notices)
        self._notices.extend(notices)
        self._settle()

    def _take_drops(self) -> Event | None:
        if not self._drops:
            return None
        with self._lock:
            count, first, last = self._drops, self._drop_first, self._drop_last
            self._drops = 0
        logger.error("auditmw dropped %d events: buffer full", count)
        return self._dropped(count, "buffer_full", first=first, last=last)

    def _dropped(self, count: int, reason: str, sink: str = "", **window: int) -> Event:
        now = time.time_ns()
        details: dict[str, Any] = {
            "count": count,
            "first_time": format_time(window.get("first", now)),
            "last_time": format_time(window.get("last", now)),
            "reason": reason,
        }
        if sink:
            details["sink"] = sink
        return self._lifecycle("audit.events_dropped", details, severity="high")

    def _deliver(self, events: list[Event]) -> None:
        notices: list[Event] = []
        for channel in self._channels:
            self._lost(channel, channel.enqueue_events(events), "spool_full", notices)
            self._send(channel, Batch(), notices)
        self._notices.extend(notices)

    def _tick(self) -> None:
        now = time.time_ns()
        notices: list[Event] = []
        for channel in self._channels:
            if channel.rejected:
                notices.append(self._dropped(channel.rejected, "sink_rejected", channel.name))
                channel.rejected = 0
            if channel.lost:
                notices.append(self._dropped(channel.lost, channel.lost_reason, channel.name))
                channel.lost = 0
            if channel.failing:
                # No heartbeat checkpoints while the sink is down: they could not be
                # delivered, and encoding the backlog for them would pin it in memory.
                self._send(channel, Batch(), notices)
                continue
            channel.encode_backlog()  # the checkpoint must follow the events it covers
            extra = channel.encoder.tick(now)
            self._send(channel, extra or Batch(), notices)
        self._notices.extend(notices)

    def _send(self, channel: Channel, batch: Batch, notices: list[Event]) -> None:
        if batch:
            self._lost(channel, channel.enqueue(batch), "spool_full", notices)
        if channel.failing and time.monotonic() < channel.retry_at and not self._stopping:
            self._park(channel, notices)
            return
        while (pending := channel.next()) is not None:
            try:
                self._emit(channel.sink, pending)
            except SinkError as exc:
                if exc.retryable:
                    self._failed(channel, exc, notices)
                    return
                # The sink refused this batch for good (a 4xx): retrying cannot help.
                channel.advance()
                channel.rejected += len(pending)
                self._failing(channel, exc, notices)
                if channel.durable:
                    self._settle(ok=False)  # refused is not stored
                continue
            except Exception as exc:
                self._failed(channel, exc, notices)
                return
            channel.advance()
            pending.stored()  # only now may state name the batch's checkpoints
            if channel.failing:
                channel.failing = False
                channel.failures = 0
                logger.warning("auditmw sink %s recovered", channel.name)
                notices.append(self._lifecycle("audit.sink_recovered", {"sink": channel.name}))

    def _emit(self, sink: AnySink, batch: Batch) -> None:
        emit = getattr(sink, "emit", None)
        if emit is not None:
            emit(batch)
        else:
            self._loop.run_until_complete(sink.aemit(batch))  # type: ignore[union-attr]

    def _failing(self, channel: Channel, exc: Exception, notices: list[Event]) -> None:
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
        notices.append(self._lifecycle("audit.sink_failed", details, severity="high"))

    def _failed(self, channel: Channel, exc: Exception, notices: list[Event]) -> None:
        opts = self.options
        channel.failures += 1
        delay = min(opts.retry_max, opts.retry_initial * 2 ** min(channel.failures - 1, 30))
        delay *= 0.5 + random.random() / 2
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            delay = max(delay, min(float(hint), opts.retry_max))
        channel.retry_at = time.monotonic() + delay
        self._failing(channel, exc, notices)
        self._park(channel, notices)

    def _park(self, channel: Channel, notices: list[Event]) -> None:
        """Keep a failing channel's backlog bounded: in the spool, or trimmed in memory."""
        if channel.spool is not None:
            self._lost(channel, channel.spool_backlog(), "spool_full", notices)
            return
        self._lost(channel, channel.trim(self.options.max_queue), "sink_backlog_full", notices)

    def _lost(self, channel: Channel, count: int, reason: str, notices: list[Event]) -> None:
        # Counted here, recorded as one audit.events_dropped per tick (see _tick).
        del notices
        if count:
            logger.error("auditmw sink %s lost %d events: %s", channel.name, count, reason)
            channel.lost += count
            channel.lost_reason = reason
            if channel.durable:
                self._settle(ok=False)  # those requests must not report success

    def _finish(self) -> None:
        pending, self._notices = self._notices, []
        if pending:
            self._deliver(pending)
        for channel in self._channels:
            if channel.lost:
                notice = self._dropped(channel.lost, channel.lost_reason, channel.name)
                channel.enqueue_events([notice])
                channel.lost = 0
            channel.encode_backlog()  # the closing checkpoint must follow every event
            closing = channel.encoder.finish()
            if closing:
                channel.enqueue(closing)
            if not (channel.failing and channel.spool is not None):
                self._send(channel, Batch(), [])  # a last attempt, unless it would stall
            if channel.spool is not None:
                channel.spool_backlog()
                if channel.spool.pending:
                    logger.warning(
                        "auditmw sink %s: undelivered records kept in the spool for the next start",
                        channel.name,
                    )
                channel.spool.close()
            elif channel.backlog_events:
                logger.error(
                    "auditmw sink %s closed with %d undelivered records",
                    channel.name,
                    channel.backlog_events,
                )
        self._settle(ok=all(c.idle for c in self._channels if c.durable))
        self._close_sinks()

    def _close_sinks(self) -> None:
        for sink in self._sinks:
            try:
                close = getattr(sink, "close", None)
                if close is not None:
                    close()
                else:
                    loop = getattr(self, "_loop", None)
                    if loop is not None and not loop.is_closed():
                        loop.run_until_complete(sink.aclose())  # type: ignore[union-attr]
                    else:
                        asyncio.run(sink.aclose())  # type: ignore[union-attr]
            except Exception as exc:
                logger.error("auditmw could not close sink %s: %s", sink, type(exc).__name__)


_instances: weakref.WeakSet[Delivery] = weakref.WeakSet()


def _close_all() -> None:
    for delivery in list(_instances):
        delivery.close()


def _after_fork_in_child() -> None:
    for delivery in list(_instances):
        delivery._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
