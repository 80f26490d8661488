"""The WSGI audit middleware.

It observes a request by wrapping ``start_response``, ``wsgi.input`` and the
response iterable, and never buffers, delays or rewrites the body.  It adds one
response header (``Audit-Id``, configurable or off).  The application's
exceptions are recorded and re-raised unchanged, whether they come from the
application call or from iterating its response.

The event is finished when the response iterable is exhausted or closed by the
server (like werkzeug's ``ClosingIterator``), whichever comes first, so a streamed
response is measured to its last byte; an iterable closed before it was exhausted
is recorded as ``aborted``.  A
response that is the server's own ``wsgi.file_wrapper`` object is returned as it
is, so the server can still use ``sendfile``: only its ``close`` is hooked, and
its size is taken from ``Content-Length`` (or the file's size).

Trust: the client address is ``REMOTE_ADDR``; ``X-Forwarded-For`` and
``Forwarded`` are believed only from the configured ``trusted_proxies``
(see :mod:`auditmw._net`).  Do not put another proxy-fixing middleware (such as
werkzeug's ``ProxyFix``) *inside* this one unless you trust what it rewrites.

Adapters (Flask, Django) find the in-flight :class:`~auditmw.event.Exchange` under
the environ key ``"auditmw.exchange"`` and set ``route``, ``path_params`` and
``user`` on it before it is finished.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from auditmw._context import _current
from auditmw.auditor import Auditor
from auditmw.event import Exchange, Headers
from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from auditmw.config import AuditConfig

__all__ = ["ENVIRON_KEY", "AuditWSGIMiddleware"]

#: The environ key holding the in-flight :class:`~auditmw.event.Exchange`.
ENVIRON_KEY: Final = "auditmw.exchange"

_ExcInfo = tuple[type[BaseException], BaseException, "TracebackType"] | tuple[None, None, None]


def _text(value: str) -> str:
    # PEP 3333 strings carry raw bytes as Latin-1; ASGI carries UTF-8 text.  Decode
    # the same way so that both shells record the same path.
    if value.isascii():
        return value
    return value.encode("latin-1").decode("utf-8", "backslashreplace")


_HEADER_NAMES: dict[str, str] = {}


def environ_headers(environ: WSGIEnvironment) -> Headers:
    """Rebuild the request headers from ``HTTP_*``, ``CONTENT_TYPE`` and ``CONTENT_LENGTH``.

    The headers are copied when the request starts, so a middleware inside this one
    that rewrites the environ (a proxy fixer) cannot change what is recorded.

    .. versionadded:: 0.1.0
    """
    names = _HEADER_NAMES
    mapping: dict[str, str] = {}
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            name = names.get(key)
            if name is None:
                name = key[5:].replace("_", "-").lower()
                if len(names) < 512:  # clients choose header names: keep the cache bounded
                    names[key] = name
            mapping[name] = value
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        mapping["content-type"] = content_type
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        mapping["content-length"] = content_length
    return Headers(mapping=mapping)


def _client(environ: WSGIEnvironment) -> tuple[str, int] | None:
    addr = environ.get("REMOTE_ADDR")
    if not addr:
        return None
    port = environ.get("REMOTE_PORT")
    try:
        return addr, int(port) if port else 0
    except ValueError:
        return addr, 0


def new_environ_exchange(
    auditor: Auditor,
    environ: WSGIEnvironment,
    request_object: object = None,
    *,
    count_input: bool = True,
) -> Exchange:
    """Start an :class:`~auditmw.event.Exchange` for a WSGI (or Django ``META``) environ.

    Args:
        auditor: the auditor whose ids and clocks are used.
        environ: the WSGI environ.
        request_object: what identity hooks receive (defaults to ``environ``).
        count_input: wrap ``wsgi.input`` to count the body bytes the app reads.

    .. versionadded:: 0.1.0
    """
    protocol: str = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    client = _client(environ)
    exchange = auditor.new_exchange(
        "http",
        environ.get("REQUEST_METHOD", "GET"),
        _text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")),
        environ_headers(environ),
        query=environ.get("QUERY_STRING", ""),
        scheme=environ.get("wsgi.url_scheme", "http"),
        http_version=protocol.removeprefix("HTTP/"),
        client=client,
        request_object=environ if request_object is None else request_object,
    )
    stream = environ.get("wsgi.input")
    if count_input and stream is not None:
        environ["wsgi.input"] = _CountingInput(stream, exchange)
    return exchange


class _CountingInput:
    """Counts the request body bytes the application reads (like the ASGI shell)."""

    __slots__ = ("_exchange", "_stream")

    def __init__(self, stream: Any, exchange: Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        # werkzeug's LimitedStream prefers readinto when the input has it.
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            count: int = readinto(buffer) or 0
        else:
            data = self._stream.read(len(buffer))
            count = len(data)
            buffer[:count] = data
        self._exchange.request_bytes += count
        return count

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self._exchange.request_bytes += sum(map(len, lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._exchange.request_bytes += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        # Servers' input objects have extra methods (e.g. ``close``); pass them through.
        return getattr(self._stream, name)


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
        if auditor is None:
            if config is None:
                raise ConfigurationError(
                    "AuditWSGIMiddleware needs config=AuditConfig(service=...) "
                    "or auditor=Auditor(...)",
                    setting="config",
                )
            auditor = Auditor(config)
        self.app = app
        self.auditor = auditor
        header = auditor.config.audit_id_header
        self._audit_header = header

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        exchange = new_environ_exchange(self.auditor, environ)
        environ[ENVIRON_KEY] = exchange
        header = self._audit_header
        sent: list[list[tuple[str, str]]] = []

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            exchange.status = _status_code(status)
            if header is not None:
                headers = [*headers, (header, exchange.event_id)]
            sent[:] = [headers]
            write = start_response(status, headers, exc_info)

            def counted_write(data: bytes) -> object:
                exchange.response_bytes += len(data)
                return write(data)

            return counted_write

        token = _current.set(exchange.context)
        try:
            result = self.app(environ, start)
        except BaseException as exc:
            self._fail(exchange, exc)
            raise
        finally:
            _current.reset(token)
        wrapper_type = environ.get("wsgi.file_wrapper")
        if (
            isinstance(wrapper_type, type)
            and isinstance(result, wrapper_type)
            and _hook_file_wrapper(result, self, exchange, sent)
        ):
            return result
        return _ResponseIterable(result, self, exchange)

    def _fail(self, exchange: Exchange, exc: BaseException) -> None:
        if isinstance(exc, Exception):
            exchange.exception = exc
        else:  # KeyboardInterrupt, SystemExit, a worker timeout: the request never completed
            exchange.aborted = True
        self.auditor.record(exchange)


def _status_code(status: str) -> int | None:
    try:
        return int(status[:3])
    except ValueError:
        return None


def _hook_file_wrapper(
    result: Any, shell: AuditWSGIMiddleware, exchange: Exchange, sent: list[list[tuple[str, str]]]
) -> bool:
    """Finish the event when the server closes its own file wrapper, keeping its type."""
    original = getattr(result, "close", None)

    def close() -> None:
        # Measured before closing: the server may have used sendfile, bypassing iteration.
        exchange.response_bytes = _file_size(result, sent)
        try:
            if original is not None:
                original()
        finally:
            shell.auditor.record(exchange)

    try:
        result.close = close
    except AttributeError:  # a wrapper with __slots__: fall back to wrapping the iterable
        return False
    return True


def _file_size(result: Any, sent: list[list[tuple[str, str]]]) -> int:
    for name, value in sent[0] if sent else ():
        if name.lower() == "content-length" and value.isdigit():
            return int(value)
    try:
        return os.fstat(result.filelike.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return 0


class _ResponseIterable:
    """Counts the response bytes and finishes the event when the server closes it."""

    __slots__ = ("_exchange", "_exhausted", "_iterable", "_iterator", "_recorded", "_shell")

    def __init__(
        self, iterable: Iterable[bytes], shell: AuditWSGIMiddleware, exchange: Exchange
    ) -> None:
        self._iterable = iterable
        self._iterator: Iterator[bytes] | None = None
        self._shell = shell
        self._exchange = exchange
        self._exhausted = False
        self._recorded = False

    def __iter__(self) -> _ResponseIterable:
        return self

    def __next__(self) -> bytes:
        exchange = self._exchange
        token = _current.set(exchange.context)
        try:
            if self._iterator is None:
                self._iterator = iter(self._iterable)
            chunk = next(self._iterator)
        except StopIteration:
            # Servers write each chunk before asking for the next one, so the last byte is
            # out: finish now.  close() follows at once in servers, but some test clients
            # (werkzeug's, unbuffered) never call it.
            self._exhausted = True
            self._finish()
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            _current.reset(token)
        exchange.response_bytes += len(chunk)
        return chunk

    def _fail(self, exc: BaseException) -> None:
        if not self._recorded:
            self._recorded = True
            self._shell._fail(self._exchange, exc)

    def close(self) -> None:
        """Close the application's iterable, then finish the event."""
        exchange = self._exchange
        token = _current.set(exchange.context)
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            _current.reset(token)
        if not self._exhausted:
            exchange.aborted = True
        self._finish()

    def _finish(self) -> None:
        if not self._recorded:
            self._recorded = True
            self._shell.auditor.record(self._exchange)
