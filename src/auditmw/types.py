"""Type aliases and protocols shared by every part of auditmw.

The ASGI aliases mirror Starlette's ``starlette.types`` so that the core never
imports a web framework.  ``Event`` is the canonical event as a JSON-compatible
mapping (see DESIGN §3); its field names are a public contract.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from auditmw.event import Actor, Exchange
    from auditmw.sinks.base import Batch

#: An ASGI connection scope.
Scope: TypeAlias = MutableMapping[str, Any]
#: An ASGI message.
Message: TypeAlias = MutableMapping[str, Any]
#: The ASGI ``receive`` callable.
Receive: TypeAlias = Callable[[], Awaitable[Message]]
#: The ASGI ``send`` callable.
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An ASGI application.
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: A JSON-compatible value as stored in an event (no floats).
JSONValue: TypeAlias = "str | int | bool | list[JSONValue] | dict[str, JSONValue] | None"
#: A canonical audit event: a mutable JSON object built by the pipeline.
Event: TypeAlias = dict[str, Any]
#: Raw ASGI-style headers: lower-case names and values as bytes.
RawHeaders: TypeAlias = "list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]"


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


#: A processor receives the event after it was built and returns it (possibly changed).
#: Raise :class:`auditmw.exceptions.DropEvent` to discard it.
Processor: TypeAlias = Callable[[Event], Event]

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
StrMap: TypeAlias = Mapping[str, str]
