"""The WSGI audit middleware.

It observes a request by wrapping ``start_response``, ``wsgi.input`` and the
response iterable, and never buffers, delays or rewrites the body.  It adds one
response header (``Audit-Id``, configurable or off).  The application's
exceptions are recorded and re-raised unchanged, whether they come from the
application call or from iterating its response.

The event is finished when the response iterable is exhausted or closed by the
server (like werkzeug's ``ClosingIterator``), whichever comes first, so a streamed
response is measured to its last byte; an iterable closed before it was exhausted
is recorded as ``aborted``.  An iterable dropped without either (werkzeug's and
Flask's test clients do so with a body the test never reads) is finished when it is
garbage-collected, with the annotation ``auditmw.response: "not_closed"``.

A response that is the server's own ``wsgi.file_wrapper`` object is returned as it
is, so the server can still use ``sendfile``: only its ``close`` is hooked, and its
size is taken from ``Content-Length`` (or the file's size); its body is not captured.

At the ``request`` and ``request_response`` policy levels the bodies are copied
(up to the policy's cap) as the app reads its input and as the server pulls the
response, never read ahead or held back.

Trust: the client address is ``REMOTE_ADDR``; ``X-Forwarded-For`` and
``Forwarded`` are believed only from the configured ``trusted_proxies``
(see :mod:`auditmw.pipeline.forwarded`).  Do not put another proxy-fixing middleware (such as
werkzeug's ``ProxyFix``) *inside* this one unless you trust what it rewrites.

In durable mode (``DeliveryOptions(mode="durable")``) the last chunk of the response
is held back until the event is stored.  If storage fails within
``durable_timeout``, a response whose body has not started is replaced by a 503
(through ``start_response`` with ``exc_info``, as PEP 3333 allows before the headers
are sent); a body already under way is aborted (an exception ends the connection)
rather than completed unaudited.  Durable mode iterates file wrappers too, so that
their last block can be held.

Adapters (Flask, Django) find the in-flight :class:`~auditmw.event.Exchange` under
the environ key ``"auditmw.exchange"`` and set ``route``, ``path_params`` and
``user`` on it before it is finished.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Final

from auditmw.auditor import Auditor, auditor_for
from auditmw.core.context import _current
from auditmw.exceptions import DeliveryTimeoutError
from auditmw.http.environ import CountingInput, new_environ_exchange
from auditmw.pipeline.body import BodyRecorder, raw_headers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from auditmw.config.options import AuditConfig
    from auditmw.core.event import Exchange

__all__ = ["ENVIRON_KEY", "AuditWSGIMiddleware"]

#: The environ key holding the in-flight :class:`~auditmw.event.Exchange`.
ENVIRON_KEY: Final = "auditmw.exchange"

#: The annotation set on the event of a response that was garbage-collected without
#: being closed or read to the end (value ``"not_closed"``).
NOT_CLOSED_KEY: Final = "auditmw.response"

_log = logging.getLogger("auditmw")

_ExcInfo = tuple[type[BaseException], BaseException, "TracebackType"] | tuple[None, None, None]


class AuditWSGIMiddleware:
    """Record one audit event per request of a WSGI application.

    Args:
        app: the WSGI application.
        config: the audit configuration (ignored when ``auditor`` is given).
        auditor: an existing :class:`~auditmw.auditor.Auditor` to share.

    Raises:
        ConfigurationError: neither ``config`` nor ``auditor`` was given.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: WSGIApplication,
        config: AuditConfig | None = None,
        *,
        auditor: Auditor | None = None,
    ) -> None:
        auditor = auditor_for("AuditWSGIMiddleware", config, auditor)
        self.app = app
        self.auditor = auditor
        header = auditor.config.audit_id_header
        self._audit_header = header
        self._span = auditor.pipeline.span_reader  # None without OpenTelemetry
        self._policy = auditor.pipeline.policy
        self._captures = self._policy.captures_bodies
        self._durable = auditor.durable

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            exchange = new_environ_exchange(self.auditor, environ)
            if self._span is not None:  # an OpenTelemetry span around this middleware
                exchange.trace = self._span()
            bodies = BodyRecorder(self._policy, exchange) if self._captures else None
            # A GET or HEAD without Content-Length or Transfer-Encoding has no body (RFC
            # 9112 6.3): its input is left unwrapped, as there is nothing to count.
            may_have_body = (
                environ.get("REQUEST_METHOD") not in _BODILESS
                or environ.get("CONTENT_LENGTH") not in _NO_LENGTH
                or "HTTP_TRANSFER_ENCODING" in environ
            )
        except Exception as exc:  # an environ no compliant server sends: never the app's problem
            self.auditor.internal_error("wsgi.environ", exc)
            return self.app(environ, start_response)
        if may_have_body:
            stream = environ.get("wsgi.input")
            if stream is not None:
                environ["wsgi.input"] = CountingInput(stream, exchange, bodies)
        environ[ENVIRON_KEY] = exchange
        cycle = _Cycle(self, exchange, bodies, start_response)
        token = _current.set(exchange.context)
        try:
            result = self.app(environ, cycle.start_response)
        except BaseException as exc:
            cycle.fail(exc)
            raise
        finally:
            _current.reset(token)
        cycle.iterable = result
        if result.__class__ is list or result.__class__ is tuple:
            cycle._plain = not self._durable
            return cycle
        wrapper_type = environ.get("wsgi.file_wrapper")
        if (
            wrapper_type is not None
            and isinstance(wrapper_type, type)
            and isinstance(result, wrapper_type)
            and not self._durable
            and cycle.hook_file_wrapper(result)
        ):
            return result
        return cycle


_BODILESS: Final = frozenset({"GET", "HEAD"})
_NO_LENGTH: Final = frozenset({None, "", "0"})
_END: Final[Any] = object()  # the end of the app's iterable, without StopIteration
_UNAVAILABLE: Final = (("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1"))
# Status lines seen, mapped to their code: an app sends a few distinct lines, and
# parsing one costs more than finding it.
_STATUS_CODES: dict[str, int] = {}


def _status_code(status: str) -> int | None:
    try:
        code = int(status[:3])
    except ValueError:
        return None
    if len(_STATUS_CODES) < 256 and status.__class__ is str:  # apps choose reason phrases
        _STATUS_CODES[status] = code
    return code


class _Cycle:
    """One request: wraps ``start_response``, then is the response iterable the server gets."""

    __slots__ = (
        "_bodies", "_exchange", "_exhausted", "_headers", "_iterator", "_plain", "_recorded",
        "_shell", "_start_response", "_write", "iterable",
    )  # fmt: skip

    def __init__(
        self,
        shell: AuditWSGIMiddleware,
        exchange: Exchange,
        bodies: BodyRecorder | None,
        start_response: StartResponse,
    ) -> None:
        self._shell = shell
        self._exchange = exchange
        self._bodies = bodies
        self._start_response = start_response
        self._headers: list[tuple[str, str]] = []
        self.iterable: Iterable[bytes] = ()
        self._iterator: Iterator[bytes] | None = None
        self._exhausted = self._recorded = self._plain = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        exchange = self._exchange
        code = _STATUS_CODES.get(status)
        exchange.status = code if code is not None else _status_code(status)
        shell = self._shell
        if shell._span is not None and exchange.trace is None:  # a span inside: the app's
            exchange.trace = shell._span()
        if shell._audit_header is not None:
            headers = [*headers, (shell._audit_header, exchange.event_id)]
        self._headers = headers
        if self._bodies is not None:
            self._bodies.response_start(raw_headers(headers))
        self._write = self._start_response(status, headers, exc_info)
        return self._counted_write

    def _counted_write(self, data: bytes) -> object:
        self._exchange.response_bytes += len(data)
        if self._bodies is not None:
            self._bodies.response_chunk(data)
        try:
            return self._write(data)
        except OSError:
            self._exchange.aborted = True  # a broken pipe: the client left
            raise

    def record(self) -> None:
        if not self._recorded:
            self._recorded = True
            if self._bodies is not None:
                self._bodies.finish()
            self._shell.auditor.record(self._exchange)

    def fail(self, exc: BaseException) -> None:
        # A client disconnect seen by the shell (input cut short, a failed write) makes
        # the outcome "aborted", whatever the app raised because of it.
        if isinstance(exc, Exception) and not self._exchange.aborted:
            self._exchange.exception = exc
        else:  # KeyboardInterrupt, SystemExit, a worker timeout: the request never completed
            self._exchange.aborted = True
        self.record()

    def hook_file_wrapper(self, result: Any) -> bool:
        """Finish the event when the server closes its own file wrapper, keeping its type."""
        original = getattr(result, "close", None)

        def close() -> None:
            # Measured before closing: the server may have used sendfile, bypassing iteration.
            self._exchange.response_bytes = self._file_size(result)
            try:
                if original is not None:
                    original()
            finally:
                self.record()

        try:
            result.close = close
        except AttributeError:  # a wrapper with __slots__: fall back to wrapping the iterable
            return False
        return True

    def _file_size(self, result: Any) -> int:
        for name, value in self._headers:
            if name.lower() == "content-length" and value.isdigit():
                return int(value)
        try:
            return os.fstat(result.filelike.fileno()).st_size
        except (AttributeError, OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[bytes]:
        # What a server iterates: one generator frame for the whole response, which ends
        # without raising StopIteration.  Every iteration (and __next__) pulls from the
        # one iterator of the app's iterable.
        exchange, bodies = self._exchange, self._bodies
        if self._plain:  # a list or tuple: iterating it runs no app code, so no context
            for chunk in self._iterator or self._open():
                exchange.response_bytes += len(chunk)
                if bodies is not None:
                    bodies.response_chunk(chunk)
                yield chunk
            self._exhausted = True
            self.record()
            return
        while True:
            # The app's code runs in its request's context, never the server's between chunks.
            token = _current.set(exchange.context)
            try:
                chunk = next(self._iterator or self._open(), _END)
                if chunk is _END:
                    # Servers write each chunk before asking for the next one, so the last
                    # byte is out: finish now.  close() follows at once in servers, but
                    # some test clients (werkzeug's, unbuffered) never call it.
                    self._exhausted = True
                    self.record()
                    return
            except BaseException as exc:
                if not self._recorded:
                    self.fail(exc)
                raise
            finally:
                _current.reset(token)
            exchange.response_bytes += len(chunk)
            if bodies is not None:
                bodies.response_chunk(chunk)
            yield chunk

    def _open(self) -> Iterator[bytes]:
        iterator = self._iterator = iter(self.iterable)
        if self._shell._durable:
            iterator = self._iterator = self._hold_last(iterator)
        return iterator

    def __next__(self) -> bytes:
        # For a caller that calls next() on the response without iter(): the same steps
        # as the generators, one call each.
        token = _current.set(self._exchange.context)
        try:
            chunk = next(self._iterator or self._open())
        except StopIteration:
            self._exhausted = True
            self.record()
            raise
        except BaseException as exc:
            if not self._recorded:
                self.fail(exc)
            raise
        finally:
            _current.reset(token)
        self._exchange.response_bytes += len(chunk)
        if self._bodies is not None:
            self._bodies.response_chunk(chunk)
        return chunk

    def _hold_last(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Durable mode: pass chunks on one step late; store the event before the last."""
        held: bytes | None = None
        sent_body = False  # whether a chunk with bytes reached the server
        for chunk in chunks:
            if held is not None:
                sent_body = sent_body or bool(held)
                yield held
            held = chunk
        self._recorded = True
        if self._bodies is not None:
            self._bodies.finish()
        auditor = self._shell.auditor
        waiter = auditor.commit(self._exchange)
        if waiter is None or waiter.wait(auditor.config.delivery.durable_timeout):
            if held is not None:
                yield held
            return
        try:
            raise DeliveryTimeoutError("durable audit commit failed")
        except DeliveryTimeoutError:
            if sent_body:  # the client has part of the body: abort, never complete it
                raise
            # Nothing reached the client: replace the response (PEP 3333 exc_info).
            self._start_response("503 Service Unavailable", list(_UNAVAILABLE), sys.exc_info())
        yield b"audit storage unavailable\n"

    def __del__(self) -> None:
        # Neither closed nor exhausted: werkzeug's unbuffered test client (Flask's too)
        # drops a response whose body nobody read.  Finish the event now, marked, so
        # that no request goes unrecorded; a hook never raises, least of all here.
        if self._recorded:
            return
        try:
            context = self._exchange.context
            if context is not None:
                context.annotations[NOT_CLOSED_KEY] = "not_closed"
            self.record()
        except Exception:  # pragma: no cover - the pipeline itself does not raise
            _log.exception("auditmw: could not record a response that was never closed")

    def close(self) -> None:
        """Close the application's iterable, then finish the event."""
        close = getattr(self.iterable, "close", None)
        if close is not None:
            token = _current.set(self._exchange.context)
            try:
                close()
            except BaseException as exc:
                if not self._recorded:
                    self.fail(exc)
                raise
            finally:
                _current.reset(token)
        if not self._exhausted:
            self._exchange.aborted = True
        if not self._recorded:
            self.record()
