"""The canonical audit event (schema_version "1.0") and the records it is built from.

:class:`Exchange` is the framework-neutral record each shell fills in while it
observes one request; :class:`Actor` is who made it.  The field names of the event
built from them are a public contract (DESIGN §3).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from auditmw import _native

if TYPE_CHECKING:
    from collections.abc import Iterable

    from auditmw.core.context import RequestContext
    from auditmw.core.types import Event, RawHeaders

SCHEMA_VERSION: Final = "1.0"

ActorType = Literal["user", "service", "api_key", "anonymous"]
AuthMethod = Literal["jwt", "api_key", "session", "basic", "none"]
Operation = Literal["create", "read", "update", "delete", "login", "logout", "other"]
Outcome = Literal["success", "denied", "failure", "error", "aborted"]
Severity = Literal["info", "low", "medium", "high"]

OPERATIONS: Final[dict[str, str]] = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}
SEVERITIES: Final[dict[str, str]] = {
    "success": "info",
    "failure": "low",
    "aborted": "low",
    "denied": "medium",
    "error": "high",
}
LIFECYCLE_KINDS: Final = frozenset(
    {
        "audit.started",
        "audit.stopped",
        "audit.policy_loaded",
        "audit.events_dropped",
        "audit.sink_failed",
        "audit.sink_recovered",
        "audit.keys_unavailable",
        "audit.keys_recovered",
        "audit.retention",
        "audit.internal_error",
        "audit.delivery_restarted",
    }
)


def outcome_for_status(status: int) -> str:
    """Map an HTTP status to an outcome: 1xx-3xx success, 401/403 denied, 4xx failure, 5xx error."""
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "failure"
    return "error"


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """How an actor was authenticated.

    Args:
        method: ``jwt``, ``api_key``, ``session``, ``basic`` or ``none``.
        verified: whether the credential was cryptographically verified.
        issuer: the token issuer, when known.
        key_id: the key id (JWT ``kid``, API key id or fingerprint), when known.
        error: why authentication failed (``expired``, ``invalid_signature``, …).

    .. versionadded:: 0.1.0
    """

    method: AuthMethod = "none"
    verified: bool = False
    issuer: str | None = None
    key_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the event form: ``None`` values are left out."""
        out: dict[str, Any] = {"method": self.method, "verified": self.verified}
        if self.issuer is not None:
            out["issuer"] = self.issuer
        if self.key_id is not None:
            out["key_id"] = self.key_id
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a request.

    Args:
        id: a stable identifier (JWT ``sub``, API key id, user primary key); ``anonymous``
            when unknown.
        type: ``user``, ``service``, ``api_key`` or ``anonymous``.
        auth: how the actor was authenticated.
        extra: further string fields (``mfa``, ``on_behalf_of``) kept under the actor.

    .. versionadded:: 0.1.0
    """

    id: str = "anonymous"
    type: ActorType = "anonymous"
    name: str | None = None
    email: str | None = None
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    tenant_id: str | None = None
    client_id: str | None = None
    session_id: str | None = None
    auth: AuthInfo = field(default_factory=AuthInfo)
    extra: tuple[tuple[str, Any], ...] = ()
    # The event form, computed once per actor: resolvers cache actors by credential,
    # so every request of one token reuses it (and gets its own copy).
    _event: dict[str, Any] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    _changed: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the event form of the actor: empty and ``None`` values are left out.

        Each call returns a fresh dict (with fresh ``auth``, ``roles`` and ``scopes``),
        so a processor may edit it in place.
        """
        template = self._event
        if template is None:
            template = self._cache_event_form()
        out = template.copy()
        out["auth"] = template["auth"].copy()
        if self.roles:
            out["roles"] = list(template["roles"])
        if self.scopes:
            out["scopes"] = list(template["scopes"])
        for key, _ in self.extra:
            value = template.get(key)
            if isinstance(value, (dict, list)):  # custom resolvers may store containers
                out[key] = copy.deepcopy(value)
        return out

    @property
    def truncated(self) -> tuple[str, ...]:
        """JSON Pointers (under ``/actor``) of claim values changed to fit an event.

        .. versionadded:: 0.2.0
        """
        if self._event is None:
            self._cache_event_form()
        return self._changed

    def _cache_event_form(self) -> dict[str, Any]:
        # Claims come from a token's JSON, which allows what an event cannot hold
        # (lone surrogates, huge integers, deep nesting): made serializable once here.
        from auditmw.core.canonical import sanitize

        changed: list[str] = []
        template: dict[str, Any] = sanitize(self._event_form(), "/actor", changed)
        object.__setattr__(self, "_changed", tuple(changed))
        object.__setattr__(self, "_event", template)
        return template

    def _event_form(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        for name in ("name", "email", "tenant_id", "client_id", "session_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.roles:
            out["roles"] = list(self.roles)
        if self.scopes:
            out["scopes"] = list(self.scopes)
        for key, value in self.extra:
            out[key] = value
        out["auth"] = self.auth.to_dict()
        return out

    def replace(self, **changes: Any) -> Actor:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


ANONYMOUS: Final = Actor()


def anonymous(method: AuthMethod = "none", error: str | None = None, **auth: Any) -> Actor:
    """Return an anonymous actor, optionally recording a failed authentication attempt."""
    if method == "none" and error is None and not auth:
        return ANONYMOUS
    return Actor(auth=AuthInfo(method=method, verified=False, error=error, **auth))


class Headers:
    """Case-insensitive, read-only view of request headers, decoded on use.

    ASGI headers (lower-case byte names) are indexed once on first lookup, and only
    the values asked for are decoded.  Repeated headers are joined with ``", "``
    (``cookie`` with ``"; "``), as HTTP allows.  Values are decoded as Latin-1, which
    maps every byte to one character, so nothing is lost; the event builder escapes
    what is not printable.  ``Headers(mapping={...})`` wraps already-decoded headers
    (WSGI environ) with lower-case names.
    """

    __slots__ = ("_bytes", "_map", "_raw")

    def __init__(
        self,
        raw: Iterable[tuple[bytes, bytes]] | None = None,
        mapping: dict[str, str] | None = None,
    ):
        self._raw = raw
        self._map = mapping
        self._bytes: dict[bytes, bytes] | None = None

    def _index(self) -> dict[bytes, bytes]:
        # Servers pass a list or tuple, but any iterable of pairs is valid ASGI.
        if _native_index is not None and (native := _native_index(self._raw)) is not None:
            self._bytes = native
            return native
        source = self._raw or ()
        raw = source if isinstance(source, list | tuple) else list(source)
        # The fast path: one dict() call.  ASGI requires lower-case names, but not every
        # caller obeys; repeated or mixed-case names take the slow path.
        out: dict[bytes, bytes] = dict(raw)
        try:
            fast = len(out) == len(raw) and b"".join(out).islower()
        except TypeError:  # names that are not bytes: a non-compliant server
            fast = False
        if not fast:
            out = {}
            for key, raw_value in raw:
                name = key.lower()
                value = raw_value
                if name in out:
                    value = out[name] + (b"; " if name == b"cookie" else b", ") + raw_value
                out[name] = value
        self._bytes = out
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of header ``name`` (lower-case), or ``default``."""
        if self._map is not None:
            return self._map.get(name, default)
        index = self._bytes if self._bytes is not None else self._index()
        value = index.get(_name_bytes(name))
        return default if value is None else value.decode("latin-1")

    def pick(self, names: tuple[str, ...], raw_names: tuple[bytes, ...]) -> list[str | None]:
        """Return the values of ``names`` (lower-case), in order; ``None`` where absent.

        ``raw_names`` are the same names encoded, precomputed by the caller: this is
        the fixed set of headers the pipeline reads on every request.
        """
        if self._map is not None:
            mapping = self._map
            return [mapping.get(name) for name in names]
        if (
            self._bytes is None
            and _native_pick is not None
            and (picked := _native_pick(self._raw, raw_names)) is not None
        ):
            return picked  # one C call: the raw list of a fresh Headers, read in place
        get = (self._bytes if self._bytes is not None else self._index()).get
        return [
            None if (value := get(name)) is None else value.decode("latin-1") for name in raw_names
        ]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair, names in lower case."""
        if self._map is not None:
            return list(self._map.items())
        index = self._bytes if self._bytes is not None else self._index()
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in index.items()]

    def __repr__(self) -> str:
        # Never show values: they may hold credentials.
        return f"Headers(names={sorted(n for n, _ in self.items())!r})"


_NAME_CACHE: dict[str, bytes] = {}


# The C index and pick (auditmw._native), or None: the Python code above is their reference.
_native_pick = _native.headers_pick
_native_index = _native.headers_index


def _name_bytes(name: str) -> bytes:
    encoded = _NAME_CACHE.get(name)
    if encoded is None:
        encoded = name.lower().encode("latin-1", "replace")
        if len(_NAME_CACHE) < 1024:  # header names asked for are a small fixed set
            _NAME_CACHE[name] = encoded
    return encoded


@dataclass(slots=True)
class Exchange:
    """Everything a shell observed about one request, in framework-neutral form.

    Shells fill this in; the pipeline turns it into an event.  Times are integer
    nanoseconds: ``start_ns``/``end_ns`` from ``time.time_ns()``, ``start_mono``/
    ``end_mono`` from ``time.perf_counter_ns()``.

    .. versionadded:: 0.1.0
    """

    event_id: str
    kind: str
    method: str
    path: str
    headers: Headers
    start_ns: int
    start_mono: int
    query: str = ""
    scheme: str = "http"
    http_version: str = "1.1"
    client: tuple[str, int] | None = None
    route: str | None = None
    path_params: dict[str, Any] | None = None
    status: int | None = None
    end_ns: int = 0
    end_mono: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    response_headers: RawHeaders | None = None
    exception: BaseException | None = None
    aborted: bool = False
    user: Any = None
    request_object: Any = None
    context: RequestContext | None = None
    request_body: bytes | None = None
    request_body_size: int = 0
    response_body: bytes | None = None
    response_body_size: int = 0
    ws_accepted: bool = False
    ws_close_code: int | None = None
    ws_messages_in: int = 0
    ws_messages_out: int = 0
    extra: dict[str, Any] | None = None
    #: ``(trace_id, span_id)`` of the OpenTelemetry span the shell saw (hex), or ``None``.
    #: Set by the shells; it wins over an inbound ``traceparent`` header.
    #:
    #: .. versionadded:: 0.2.0
    trace: tuple[str, str] | None = None


def is_lifecycle(event: Event) -> bool:
    """Return whether ``event`` is one of auditmw's own lifecycle events."""
    return event.get("kind") in LIFECYCLE_KINDS
