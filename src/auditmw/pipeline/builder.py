"""The pipeline: from a framework-neutral :class:`~auditmw.event.Exchange` to an event.

Pure, synchronous and I/O-free: ``identity.resolve → policy.decide → build →
policy redaction → processors``.  Every shell calls the same :meth:`Pipeline.process`; no framework
or driver is imported here (a test checks it).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from auditmw import _native
from auditmw.core.canonical import format_time
from auditmw.core.context import RequestContext
from auditmw.core.decision import Decision
from auditmw.core.event import (
    OPERATIONS,
    SCHEMA_VERSION,
    SEVERITIES,
    Actor,
    AuthInfo,
    Exchange,
    Headers,
    outcome_for_status,
)
from auditmw.core.policy import Policy
from auditmw.core.processors import SECRET_HEADERS, SECRET_PARAMS
from auditmw.exceptions import DropEvent
from auditmw.identity.base import FrameworkUserResolver, HookResolver, resolve_actor
from auditmw.pipeline import body as _body
from auditmw.pipeline import tracing as _otel
from auditmw.pipeline.fields import (
    PROTOCOLS,
    REQUEST_ID_RE,
    WS_NORMAL,
    ascii_key,
    cap,
    clean_body,
    copy_annotations,
    escape,
    header_text,
    redact_query,
    resource_from_route,
    trace_context,
)
from auditmw.pipeline.forwarded import ROOT_PATH, ProxyTrust, client_source
from auditmw.pipeline.lifecycle import lifecycle_event

if TYPE_CHECKING:
    from auditmw.config.options import AuditConfig
    from auditmw.core.protocols import Resolver
    from auditmw.core.types import Event

__all__ = ["Pipeline"]


def _valid_id(value: str) -> bool:
    """Whether an inbound request id may be recorded (``REQUEST_ID_RE``).

    The common ids (UUIDs, hex, alphanumerics with dashes) pass without the regex,
    which costs several times more than these three string methods.
    """
    if len(value) <= 128 and value.isascii() and value.replace("-", "").isalnum():
        return True
    return REQUEST_ID_RE.fullmatch(value) is not None


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
        #: ``_build`` in one C call for the common request (``None`` on the Python core or
        #: when disabled); what it does not cover returns ``None`` and the Python code runs.
        self.native_build = _native.build_http_event
        #: requests built by ``native_build``, and those it left to the Python code
        self.native_built = 0
        self.native_fallbacks = 0
        # What the C builder reads besides the request: the classes it accepts exactly,
        # and the caches and limits of this pipeline (the dicts are shared, not copied).
        self._native_ctx = (
            Exchange,
            Headers,
            RequestContext,
            Actor,
            AuthInfo,
            Decision,
            self._picked,
            self._picked_raw,
            self._stamps,
            self._routes,
            (self.limits.path, self.limits.header, self.limits.user_agent, self.limits.query),
            bool(config.trusted_networks()),
            self.record_headers,
            SECRET_PARAMS,
        )

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
        native = self.native_build
        if native is not None:
            event = native(ex, decision, actor, self.service, self._native_ctx)
            if event is not None:
                self.native_built += 1
                return event
            self.native_fallbacks += 1
        return self._build_python(ex, decision, actor)

    def _build_python(self, ex: Exchange, decision: Decision, actor: Actor) -> Event:
        # The reference of the C builder (_native/am_event.c), and every request it
        # leaves: one pass over the fixed headers, per-route constants from a cache,
        # and the actor's event form copied from the one cached with it.
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
            response["body"] = clean_body(
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
            "source": client_source(
                self.proxies, self.limits, ex, truncated, xff, forwarded, agent
            ),
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
            trace = trace_context(traceparent)
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
            event["annotations"] = copy_annotations(ctx.annotations, truncated)
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
                (k if k.__class__ is str and k.isascii() else ascii_key(k)): (
                    v if v.__class__ is str and v.isascii() else escape(_param_text(v))
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
            rtype, id_param = resource_from_route(route)
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
            path = escape(path)
        if len(path) > limits.path:
            truncated.append("/request/path")
            path = path[: limits.path]
        request: dict[str, Any] = {
            "id": request_id if request_id and _valid_id(request_id) else ex.event_id,
            "method": method[:32] if method.isascii() else escape(method)[:32],
            "path": path,
            "scheme": ex.scheme,
            "protocol": PROTOCOLS.get(ex.http_version) or f"HTTP/{ex.http_version}",
            "bytes": ex.request_bytes,
        }
        if ex.route is not None:
            request["route"] = ex.route
        if ex.extra is not None and ROOT_PATH in ex.extra:  # set by the shells (shells brief)
            root = ex.extra[ROOT_PATH]
            request["root_path"] = (root if root.isascii() else escape(root))[: limits.path]
        if ex.query:
            query = redact_query(escape(ex.query), redactions)
            request["query"] = cap(query, limits.query, "/request/query", truncated)
        if host:
            if not host.isascii():
                host = header_text(host)
            if len(host) > 255:
                truncated.append("/request/host")
                host = host[:255]
            request["host"] = host
        else:
            request["host"] = ""
        if ex.request_body is not None and decision.level in ("request", "request_response"):
            request["body"] = clean_body(
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
                    recorded[name] = cap(header_text(value), limits.header, pointer, truncated)
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
        if ex.kind == "websocket" and ex.ws_accepted and ex.ws_close_code not in WS_NORMAL:
            code = ex.ws_close_code
            kind = "error" if code == 1011 else "aborted" if code == 1006 else "failure"
            return kind, f"websocket_close:{code}", status
        if outcome == "denied":
            if status == 403:
                return outcome, "authz_denied", status
            return outcome, ("authn_invalid_token" if auth_error else "authn_required"), status
        return outcome, None, status

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
        return lifecycle_event(self.service, self.policy.stamp, kind, details, severity)


def _param_text(value: object) -> str:
    """A route parameter as text; one that has none (its ``__str__`` raises, an integer
    beyond the interpreter's digit limit) becomes ``<type>``, never a lost event."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
