"""Type aliases and protocols shared by every part of auditmw (public names).

The code lives in :mod:`auditmw.core.types` and :mod:`auditmw.core.protocols`. This
module only hands the public names on, so that ``auditmw.types`` stays importable as
documented; auditmw's own modules import the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.core.protocols import (
    AnySink,
    AsyncSink,
    IdentityHook,
    Resolver,
    Sink,
)
from auditmw.core.types import (
    ASGIApp,
    Event,
    JSONValue,
    Message,
    Processor,
    RawHeaders,
    Receive,
    Scope,
    Send,
    StrMap,
)

__all__ = [
    "ASGIApp",
    "AnySink",
    "AsyncSink",
    "Event",
    "IdentityHook",
    "JSONValue",
    "Message",
    "Processor",
    "RawHeaders",
    "Receive",
    "Resolver",
    "Scope",
    "Send",
    "Sink",
    "StrMap",
]
