"""The durable-mode handshake between a request and the delivery thread.

A shell in durable mode gets a :class:`DurableWaiter` for its event and holds the
end of its response until the waiter says the event is stored.  The delivery
thread resolves waiters after a group commit: every event drained in one pass is
written (and fsync'd, committed or acknowledged) together, then all their waiters
are released at once.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

__all__ = ["Commits", "Countdown", "DurableWaiter", "FlushBarrier", "resolve_all"]

_Pending = list[tuple[asyncio.AbstractEventLoop, "asyncio.Future[bool]"]]


def _set_results(futures: list[asyncio.Future[bool]], ok: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(ok)


def resolve_all(waiters: list[DurableWaiter], ok: bool) -> None:
    """Resolve ``waiters`` with one wake-up per event loop (not one per request).

    .. versionadded:: 0.1.0
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
    for waiter in waiters:
        for loop, future in waiter._settle(ok):
            by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_results, futures, ok)
        except RuntimeError:
            pass  # that loop is closed: nobody is waiting any more


class DurableWaiter:
    """Resolved by the delivery thread once the event is durably stored, or cannot be.

    Sync code calls :meth:`wait`; async code awaits :meth:`await_async`, which never
    blocks the event loop.  Both return ``True`` only when every durable sink stored
    the event within the timeout.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_done", "_futures", "_lock", "_ok")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._ok = False
        self._lock = threading.Lock()
        self._futures: _Pending = []

    @property
    def done(self) -> bool:
        """Whether the delivery thread has resolved this waiter."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block this thread until resolved; ``True`` when stored, ``False`` on failure or timeout.

        Args:
            timeout: seconds to wait; ``None`` waits forever.
        """
        return self._done.wait(timeout) and self._ok

    async def await_async(self, timeout: float | None = None) -> bool:
        """Await the resolution without blocking the loop (asyncio, or trio via anyio).

        Args:
            timeout: seconds to wait; ``None`` waits forever.
        """
        if self._done.is_set():
            return self._ok
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): park the wait in a worker thread
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self.wait, timeout, abandon_on_cancel=True)
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            if self._done.is_set():
                return self._ok
            self._futures.append((loop, future))
        # A timer rather than asyncio.wait_for: no extra task per request.
        timer = None if timeout is None else loop.call_later(timeout, _set_results, [future], False)
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()

    def resolve(self, ok: bool) -> None:
        """Called by the delivery thread: record the result and wake every waiter once."""
        resolve_all([self], ok)

    def _settle(self, ok: bool) -> _Pending:
        with self._lock:
            if self._done.is_set():
                return []
            self._ok = ok
            self._done.set()
            futures, self._futures = self._futures, []
        return futures

    def __repr__(self) -> str:
        state = ("stored" if self._ok else "failed") if self.done else "pending"
        return f"<DurableWaiter {state}>"


class FlushBarrier:
    """A marker in the queue: set once every event queued before it was handed to the sinks."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Countdown:
    """A flush barrier: set once every worker has handled what was queued before it."""

    __slots__ = ("_left", "_lock", "done")

    def __init__(self, parties: int, done: threading.Event) -> None:
        self.done = done
        self._left = parties
        self._lock = threading.Lock()
        if parties <= 0:
            self.done.set()

    def arrive(self) -> None:
        """One worker has handled everything queued before the barrier."""
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self.done.set()


class Commits:
    """Durable waiters by generation, released when every durable worker stored it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, list[DurableWaiter]]] = deque()
        self._stored: dict[int, int] = {}  # durable worker id -> generation stored
        self.group = 0  # waiters released by the last commit (for group commit)

    def register(self, worker: int) -> None:
        """Count ``worker`` as a durable worker (stored nothing yet)."""
        with self._lock:
            self._stored[worker] = 0

    def add(self, generation: int, waiters: list[DurableWaiter]) -> None:
        """Park ``waiters`` of ``generation`` (before their events reach the workers)."""
        with self._lock:
            self._pending.append((generation, waiters))
        if not self._stored:  # no durable sink: nothing to wait for
            self._release(generation, True)

    def stored(self, worker: int, generation: int) -> None:
        """``worker`` has stored everything up to ``generation``."""
        with self._lock:
            self._stored[worker] = generation
            upto = min(self._stored.values())
        self._release(upto, True)

    def failed(self, generation: int) -> None:
        """A durable worker lost events up to ``generation``: those requests fail."""
        self._release(generation, False)

    def release_all(self, ok: bool) -> None:
        """Resolve every parked waiter (shutdown)."""
        self._release(2**62, ok)

    def _release(self, upto: int, ok: bool) -> None:
        released: list[DurableWaiter] = []
        with self._lock:
            while self._pending and self._pending[0][0] <= upto:
                released.extend(self._pending.popleft()[1])
        if released:
            self.group = len(released)
            resolve_all(released, ok)
