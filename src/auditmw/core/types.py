"""Type aliases shared by every part of auditmw.

The ASGI aliases mirror Starlette's ``starlette.types`` so that the core never
imports a web framework.  ``Event`` is the canonical event as a JSON-compatible
mapping (see DESIGN §3); its field names are a public contract.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeAlias

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


#: A processor receives the event after it was built and returns it (possibly changed).
#: Raise :class:`auditmw.exceptions.DropEvent` to discard it.
Processor: TypeAlias = Callable[[Event], Event]

StrMap: TypeAlias = Mapping[str, str]
