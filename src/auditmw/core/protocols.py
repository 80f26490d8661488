"""The protocols that plug into auditmw: identity resolvers, identity hooks and sinks.

Public as :mod:`auditmw.types`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from auditmw.core.event import Actor, Exchange
    from auditmw.core.records import Batch

__all__ = ["AnySink", "AsyncSink", "IdentityHook", "Resolver", "Sink"]


@runtime_checkable
class Resolver(Protocol):
    """Turns the credentials of one exchange into an :class:`~auditmw.event.Actor`.

    A resolver is a pure function of the exchange (headers, framework user) and key
    material loaded beforehand.  It returns ``None`` when it sees no credential of its
    kind, so that the next resolver runs.  It must never raise: a bad credential is
    an anonymous actor whose ``auth.error`` says what was wrong.
    """

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return the actor for ``exchange``, or ``None`` when no credential applies."""


#: A callable identity hook: receives the framework's request object (or ASGI scope).
IdentityHook: TypeAlias = Callable[[Any], "Actor | None"]


@runtime_checkable
class Sink(Protocol):
    """A synchronous destination for serialized events, called only from the delivery thread."""

    #: The stored format of this sink's records ("auditmw", "ocsf", "ecs", "otel", "cloudevents").
    format: str

    def emit(self, batch: Batch) -> None:
        """Store every record of ``batch`` or raise :class:`~auditmw.exceptions.SinkError`."""

    def close(self) -> None:
        """Flush and release resources; called once at shutdown."""


@runtime_checkable
class AsyncSink(Protocol):
    """An asynchronous destination, run on the delivery thread's own event loop."""

    format: str

    async def aemit(self, batch: Batch) -> None:
        """Store every record of ``batch`` or raise :class:`~auditmw.exceptions.SinkError`."""

    async def aclose(self) -> None:
        """Flush and release resources; called once at shutdown."""


AnySink: TypeAlias = "Sink | AsyncSink"
