"""Environ helpers shared by the WSGI shell and the Django adapter.

Trust: headers are copied from the environ when the request starts; the client
address is ``REMOTE_ADDR`` (proxy headers are weighed later by the pipeline's
``trusted_proxies``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

from auditmw.core.canonical import valid_text
from auditmw.core.event import Headers
from auditmw.pipeline.body import BodyRecorder
from auditmw.pipeline.forwarded import ROOT_PATH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _typeshed.wsgi import WSGIEnvironment

    from auditmw.auditor import Auditor
    from auditmw.core.event import Exchange

__all__ = ["CountingInput", "body_recorder", "environ_headers", "new_environ_exchange"]


def _text(value: str) -> str:
    # PEP 3333 strings carry raw bytes as Latin-1; ASGI carries UTF-8 text.  Decode
    # the same way so that both shells record the same path.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a server that passed text, not Latin-1 bytes: keep it
        return valid_text(value)


# Every environ key seen, mapped to its header name, or to "" for a key that is not a
# header (wsgi.input, REQUEST_METHOD...).
_HEADER_NAMES: dict[str, str] = {}
# An environ's keys in order (its shape: which headers the client sent) mapped to the
# names of its headers and a getter of their values: a client's requests repeat their
# shape, so most requests read their headers without a walk over the environ.
_SHAPES: dict[tuple[str, ...], tuple[tuple[str, ...], Callable[[Any], tuple[str, ...]]]] = {}


def environ_headers(environ: WSGIEnvironment) -> Headers:
    """Rebuild the request headers from ``HTTP_*``, ``CONTENT_TYPE`` and ``CONTENT_LENGTH``.

    The headers are copied when the request starts, so a middleware inside this one
    that rewrites the environ (a proxy fixer) cannot change what is recorded.

    .. versionadded:: 0.1.0
    """
    shape = tuple(environ)
    plan = _SHAPES.get(shape)
    if plan is None:
        plan = _plan(shape)
    names, values = plan
    mapping = dict(zip(names, values(environ), strict=True))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        mapping["content-type"] = content_type
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        mapping["content-length"] = content_length
    return Headers(None, mapping)


def _plan(shape: tuple[str, ...]) -> tuple[tuple[str, ...], Callable[[Any], tuple[str, ...]]]:
    cache = _HEADER_NAMES
    keys: list[str] = []
    names: list[str] = []
    for key in shape:
        name = cache.get(key)
        if name is None:
            name = key[5:].replace("_", "-").lower() if key[:5] == "HTTP_" else ""
            if len(cache) < 512:  # clients choose header names: keep the caches bounded
                cache[key] = name
        if name:
            keys.append(key)
            names.append(name)
    values = itemgetter(*keys) if len(keys) > 1 else _values(tuple(keys))
    plan = tuple(names), values
    if len(_SHAPES) < 256:
        _SHAPES[shape] = plan
    return plan


def _values(keys: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    # itemgetter returns a bare value for one key (and takes no zero): a tuple always.
    def values(environ: Any) -> tuple[str, ...]:
        return tuple(map(environ.__getitem__, keys))

    return values


def new_environ_exchange(
    auditor: Auditor, environ: WSGIEnvironment, request_object: object = None
) -> Exchange:
    """Start an :class:`~auditmw.event.Exchange` for a WSGI (or Django ``META``) environ.

    Args:
        auditor: the auditor whose ids and clocks are used.
        environ: the WSGI environ.
        request_object: what identity hooks receive (defaults to ``environ``).

    .. versionadded:: 0.1.0
    """
    get = environ.get
    # Routes (Flask rules, Django patterns) are relative to SCRIPT_NAME: so is the path.
    script_name: str = get("SCRIPT_NAME", "")
    path: str = get("PATH_INFO", "")
    if not path.isascii():
        path = _text(path)
    client: tuple[str, int] | None = None
    addr = get("REMOTE_ADDR")
    if addr:
        port = get("REMOTE_PORT")
        try:
            client = addr, int(port) if port else 0
        except ValueError:
            client = addr, 0
    protocol: str = get("SERVER_PROTOCOL", "HTTP/1.1")
    exchange = auditor.new_exchange(
        "http",
        get("REQUEST_METHOD", "GET"),
        path or ("/" if script_name else ""),
        environ_headers(environ),
        query=get("QUERY_STRING", ""),
        scheme=get("wsgi.url_scheme", "http"),
        http_version=protocol.removeprefix("HTTP/"),
        client=client,
        request_object=environ if request_object is None else request_object,
    )
    if script_name:
        root = script_name.rstrip("/")
        if root:
            exchange.extra = {ROOT_PATH: _text(root)}
    return exchange


def body_recorder(auditor: Auditor, exchange: Exchange) -> BodyRecorder | None:
    """Return a body recorder when the policy may capture bodies, else ``None``."""
    policy = auditor.pipeline.policy
    return BodyRecorder(policy, exchange) if policy.captures_bodies else None


class CountingInput:
    """Counts (and, for body capture, records) the request body bytes the app reads.

    The app reads exactly what it would read without it; nothing is read ahead.  It
    also notices a client that went away during the upload: the server's stream
    raising, or ending before ``Content-Length``.  The exchange is then ``aborted``
    whatever the app makes of it (werkzeug answers 400, Django raises
    ``UnreadablePostError``).
    """

    __slots__ = ("_exchange", "_recorder", "_stream")

    def __init__(self, stream: Any, exchange: Exchange, recorder: BodyRecorder | None) -> None:
        self._stream = stream
        self._exchange = exchange
        self._recorder = recorder

    def _seen(self, data: bytes) -> None:
        self._exchange.request_bytes += len(data)
        if self._recorder is not None:
            self._recorder.request_chunk(data)

    def _ended(self) -> None:
        # The stream returned nothing although the app asked for more: the client
        # left if fewer bytes than announced arrived.
        exchange = self._exchange
        try:
            expected = int(exchange.headers.get("content-length") or 0)
        except ValueError:
            return
        if exchange.request_bytes < expected:
            exchange.aborted = True

    def _failed(self) -> None:
        # The server's own stream failed (reset, timeout): a transport fault.
        self._exchange.aborted = True

    def read(self, *args: Any) -> bytes:
        try:
            data: bytes = self._stream.read(*args)
        except Exception:
            self._failed()
            raise
        if data:
            self._seen(data)
        elif not args or args[0] != 0:  # read(0) returns b"" by definition
            self._ended()
        return data

    def readinto(self, buffer: Any) -> int:
        # werkzeug's LimitedStream prefers readinto when the input has it.
        try:
            readinto = getattr(self._stream, "readinto", None)
            if readinto is not None:
                count: int = readinto(buffer) or 0
            else:
                data = self._stream.read(len(buffer))
                count = len(data)
                buffer[:count] = data
        except Exception:
            self._failed()
            raise
        if not count:
            if len(buffer):
                self._ended()
            return 0
        self._exchange.request_bytes += count
        if self._recorder is not None:
            self._recorder.request_chunk(bytes(memoryview(buffer)[:count]))
        return count

    def readline(self, *args: Any) -> bytes:
        try:
            data: bytes = self._stream.readline(*args)
        except Exception:
            self._failed()
            raise
        self._seen(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        try:
            lines: list[bytes] = self._stream.readlines(*args)
        except Exception:
            self._failed()
            raise
        for line in lines:
            self._seen(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._seen(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        # Servers' input objects have extra methods (e.g. ``close``); pass them through.
        return getattr(self._stream, name)
