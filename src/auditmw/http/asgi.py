"""The pure-ASGI audit middleware.

It observes a request by wrapping ``send`` and ``receive`` and never buffers,
delays or rewrites the body: streaming, file responses, background tasks,
WebSockets and ``HEAD`` pass through untouched.  It adds one response header
(``Audit-Id``, configurable or off).  The application's exceptions are recorded
and re-raised unchanged.

The event is recorded when the last body message has been sent (so background
tasks run after it), or when the app raises, or when it returns without finishing
its response.  WebSocket sessions are recorded when the app returns.

In durable mode (``DeliveryOptions(mode="durable")``) the middleware holds back the
response start and the final body message until the event is stored.  If storage
fails within ``durable_timeout``, a response not yet started becomes a 503; a
streamed response already under way is aborted (an exception ends the connection)
rather than completed unaudited.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditmw.auditor import Auditor, auditor_for
from auditmw.core.context import _current
from auditmw.core.event import Exchange, Headers
from auditmw.exceptions import DeliveryTimeoutError
from auditmw.pipeline.body import BodyRecorder
from auditmw.pipeline.forwarded import ROOT_PATH, relative_path

if TYPE_CHECKING:
    from auditmw.config.options import AuditConfig
    from auditmw.core.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AuditMiddleware"]


def _place(exchange: Exchange, scope: Scope, path: str) -> None:
    """Set the route, the path and the root path, all relative to the app's root path.

    The app's root path is what the server (``--root-path``) or the app itself
    (``FastAPI(root_path=...)``) set, before any ``Mount``; Starlette keeps it in
    ``app_root_path`` once a mount was crossed.  Mount points inside the app stay part
    of both the path and the route; the root path is recorded apart.
    """
    root: str = scope.get("root_path") or ""
    base = scope.get("app_root_path")
    if not isinstance(base, str):  # absent (no mount crossed), or a non-compliant value
        base = root
    route = scope.get("route")
    template: object = None
    if route is not None:
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        # Inside a Mount the route is relative to the mount point: prefix what it matched.
        if root != base and root.startswith(base):
            template = root[len(base) :] + template
        exchange.route = template
    else:
        exchange.route = None
    base = base.rstrip("/")
    if base:
        exchange.path = relative_path(path, base)
        exchange.extra = {**(exchange.extra or {}), ROOT_PATH: base}


class AuditMiddleware:
    """Record one audit event per HTTP request and WebSocket session.

    Args:
        app: the ASGI application.
        config: the audit configuration (ignored when ``auditor`` is given).
        auditor: an existing :class:`~auditmw.auditor.Auditor` to share.

    Raises:
        ConfigurationError: neither ``config`` nor ``auditor`` was given.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, app: ASGIApp, config: AuditConfig | None = None, *, auditor: Auditor | None = None
    ) -> None:
        auditor = auditor_for("AuditMiddleware", config, auditor)
        self.app = app
        self.auditor = auditor
        header = auditor.config.audit_id_header
        self._audit_header = header.lower().encode("latin-1") if header else None
        self._captures = auditor.pipeline.policy.captures_bodies
        self._span = auditor.pipeline.span_reader  # None without OpenTelemetry
        self._new_exchange = auditor.new_exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            elif kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        # The HTTP cycle, inline: one coroutine per request, not two.
        try:
            cycle = _HTTPCycle(self, scope, receive, send)
        except Exception as exc:  # a scope no compliant server sends: never the app's problem
            self.auditor.internal_error("asgi.scope", exc)
            await self.app(scope, receive, send)
            return
        token = _current.set(cycle.exchange.context)
        try:
            await self.app(scope, cycle.receive, cycle.send)
        except BaseException as exc:
            if not cycle.recorded:
                if isinstance(exc, Exception) and not cycle.exchange.aborted:
                    cycle.exchange.exception = exc
                else:  # cancelled, or the client went away: not the app's error
                    cycle.exchange.aborted = True
                cycle.finish()
            raise
        finally:
            _current.reset(token)
        if cycle.held is not None:  # the app never finished its body: behave as without us
            await cycle.release()
        if not cycle.recorded:
            # The app returned without completing its response (e.g. a stream cut short).
            if cycle.started:
                cycle.exchange.aborted = True
            cycle.finish()

    def _exchange(self, scope: Scope, kind: str) -> Exchange:
        get = scope.get
        query = get("query_string", b"")
        exchange = self._new_exchange(
            kind,
            get("method", "GET"),
            get("path", ""),
            Headers(get("headers")),
            query=query.decode("latin-1") if query.__class__ is bytes else _query_text(query),
            scheme=get("scheme", "http"),
            http_version=get("http_version", "1.1"),
            client=get("client"),
            request_object=scope,
        )
        span = self._span
        if span is not None:  # an OpenTelemetry span around this middleware
            exchange.trace = span()
        return exchange

    def _bodies(self, exchange: Exchange, scope: Scope, path: str) -> BodyRecorder | None:
        if not self._captures:
            return None

        # Decided at first use, when the router has set the route.
        def locate() -> None:
            _place(exchange, scope, path)

        return BodyRecorder(self.auditor.pipeline.policy, exchange, locate)

    def _prepare(self, exchange: Exchange, scope: Scope, path: str) -> None:
        _place(exchange, scope, path)
        exchange.path_params = scope.get("path_params")
        if "user" in scope:
            exchange.user = scope["user"]

    def _finish(self, exchange: Exchange, scope: Scope, path: str) -> None:
        try:
            self._prepare(exchange, scope, path)
        except Exception as exc:  # a value the framework left in an odd shape: record without it
            self.auditor.internal_error("asgi.prepare", exc, exchange)
        self.auditor.record(exchange)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            exchange = self._exchange(scope, "websocket")
        except Exception as exc:  # a scope no compliant server sends: never the app's problem
            self.auditor.internal_error("asgi.scope", exc)
            await self.app(scope, receive, send)
            return
        path = exchange.path
        header = self._audit_header

        async def receive_wrapper() -> Message:
            message = await receive()
            mtype = message["type"]
            if mtype == "websocket.receive":
                exchange.ws_messages_in += 1
                exchange.request_bytes += _frame_size(message)
            elif mtype == "websocket.disconnect":
                exchange.ws_close_code = message.get("code", 1005)
            return message

        async def send_wrapper(message: Message) -> None:
            mtype = message["type"]
            if mtype == "websocket.send":
                exchange.ws_messages_out += 1
                exchange.response_bytes += _frame_size(message)
            elif mtype == "websocket.accept":
                exchange.ws_accepted = True
                if self._span is not None and exchange.trace is None:
                    exchange.trace = self._span()
                if header is not None:
                    headers = list(message.get("headers", ()))
                    headers.append((header, exchange.event_id.encode("ascii")))
                    message = {**message, "headers": headers}
            elif mtype == "websocket.close":
                exchange.ws_close_code = message.get("code", 1000)
                if not exchange.ws_accepted:
                    exchange.status = 403
            elif mtype == "websocket.http.response.start":
                exchange.status = message["status"]
            await send(message)

        token = _current.set(exchange.context)
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as exc:
            if isinstance(exc, Exception):
                exchange.exception = exc
            else:
                exchange.aborted = True
            self._finish(exchange, scope, path)
            raise
        finally:
            _current.reset(token)
        self._finish(exchange, scope, path)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        auditor = self.auditor

        async def send_wrapper(message: Message) -> None:
            mtype = message["type"]
            if mtype == "lifespan.startup.complete":
                auditor.start()
            elif mtype == "lifespan.shutdown.complete":
                # The server is stopping: draining here (bounded by shutdown_timeout)
                # is what guarantees that no event is lost at exit.
                auditor.close()
            await send(message)

        await self.app(scope, receive, send_wrapper)


class _HTTPCycle:
    """Observes one HTTP request/response cycle through ``receive`` and ``send``."""

    __slots__ = (
        "_receive", "_send", "bodies", "cut", "done", "durable", "exchange", "held", "middleware",
        "path", "recorded", "request_done", "scope", "started",
    )  # fmt: skip

    def __init__(self, middleware: AuditMiddleware, scope: Scope, receive: Receive, send: Send):
        self.middleware = middleware
        self.scope = scope
        self.exchange = exchange = middleware._exchange(scope, "http")
        self.path = exchange.path  # as the server gave it, before any root path is removed
        self._receive = receive
        self._send = send
        self.started = self.done = self.recorded = False
        # request_done: the last request body message arrived; cut: the client left before.
        self.request_done = self.cut = False
        self.bodies = None
        if middleware._captures:  # the call only when bodies may be recorded
            self.bodies = middleware._bodies(exchange, scope, self.path)
        self.durable = middleware.auditor.delivery.is_durable
        self.held: Message | None = None  # durable mode: the response start, until the commit

    def finish(self) -> None:
        """Record the event: what ``AuditMiddleware._finish`` does, in one frame."""
        self.recorded = True
        if self.bodies is not None:
            self.bodies.finish()
        exchange = self.exchange
        scope = self.scope
        auditor = self.middleware.auditor
        try:
            _place(exchange, scope, self.path)
            exchange.path_params = scope.get("path_params")
            if "user" in scope:
                exchange.user = scope["user"]
        except Exception as exc:  # a value the framework left in an odd shape: record without it
            auditor.internal_error("asgi.prepare", exc, exchange)
        auditor.record(exchange)

    async def receive(self) -> Message:
        message = await self._receive()
        mtype = message["type"]
        if mtype == "http.request":
            self.exchange.request_bytes += len(message.get("body", b""))
            if self.bodies is not None:
                self.bodies.request_chunk(message.get("body", b""))
            if not message.get("more_body", False):
                self.request_done = True
        elif mtype == "http.disconnect" and not self.done:
            # Whatever the app makes of it (Starlette raises ClientDisconnect), the
            # client is gone: the outcome is "aborted", not the app's error.
            self.exchange.aborted = True
            self.cut = self.cut or not self.request_done
        return message

    async def send(self, message: Message) -> None:
        mtype = message["type"]
        exchange = self.exchange
        if mtype == "http.response.body":
            body = message.get("body", b"")
            exchange.response_bytes += len(body)
            if self.bodies is not None:
                self.bodies.response_chunk(body)
            if not message.get("more_body", False):
                if self.durable:
                    await self._commit(message)
                    return
                try:  # _forward, inline: the final message of every response
                    await self._send(message)
                except OSError:
                    exchange.aborted = self.cut = True
                    raise
                # The response is complete: record now, before background tasks run.  A
                # disconnect seen after the whole request arrived may be the server's
                # own end-of-response notice; one seen before it never is.
                self.done = True
                exchange.aborted = self.cut
                self.finish()
                return
            if self.held is not None:
                await self.release()
        elif mtype == "http.response.start":
            self.started = True
            exchange.status = message["status"]
            span = self.middleware._span
            if span is not None and exchange.trace is None:  # a span inside: the app's
                exchange.trace = span()
            if self.bodies is not None:
                self.bodies.response_start(message.get("headers"))
            header = self.middleware._audit_header
            if header is not None:
                headers = list(message.get("headers", ()))
                headers.append((header, exchange.event_id.encode("ascii")))
                message = {**message, "headers": headers}
            if self.durable:
                self.held = message
                return
        try:  # _forward, inline
            await self._send(message)
        except OSError:
            exchange.aborted = self.cut = True
            raise

    async def release(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            await self._forward(held)

    async def _commit(self, final: Message) -> None:
        """Durable mode: send the end of the response only once the event is stored."""
        self.done = self.recorded = True
        self.exchange.aborted = self.cut
        if self.bodies is not None:
            self.bodies.finish()
        auditor = self.middleware.auditor
        self.middleware._prepare(self.exchange, self.scope, self.path)
        waiter = auditor.commit(self.exchange)
        if waiter is None or await waiter.await_async(auditor.config.delivery.durable_timeout):
            await self.release()
            await self._forward(final)
        elif self.held is not None:  # nothing reached the client yet: fail closed
            self.held = None
            await self._forward(_UNAVAILABLE_START)
            await self._forward(_UNAVAILABLE_BODY)
        else:
            raise DeliveryTimeoutError("durable audit commit failed; aborting the response")

    async def _forward(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError:
            # ASGI 2.4: the server's send raises OSError once the client is gone;
            # whatever the app turns that into, the outcome is "aborted".
            self.exchange.aborted = self.cut = True
            raise


_UNAVAILABLE_START: Message = {
    "type": "http.response.start",
    "status": 503,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")],
}
_UNAVAILABLE_BODY: Message = {"type": "http.response.body", "body": b"audit storage unavailable\n"}


def _query_text(query: object) -> str:
    """A query string a server passed as something else than ``bytes`` (a subclass, a str)."""
    if isinstance(query, bytes):
        return query.decode("latin-1")
    return str(query or "")


def _frame_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    return len(text.encode("utf-8")) if text else 0
