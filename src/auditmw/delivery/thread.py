"""The delivery thread: it drains the request queue and hands each group to every sink's worker.

See :mod:`auditmw.delivery` for the whole journey and its guarantees.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from auditmw.core import process as _process
from auditmw.delivery.channel import Channel
from auditmw.delivery.drops import DropCounter, dropped_event
from auditmw.delivery.durable import Commits, Countdown, DurableWaiter, FlushBarrier
from auditmw.delivery.spool import Spool
from auditmw.delivery.supervisor import Supervisor
from auditmw.delivery.worker import ChannelWorker
from auditmw.sinks.base import PlainEncoder

if TYPE_CHECKING:
    from auditmw.config.values import DeliveryOptions
    from auditmw.core.protocols import AnySink
    from auditmw.core.records import EncoderFactory
    from auditmw.core.types import Event

__all__ = ["Delivery", "DurableWaiter"]

logger = logging.getLogger("auditmw.delivery")

LifecycleFactory = Callable[..., "Event"]
_COMMIT_DELAY = 0.0002  # seconds a group commit waits for company (like commit_delay)


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
        self._drops = DropCounter()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pid = os.getpid()
        self._channels: list[Channel] = []
        self._workers: list[ChannelWorker] = []
        self._commits = Commits()
        self._generation = 0
        self._deadline = 0.0
        self._supervisor = Supervisor(self.notify, self._lifecycle, self.options.retry_max)
        self._closing = False
        # Lifecycle records raised while delivering (sink failed, events lost): written
        # on the next pass, never from inside a send, so a failing sink cannot recurse.
        self._notices: list[Event] = []

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
            self._drops.add()
            self._wake.set()
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

    def count_drop(self) -> None:
        """Count one event that could not be queued; recorded as ``audit.events_dropped``.

        .. versionadded:: 0.2.0
        """
        self._drops.add()
        self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event submitted before this call was handed to the sinks.

        Returns:
            ``True`` when flushed, ``False`` on timeout or if delivery is closed.
        """
        if not self.is_running:
            return not self._queue
        barrier = FlushBarrier()
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
        limit = self.options.shutdown_timeout if timeout is None else timeout
        # The workers must be done a little before close() stops waiting for them.
        self._deadline = time.monotonic() + limit * 0.9
        self._stopping = True
        self._wake.set()
        thread.join(limit)
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
            self._closing = False
            self._commits = Commits()
            self._channels = [self._channel(i, sink) for i, sink in enumerate(self._sinks)]
            self._workers = [
                ChannelWorker(
                    c,
                    options=self.options,
                    commits=self._commits,
                    lifecycle=self._lifecycle,
                    notify=self.notify,
                    progress=self._wake.set,
                )
                for c in self._channels
            ]
            for worker in self._workers:
                self._spawn_worker(worker)
            self._spawn()

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

    def _spawn(self) -> None:
        def keep(thread: threading.Thread) -> None:
            self._thread = thread

        self._supervisor.start("auditmw-delivery", self._run, keep)

    def _spawn_worker(self, worker: ChannelWorker) -> None:
        def keep(thread: threading.Thread) -> None:
            worker.thread = thread

        self._supervisor.start(f"auditmw-sink:{worker.channel.name}", worker.run, keep)

    def notify(self, event: Event) -> None:
        """Queue a lifecycle record raised while delivering; written on the next pass.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            if not self._closing:
                self._notices.append(event)
                self._wake.set()
                return
        # Closing: the delivery thread passes nothing on any more; the workers take
        # the record straight from their inboxes before their closing checkpoints.
        for worker in self._workers:
            worker.inbox.append([event])
            worker.wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._max_wait)
            if self._commits.group > 1:
                # Group commit: the last commit served several requests at once, so
                # more are likely on their way; let them join this write.
                self._commits.group = 0
                time.sleep(_COMMIT_DELAY)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._drain()
            except Exception as exc:  # never die from one pass: record and go on
                logger.error("auditmw delivery: internal error %s", type(exc).__name__)
                details = {"stage": "delivery", "error": type(exc).__name__}
                self.notify(self._lifecycle("audit.internal_error", details, severity="high"))
            if stopping and not self._queue:
                break
        self._finish()

    def _drain(self) -> None:
        queue = self._queue
        max_batch = self.options.max_batch
        while True:
            if self._held():
                return  # a sink is behind: requests wait (block) or drop, and record it
            events: list[Event] = []
            waiters: list[DurableWaiter] = []
            barriers: list[FlushBarrier] = []
            while queue and len(events) < max_batch:
                item = queue.popleft()
                kind = type(item)
                if kind is FlushBarrier:
                    barriers.append(item)
                elif kind is DurableWaiter:
                    waiters.append(item)
                else:
                    events.append(item)
            try:
                # Dropped events arrived while the queued ones waited: record them after.
                drops = self._take_drops()
            except BaseException:
                # Whatever kills this thread must not take the popped events with it:
                # they go back to the front of the queue for the restarted thread.
                queue.extendleft(reversed([*events, *waiters, *barriers]))
                raise
            if drops is not None:
                events.append(drops)
            if self._notices:
                with self._lock:
                    events.extend(self._notices)
                    self._notices = []
            if self._waiting:
                with self._space:
                    self._space.notify_all()
            self._dispatch(events, waiters, barriers)
            if not queue:
                return

    def _dispatch(
        self, events: list[Event], waiters: list[DurableWaiter], barriers: list[FlushBarrier]
    ) -> None:
        """Hand one group to every worker, in order: generation, events, barrier."""
        if not (events or waiters or barriers):
            return
        self._generation += 1
        generation = self._generation
        if waiters:
            self._commits.add(generation, waiters)
        countdowns = [Countdown(len(self._workers), barrier.done) for barrier in barriers]
        shed = self.options.overflow == "drop_and_record" and not self._stopping
        for worker in self._workers:
            worker.receive(generation, events, countdowns, shed=shed)

    def _held(self) -> bool:
        """Whether a sink that is slow (not down) and must not shed is a full buffer behind.

        A sink that is down is not waited for: its backlog is spooled or trimmed, and
        the loss recorded (see :class:`~auditmw.delivery.worker.ChannelWorker`).
        """
        if self._stopping:
            return False
        limit = self.options.max_queue
        block = self.options.overflow == "block"
        return any(
            (block or worker.channel.durable)
            and not worker.channel.failing
            and worker.load() >= limit
            for worker in self._workers
        )

    def _take_drops(self) -> Event | None:
        taken = self._drops.snapshot()
        if taken is None:
            return None
        count, first, last = taken
        record = dropped_event(self._lifecycle, count, "buffer_full", first=first, last=last)
        self._drops.settle(count)  # counted off only once its record exists
        logger.error("auditmw dropped %d events: buffer full", count)
        return record

    def _finish(self) -> None:
        """Stop every worker; each writes its closing records on its own thread.

        A worker stuck in a hung sink is left behind (its thread is a daemon): the
        others still write their final checkpoints and close their sinks.
        """
        with self._lock:
            pending, self._notices = self._notices, []
            self._closing = True
        self._dispatch(pending, [], [])
        for worker in self._workers:
            worker.stopping = True
            worker.wake.set()
        deadline = self._deadline
        for worker in self._workers:
            if not worker.finished.wait(max(0.0, deadline - time.monotonic())):
                logger.error(
                    "auditmw sink %s did not finish within the shutdown timeout",
                    worker.channel.name,
                )
        self._commits.release_all(False)  # anything still parked was not stored


_instances: weakref.WeakSet[Delivery] = weakref.WeakSet()


def _close_all() -> None:
    for delivery in list(_instances):
        delivery.close()


def _after_fork_in_child() -> None:
    for delivery in list(_instances):
        delivery._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
