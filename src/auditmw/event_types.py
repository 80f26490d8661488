"""The canonical event (schema_version "1.0") as ``TypedDict`` s, for typed tests and consumers.

These mirror ``schema/event.schema.json`` member for member (a test keeps them in
agreement): a key is required here exactly when the JSON Schema requires it.  Events
of every kind share the form, so the members only some kinds carry (``request``,
``response``, ``source`` …) are not required.  Inside auditmw events are plain dicts
(:data:`auditmw.types.Event`); the :mod:`auditmw.testing` helpers hand them to tests
typed as :class:`AuditEvent`::

    from auditmw.testing import capture_events

    with capture_events() as events:
        ...
    for event in events:
        if "trace" in event:
            print(event["trace"]["trace_id"])  # str, checked by mypy --strict

.. versionadded:: 0.2.0
"""

from typing import Any, Literal, NotRequired, TypedDict

from auditmw.core.event import ActorType, AuthMethod, Operation, Outcome, Severity

__all__ = [
    "ActorDict",
    "AuditEvent",
    "AuthDict",
    "IntegrityDict",
    "PolicyDict",
    "RequestDict",
    "ResourceDict",
    "ResponseDict",
    "ServiceDict",
    "SourceDict",
    "TraceDict",
    "WebSocketDict",
]


class AuthDict(TypedDict):
    """``actor.auth``: how the actor was authenticated.

    .. versionadded:: 0.2.0
    """

    method: AuthMethod
    verified: bool
    issuer: NotRequired[str]
    key_id: NotRequired[str]
    error: NotRequired[str]


class ActorDict(TypedDict):
    """``actor``: who made the request.

    .. versionadded:: 0.2.0
    """

    id: str
    type: ActorType
    name: NotRequired[str]
    email: NotRequired[str]
    roles: NotRequired[list[str]]
    scopes: NotRequired[list[str]]
    tenant_id: NotRequired[str]
    client_id: NotRequired[str]
    session_id: NotRequired[str]
    auth: NotRequired[AuthDict]


class SourceDict(TypedDict, total=False):
    """``source``: where the request came from (``ip`` only from trusted proxies).

    .. versionadded:: 0.2.0
    """

    ip: str
    port: int
    user_agent: str
    forwarded_for: str


class RequestDict(TypedDict, total=False):
    """``request``: what was asked (headers from the allow-list, body by policy level).

    .. versionadded:: 0.2.0
    """

    id: str
    method: str
    path: str
    route: str
    root_path: str
    query: str
    scheme: str
    host: str
    protocol: str
    bytes: int
    headers: dict[str, str]
    body: dict[str, Any]


class ResponseDict(TypedDict, total=False):
    """``response``: what was answered.

    .. versionadded:: 0.2.0
    """

    status_code: int
    bytes: int
    headers: dict[str, str]
    body: dict[str, Any]


class ResourceDict(TypedDict, total=False):
    """``resource``: what was acted on.

    .. versionadded:: 0.2.0
    """

    type: str
    id: str
    route_params: dict[str, str]


class ServiceDict(TypedDict, total=False):
    """``service``: which service and process recorded the event.

    .. versionadded:: 0.2.0
    """

    name: str
    version: str
    environment: str
    instance: str


class TraceDict(TypedDict):
    """``trace``: the OpenTelemetry span's ids, or an inbound ``traceparent``'s.

    .. versionadded:: 0.2.0
    """

    trace_id: str
    span_id: str


class PolicyDict(TypedDict, total=False):
    """``policy``: which policy version and rule produced the event.

    .. versionadded:: 0.2.0
    """

    id: str
    hash: str
    rule: str


class WebSocketDict(TypedDict, total=False):
    """``websocket``: a WebSocket session's close code and message counts.

    .. versionadded:: 0.2.0
    """

    close_code: int
    messages_received: int
    messages_sent: int


class IntegrityDict(TypedDict, total=False):
    """``integrity``: the event's place in its hash chain (DESIGN §9), added by delivery.

    .. versionadded:: 0.2.0
    """

    chain_id: str
    seq: int
    prev: str
    hash: str
    mac: str
    epoch: int


class AuditEvent(TypedDict):
    """One canonical audit event, as stored (``schema_version`` ``"1.0"``).

    .. versionadded:: 0.2.0
    """

    schema_version: Literal["1.0"]
    event_id: str
    time: str
    kind: str
    action: str
    operation: Operation
    outcome: Outcome
    actor: ActorDict
    end_time: NotRequired[str]
    duration_us: NotRequired[int]
    outcome_reason: NotRequired[str]
    severity: NotRequired[Severity]
    source: NotRequired[SourceDict]
    request: NotRequired[RequestDict]
    response: NotRequired[ResponseDict]
    resource: NotRequired[ResourceDict]
    service: NotRequired[ServiceDict]
    trace: NotRequired[TraceDict]
    policy: NotRequired[PolicyDict]
    redactions: NotRequired[list[str]]
    truncated: NotRequired[list[str]]
    annotations: NotRequired[dict[str, str]]
    details: NotRequired[dict[str, Any]]
    websocket: NotRequired[WebSocketDict]
    integrity: NotRequired[IntegrityDict]
