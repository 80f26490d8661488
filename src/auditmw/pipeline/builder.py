"""The pipeline: from a framework-neutral :class:`~auditmw.event.Exchange` to an event.

Pure, synchronous and I/O-free: ``identity.resolve → policy.decide → build →
policy redaction → processors``.  Every shell calls the same :meth:`Pipeline.process`; no framework
or driver is imported here (a test checks it).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import re
import socket
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from auditmw._version import __version__
from auditmw.core.canonical import format_time, list_changes, new_event_id, sanitize, valid_text
from auditmw.core.event import (
    OPERATIONS,
    SCHEMA_VERSION,
    SEVERITIES,
    Exchange,
    outcome_for_status,
)
from auditmw.core.policy import Policy
from auditmw.core.processors import REDACTED, SECRET_HEADERS, SECRET_PARAMS
from auditmw.exceptions import DropEvent
from auditmw.identity.base import FrameworkUserResolver, HookResolver, resolve_actor
from auditmw.pipeline import body as _body
from auditmw.pipeline import tracing as _otel
from auditmw.pipeline.forwarded import ROOT_PATH, ProxyTrust

if TYPE_CHECKING:
    from auditmw.config.options import AuditConfig
    from auditmw.core.event import Actor
    from auditmw.core.policy import Decision
    from auditmw.core.protocols import Resolver
    from auditmw.core.types import Event

__all__ = ["SECRET_HEADERS", "Pipeline"]

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:/+=\-]{1,128}")
_TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_TYPE_RE = re.compile(r"[^a-z0-9_\-]+")
_WS_NORMAL = frozenset({None, 1000, 1001, 1005})
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_PROTOCOLS: Final = {v: f"HTTP/{v}" for v in ("1.0", "1.1", "2", "2.0", "3")}
_LIFECYCLE_ACTOR: Final = {
    "id": "auditmw",
    "type": "service",
    "auth": {"method": "none", "verified": False},
}


# Make text valid UTF-8: lone surrogates (undecodable bytes) become ``\\udXXX`` escapes.
_escape = valid_text


def _ascii_key(key: object) -> str:
    """Event keys are ASCII, which keeps sorted orjson output equal to RFC 8785."""
    text = str(key)
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode("ascii")


def _header_text(value: str) -> str:
    """Decode a Latin-1 header value as UTF-8 where possible, escaping the rest."""
    if value.isascii():
        return value
    return value.encode("latin-1", "replace").decode("utf-8", "backslashreplace")


def _clean_body(body: dict[str, Any], pointer: str, truncated: list[str]) -> dict[str, Any]:
    """Make a parsed body serializable (a client chooses its nesting, numbers, strings)."""
    for part in ("json", "form"):
        if part in body:
            changed: list[str] = []
            body[part] = sanitize(body[part], f"{pointer}/{part}", changed)
            truncated.extend(list_changes(changed, f"{pointer}/{part}"))
    return body


def _annotations(labels: dict[str, str], truncated: list[str]) -> dict[str, Any]:
    """Copy the annotations; only unusual ones (not ASCII strings) pay for sanitizing."""
    for key, value in labels.items():
        if not (key.__class__ is str and value.__class__ is str and value.isascii()):
            return sanitize(labels, "/annotations", truncated)  # type: ignore[no-any-return]
    return dict(labels)


def _resource_from_route(route: str) -> tuple[str, str | None]:
    """Derive ``(type, id_param)`` from a route template like ``/orders/{order_id}``."""
    segments = [s for s in route.split("/") if s]
    rtype, id_param = "", None
    for i, segment in enumerate(segments):
        if segment.startswith("{"):
            continue
        following = segments[i + 1] if i + 1 < len(segments) else ""
        if following.startswith("{"):
            rtype, id_param = segment, following.strip("{}").split(":", 1)[0]
        elif id_param is None:
            rtype = segment
    clean = _TYPE_RE.sub("_", rtype.lower()).strip("_") if rtype else "root"
    return clean or "root", id_param


class Pipeline:
    """Builds audit events.

    Args:
        config: the audit configuration.

    .. versionadded:: 0.1.0
    """

    def __init__(self, config: AuditConfig) -> None:
        info = config.service_info
        self.config = config
        self.policy = Policy.coerce(config.policy)
        self.limits = config.limits
        self.proxies = ProxyTrust(config.trusted_networks())
        resolvers: list[Resolver] = list(config.resolvers)
        if config.identity is not None:
            resolvers.append(HookResolver(config.identity))
        if config.use_framework_user:
            resolvers.append(FrameworkUserResolver())
        self.resolvers = tuple(resolvers)
        self.processors = tuple(config.processors)
        self.record_headers = tuple(
            h.lower() for h in config.record_headers if h.lower() not in SECRET_HEADERS
        )
        self.request_id_header = config.request_id_header.lower()
        #: Reads the active OpenTelemetry span's ids; ``None`` without ``opentelemetry-api``
        #: (decided once, here: the shells copy it and skip the span when it is ``None``).
        self.span_reader = _otel.span_reader()
        # Headers every event reads, fetched in one pass per request.
        self._picked = (
            self.request_id_header,
            "host",
            "traceparent",
            "x-forwarded-for",
            "forwarded",
            "user-agent",
        )
        self._picked_raw = tuple(name.encode("latin-1") for name in self._picked)
        self._stamps: dict[str, dict[str, str]] = {}
        self._service_base = {
            k: v
            for k, v in (
                ("name", info.name),
                ("version", info.version),
                ("environment", info.environment),
            )
            if v is not None
        }
        self.service: dict[str, str] = {}
        # (route, operation, rule) -> (resource type, id parameter, action)
        self._routes: dict[tuple[str | None, str, str], tuple[str, str | None, str]] = {}
        self.refresh_instance()

    def refresh_instance(self) -> None:
        """Recompute ``service.instance`` (host/pid); called again in a forked child."""
        self.service = {**self._service_base, "instance": f"{socket.gethostname()}/{os.getpid()}"}

    # -- request events -------------------------------------------------------------

    def process(self, exchange: Exchange) -> Event | None:
        """Return the event for ``exchange``, or ``None`` when the policy drops it."""
        actor = resolve_actor(self.resolvers, exchange)
        decision = self.policy.decide(exchange, actor)
        if decision.level == "none" and not self._is_floor(exchange, actor.auth.error):
            return None
        event = self._build(exchange, decision, actor)
        # The policy's redaction runs first, so user processors never see secrets.
        for redact in decision.processors:
            event = redact(event)
        try:
            for processor in self.processors:
                event = processor(event)
        except DropEvent:
            return None
        return event

    @staticmethod
    def _is_floor(exchange: Exchange, auth_error: str | None) -> bool:
        # Auth failures and denials are always recorded, whatever the rules say.
        return auth_error is not None or exchange.status in (401, 403)

    def _stamp(self, rule: str) -> dict[str, str]:
        # One dict per rule, shared by its events: processors replace it, never edit it.
        stamp = self._stamps.get(rule)
        if stamp is None:
            stamp = self._stamps[rule] = {**self.policy.stamp, "rule": rule}
        return stamp

    def _build(self, ex: Exchange, decision: Decision, actor: Actor) -> Event:
        # The hot path: one pass over the fixed headers, per-route constants from a
        # cache, and the actor's event form copied from the one cached with it.
        request_id, host, traceparent, xff, forwarded, agent = ex.headers.pick(
            self._picked, self._picked_raw
        )
        truncated: list[str] = []
        redactions: list[str] = []
        outcome, reason, status = self._outcome(ex, actor.auth.error)
        resource, action, operation = self._resource(ex, decision)
        response: dict[str, Any] = {"bytes": ex.response_bytes}
        if status is not None:
            response["status_code"] = status
        if decision.level == "request_response" and ex.response_body is not None:
            response["body"] = _clean_body(
                _body.response_body(ex, decision.max_body_bytes), "/response/body", truncated
            )
        start_ns = ex.start_ns
        end_ns = ex.end_ns or start_ns
        event: Event = {
            "schema_version": SCHEMA_VERSION,
            "event_id": ex.event_id,
            "time": format_time(start_ns),
            "end_time": format_time(end_ns),
            "duration_us": max(0, (ex.end_mono - ex.start_mono) // 1000),
            "kind": ex.kind,
            "action": action,
            "operation": operation,
            "outcome": outcome,
            "severity": SEVERITIES[outcome],
            "actor": actor.to_dict(),
            "source": self._source(ex, truncated, xff, forwarded, agent),
            "request": self._request(
                ex, decision, truncated, redactions, request_id=request_id, host=host
            ),
            "response": response,
            "resource": resource,
            "service": self.service,
            "policy": self._stamp(decision.rule),
        }
        if reason is not None:
            event["outcome_reason"] = reason
        # The active span the shell saw first; an inbound traceparent when there was none.
        if ex.trace is not None:
            event["trace"] = {"trace_id": ex.trace[0], "span_id": ex.trace[1]}
        elif traceparent:
            trace = self._trace(traceparent)
            if trace is not None:
                event["trace"] = trace
        if ex.kind == "websocket":
            event["websocket"] = {
                "close_code": ex.ws_close_code if ex.ws_close_code is not None else 1000,
                "messages_received": ex.ws_messages_in,
                "messages_sent": ex.ws_messages_out,
            }
        ctx = ex.context
        if ctx is not None and ctx.annotations:
            event["annotations"] = _annotations(ctx.annotations, truncated)
        if redactions:
            event["redactions"] = redactions
        if actor.truncated:
            truncated.extend(actor.truncated)
        if truncated:
            event["truncated"] = truncated
        return event

    def _resource(self, ex: Exchange, decision: Decision) -> tuple[dict[str, Any], str, str]:
        """Return ``(resource, action, operation)``; the per-route parts come from a cache."""
        # Keyed by operation, not method: the method is the client's to choose, so
        # keying on it would let junk methods fill the cache.
        operation = OPERATIONS.get(ex.method, "other")
        key = (ex.route, operation, decision.rule)
        cached = self._routes.get(key)
        if cached is None:
            cached = self._route_info(ex.route, operation, decision)
            if len(self._routes) < 10_000:  # routes are finite; the bound guards odd apps
                self._routes[key] = cached
        rtype, id_param, action = cached
        resource: dict[str, Any] = {"type": rtype}
        params = ex.path_params
        if params:
            route_params = {
                (k if k.__class__ is str and k.isascii() else _ascii_key(k)): (
                    v if v.__class__ is str and v.isascii() else _escape(str(v))
                )[:256]
                for k, v in params.items()
            }
            resource["route_params"] = route_params
            if id_param is not None and id_param in route_params:
                resource["id"] = route_params[id_param]
            if decision.resource_id:
                try:
                    resource["id"] = decision.resource_id.format(**route_params)[:256]
                except (KeyError, IndexError, ValueError):
                    pass  # a template naming an absent param keeps the derived id
        ctx = ex.context
        if ctx is not None and (ctx.resource_type or ctx.resource_id or ctx.action):
            if ctx.resource_type:
                resource["type"] = ctx.resource_type
            if ctx.resource_id:
                resource["id"] = ctx.resource_id
            if ctx.action:
                action = ctx.action
            elif decision.action is None:
                action = f"{resource['type']}.{operation}"
        return resource, action, operation

    @staticmethod
    def _route_info(
        route: str | None, operation: str, decision: Decision
    ) -> tuple[str, str | None, str]:
        """``(resource type, id parameter, action)`` for one route and operation."""
        if route is None:
            rtype, id_param = "unmatched", None
        else:
            rtype, id_param = _resource_from_route(route)
        rtype = decision.resource_type or rtype
        return rtype, id_param, decision.action or f"{rtype}.{operation}"

    def _request(
        self,
        ex: Exchange,
        decision: Decision,
        truncated: list[str],
        redactions: list[str],
        *,
        request_id: str | None,
        host: str | None,
    ) -> dict[str, Any]:
        limits = self.limits
        method = ex.method
        path = ex.path
        if not path.isascii():
            path = _escape(path)
        if len(path) > limits.path:
            truncated.append("/request/path")
            path = path[: limits.path]
        request: dict[str, Any] = {
            "id": (
                request_id if request_id and _REQUEST_ID_RE.fullmatch(request_id) else ex.event_id
            ),
            "method": method[:32] if method.isascii() else _escape(method)[:32],
            "path": path,
            "scheme": ex.scheme,
            "protocol": _PROTOCOLS.get(ex.http_version) or f"HTTP/{ex.http_version}",
            "bytes": ex.request_bytes,
        }
        if ex.route is not None:
            request["route"] = ex.route
        if ex.extra is not None and ROOT_PATH in ex.extra:  # set by the shells (shells brief)
            root = ex.extra[ROOT_PATH]
            request["root_path"] = (root if root.isascii() else _escape(root))[: limits.path]
        if ex.query:
            query = self._redact_query(_escape(ex.query), redactions)
            request["query"] = self._cap(query, limits.query, "/request/query", truncated)
        if host:
            if not host.isascii():
                host = _header_text(host)
            if len(host) > 255:
                truncated.append("/request/host")
                host = host[:255]
            request["host"] = host
        else:
            request["host"] = ""
        if ex.request_body is not None and decision.level in ("request", "request_response"):
            request["body"] = _clean_body(
                _body.request_body(ex, decision.max_body_bytes), "/request/body", truncated
            )
        allowed = self.record_headers if decision.headers is None else decision.headers
        if allowed:
            headers = ex.headers
            recorded = {}
            for name in allowed:
                value = headers.get(name)
                if value is not None:
                    pointer = f"/request/headers/{name}"
                    recorded[name] = self._cap(
                        _header_text(value), limits.header, pointer, truncated
                    )
            if recorded:
                request["headers"] = recorded
        return request

    def _outcome(self, ex: Exchange, auth_error: str | None) -> tuple[str, str | None, int | None]:
        status = ex.status
        if ex.kind == "websocket":
            status = 101 if ex.ws_accepted else (status or 403)
        if ex.exception is not None:
            return "error", f"exception:{type(ex.exception).__name__}", status or 500
        if ex.aborted:
            return "aborted", "client_disconnected", status
        if status is None:
            return "error", "no_response", 500
        outcome = outcome_for_status(status)
        if ex.kind == "websocket" and ex.ws_accepted and ex.ws_close_code not in _WS_NORMAL:
            code = ex.ws_close_code
            kind = "error" if code == 1011 else "aborted" if code == 1006 else "failure"
            return kind, f"websocket_close:{code}", status
        if outcome == "denied":
            if status == 403:
                return outcome, "authz_denied", status
            return outcome, ("authn_invalid_token" if auth_error else "authn_required"), status
        return outcome, None, status

    @staticmethod
    def _trace(traceparent: str | None) -> dict[str, str] | None:
        if not traceparent:
            return None
        match = _TRACEPARENT_RE.fullmatch(traceparent.strip()[:55])
        if match is None:
            return None
        trace_id, span_id = match.groups()
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        return {"trace_id": trace_id, "span_id": span_id}

    def _source(
        self,
        ex: Exchange,
        truncated: list[str],
        xff: str | None,
        forwarded: str | None,
        agent: str | None,
    ) -> dict[str, Any]:
        try:  # any shape a server or test factory passes: (host, port), (), None, …
            peer, port = ex.client  # type: ignore[misc]
        except (TypeError, ValueError):
            peer, port = None, None
        if peer is not None and peer.__class__ is not str:
            peer, port = None, None
        ip = self.proxies.client_ip(peer, xff, forwarded)
        source: dict[str, Any] = {"ip": ip if ip is not None else "unknown"}
        if port and ip == peer:  # WSGI servers without REMOTE_PORT report 0
            source["port"] = port
        if agent:
            source["user_agent"] = self._cap(
                _header_text(agent), self.limits.user_agent, "/source/user_agent", truncated
            )
        if xff or forwarded:
            raw = _header_text(xff or forwarded or "")
            source["forwarded_for"] = self._cap(
                raw, self.limits.header, "/source/forwarded_for", truncated
            )
        return source

    @staticmethod
    def _cap(value: str, limit: int, pointer: str, truncated: list[str]) -> str:
        if len(value) <= limit:
            return value
        truncated.append(pointer)
        return value[:limit]

    @staticmethod
    def _redact_query(query: str, redactions: list[str]) -> str:
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            name, sep, value = part.partition("=")
            key = unquote_plus(name).lower()
            if value and (key in SECRET_PARAMS or _JWT_RE.search(unquote_plus(value))):
                parts[i] = f"{name}{sep}{REDACTED}"
                redactions.append("/request/query/" + key.replace("~", "~0").replace("/", "~1"))
                changed = True
        return "&".join(parts) if changed else query

    # -- authentication events -----------------------------------------------------

    def auth_event(
        self,
        exchange: Exchange,
        operation: str,
        actor: Actor,
        *,
        outcome: str = "success",
        reason: str | None = None,
    ) -> Event | None:
        """Build a ``login``/``logout`` event (kind ``auth``) for the request in ``exchange``.

        Framework adapters call this from their login signals.  Authentication events
        are a policy floor: the level never drops them (a processor still may).  The
        event has no ``response``: the signal fires before the response exists.

        Args:
            exchange: the request that logged in or out (``kind`` is forced to ``auth``).
            operation: ``"login"`` or ``"logout"``.
            actor: who logged in or out (an anonymous actor with ``auth.error`` for a
                failed login).
            outcome: ``success``, ``denied`` or ``failure``.
            reason: the ``outcome_reason``, e.g. ``"authn_failed"``.

        .. versionadded:: 0.1.0
        """
        exchange.kind = "auth"
        if exchange.trace is None and self.span_reader is not None:
            # Login signals run inside the request, where its span is active.
            exchange.trace = self.span_reader()
        decision = self.policy.decide(exchange)
        event = self._build(exchange, decision, actor)
        del event["response"]
        event.pop("outcome_reason", None)
        event.update(
            action=f"auth.{operation}",
            operation=operation,
            outcome=outcome,
            severity=SEVERITIES[outcome],
            resource={"type": "auth"},
        )
        if reason is not None:
            event["outcome_reason"] = reason
        try:
            for processor in self.processors:
                event = processor(event)
        except DropEvent:
            return None
        return event

    # -- lifecycle events ----------------------------------------------------------

    def lifecycle(self, kind: str, details: dict[str, Any], *, severity: str = "info") -> Event:
        """Build one of auditmw's own lifecycle events (``audit.started``, …)."""
        import time

        now = format_time(time.time_ns())
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": new_event_id(),
            "time": now,
            "end_time": now,
            "duration_us": 0,
            "kind": kind,
            "action": kind,
            "operation": "other",
            "outcome": "success",
            "severity": severity,
            "actor": {
                "id": "auditmw",
                "type": "service",
                "auth": {"method": "none", "verified": False},
            },
            "resource": {"type": "audit"},
            "service": self.service,
            "policy": {**self.policy.stamp, "rule": "lifecycle"},
            "details": {**details, "version": __version__, "pid": os.getpid()},
        }
