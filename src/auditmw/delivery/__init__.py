"""Delivery: events leave the request path here and reach every sink.

:mod:`.thread` is the delivery thread that drains the request queue; :mod:`.worker`
runs one thread per sink stream, supervised; :mod:`.channel` is one stream's encoder,
backlog and failure state; :mod:`.spool` is the on-disk spool for a sink that is
down; :mod:`.durable` the handshake by which a durable request waits for its commit.

May import: the core, configuration, the integrity writer (through the encoder
factory), sinks.  Imported by the auditor.

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
