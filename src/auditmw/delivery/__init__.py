"""Delivery: events leave the request path here and reach every sink.

Request threads call :meth:`Delivery.submit`, which appends to a deque and never
does I/O.  The delivery thread wakes when a batch is full or ``max_wait_ms`` has
passed and hands the same ordered groups of events to every sink's worker
(:mod:`auditmw.delivery.worker`), which encodes them once for its stream (format, then
integrity chain) and hands its sink a :class:`~auditmw.sinks.base.Batch`.  Async
sinks run on their worker's own event loop, so every sink serves WSGI and ASGI apps
alike, and a slow or hung sink delays only itself.

Nothing is dropped silently: when the buffer is full the overflow policy applies
and the count is written as an ``audit.events_dropped`` event; a failing sink keeps
its backlog (in memory, or in an on-disk spool when ``spool_dir`` is set) and is
retried with exponential backoff and jitter, and the episode is recorded as
``audit.sink_failed`` / ``audit.sink_recovered``.  No thread dies from one event or
one pass: an event that cannot be serialized is written in a degraded form
(:mod:`auditmw.core.degrade`), a failing pass is recorded as ``audit.internal_error``,
and a thread that dies anyway is restarted by a supervisor and recorded as
``audit.delivery_restarted`` (see ``docs/failure.md``).

In durable mode, :meth:`Delivery.submit_durable` returns a
:class:`~auditmw.delivery.durable.DurableWaiter` that is resolved once every durable sink's
worker stored the event; events drained together share one write (group commit).

:mod:`.thread` is the delivery thread that drains the request queue; :mod:`.worker`
runs one thread per sink stream; :mod:`.supervisor` restarts a thread that dies;
:mod:`.channel` is one stream's encoder, backlog and failure state; :mod:`.spool` is
the on-disk spool for a sink that is down; :mod:`.durable` the handshake by which a
durable request waits for its commit; :mod:`.drops` counts and records every loss.

May import: the core, configuration values and sinks.  The integrity chain arrives
as an encoder factory and is never imported.  Imported by the auditor.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.delivery.thread import (
    Delivery,
    DurableWaiter,
    LifecycleFactory,
)

__all__ = [
    "Delivery",
    "DurableWaiter",
    "LifecycleFactory",
]
