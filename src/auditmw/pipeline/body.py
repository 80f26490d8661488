"""Body capture for the ``request`` and ``request_response`` levels, shared by every shell.

A :class:`BodyCapture` is fed each chunk as it passes through: it copies bytes up
to a cap, counts them all (and, with a key, MACs them all), and never holds a chunk
back, so the app reads its request and the client receives its stream exactly as
without auditmw.  :func:`describe_body` turns what was captured into the event's
``body`` object: JSON and form bodies are parsed (the redactor then cleans them);
anything else, and anything cut at the cap, is recorded as size and content type,
plus a keyed HMAC when the policy has a redaction key (``redaction.hmac_key_id``),
else the marker ``"content": "omitted"``.

Trust: the client chooses the content type, so any body may hold a credential.  An
unkeyed hash would let anyone who reads the log confirm a guess of it, so none is
ever recorded; the HMAC key is derived from the redaction key (label
``auditmw/v1/body``), so it confirms guesses only for whoever holds that key.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from auditmw.core.event import Exchange
    from auditmw.core.policy import Policy
    from auditmw.core.processors import Pseudonymizer
    from auditmw.core.types import RawHeaders

__all__ = ["BodyCapture", "BodyRecorder", "describe_body", "raw_headers"]

#: ``Exchange.extra`` keys holding the keyed digests of the whole bodies.
REQUEST_DIGEST = "auditmw.request_body_digest"
RESPONSE_DIGEST = "auditmw.response_body_digest"

#: The label the body HMAC key is derived with from the redaction key.
BODY_KEY_LABEL = b"auditmw/v1/body"

#: What ``body.content`` says when no digest could be recorded (no key configured).
OMITTED = "omitted"


@functools.lru_cache(maxsize=16)  # one per policy key: derive once, not per request
def _body_key(hasher: Pseudonymizer) -> tuple[str, bytes]:
    secret: bytes = hasher._key  # the redaction key itself never leaves processors/_body
    return hasher.key_id, hmac.new(secret, BODY_KEY_LABEL, hashlib.sha256).digest()


def body_key(policy: Policy) -> tuple[str, bytes] | None:
    """Return ``(key id, body HMAC key)`` from the policy's redaction key, or ``None``."""
    hasher = policy._hasher
    return None if hasher is None else _body_key(hasher)


class BodyCapture:
    """Copies the first ``limit`` bytes of a body; counts and (with a key) MACs all of it.

    Args:
        limit: bytes kept; the rest is counted (and MACed), not stored.
        key: ``(key id, HMAC key)`` to digest the whole body with, or ``None`` for no
            digest at all: an unkeyed hash of client content is never computed.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_chunks", "_key_id", "_mac", "kept", "limit", "size")

    def __init__(self, limit: int, key: tuple[str, bytes] | None = None) -> None:
        self.limit = limit
        self.size = 0
        self.kept = 0
        self._chunks: list[bytes] = []
        self._key_id = ""
        self._mac: hmac.HMAC | None = None
        if key is not None:
            self._key_id = key[0]
            self._mac = hmac.new(key[1], digestmod=hashlib.sha256)

    def feed(self, chunk: bytes) -> None:
        """Account for one chunk (called before the chunk is passed on, never delaying it)."""
        if not chunk:
            return
        self.size += len(chunk)
        if self._mac is not None:
            self._mac.update(chunk)
        room = self.limit - self.kept
        if room > 0:
            part = chunk[:room]
            self._chunks.append(part)
            self.kept += len(part)

    @property
    def data(self) -> bytes:
        """The kept bytes."""
        return b"".join(self._chunks)

    @property
    def digest(self) -> str | None:
        """``"hmac:<key id>:<hex HMAC-SHA256>"`` of every byte fed so far, or ``None``."""
        if self._mac is None:
            return None
        return f"hmac:{self._key_id}:{self._mac.hexdigest()}"


def _content_type(headers: RawHeaders | None) -> str:
    for name, value in headers or ():
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return ""


def describe_body(
    data: bytes, size: int, content_type: str, digest: str | None, limit: int
) -> dict[str, Any]:
    """Build the event's ``body`` object.

    Args:
        data: the captured bytes (at most the capture cap).
        size: the original size of the whole body.
        content_type: its ``Content-Type``.
        digest: the keyed digest of the whole body (:attr:`BodyCapture.digest`), or
            ``None`` when no key is configured.
        limit: the cap for this event (may be below the capture cap).

    Returns:
        ``{content_type, size, json | form | hmac | content: "omitted", truncated?}``.
        JSON and form bodies carry no digest, even when cut at the cap: they are
        recorded redacted or not at all.  Other bodies carry the keyed ``hmac``, or
        ``"content": "omitted"``; never an unkeyed hash, which would let anyone
        confirm a guess of a credential sent as, say, ``text/plain``.

    .. versionadded:: 0.1.0
    """
    media = content_type.split(";", 1)[0].strip().lower()
    body: dict[str, Any] = {"content_type": content_type[:128], "size": size}
    structured = media == "application/json" or media.endswith("+json")
    form = media == "application/x-www-form-urlencoded"
    if size > limit or len(data) < size:
        body["truncated"] = True
    elif structured:
        try:
            body["json"] = _json(data)
        except orjson.JSONDecodeError:
            pass  # recorded as size and type only
    elif form:
        try:
            body["form"] = _form(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    if not (structured or form):
        if digest is not None:
            body["hmac"] = digest
        else:
            body["content"] = OMITTED
    return body


#: A run of 19 digits: the shortest integer literal beyond 64 bits (``-9223372036854775809``).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _json(data: bytes) -> Any:
    """Parse a JSON body; integers beyond 64 bits keep their exact value.

    orjson reads an integer literal beyond 64 bits as a float, which would store a
    rounded number as if the client had sent it.  A body with such a literal (19 digits
    in a row or more) is parsed again by the standard library, which keeps integers
    exact; ``sanitize`` then stores them as decimal strings and lists them in
    ``truncated``.  orjson decides whether the body is valid JSON, so both parsers see
    only what it accepts.
    """
    value = orjson.loads(data)
    if _LONG_NUMBER.search(data) is None:
        return value
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # nested beyond the standard parser's reach
        return value


def _form(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


class BodyRecorder:
    """Decides once per request whether to capture bodies, then captures them.

    A shell creates one per request when ``policy.captures_bodies`` is true, calls
    :meth:`request_chunk` for each request body chunk the app reads,
    :meth:`response_start` and :meth:`response_chunk` as the response goes out,
    and :meth:`finish` before recording the exchange.

    Args:
        policy: the policy (its :meth:`~auditmw.policy.Policy.body_capture` decides).
        exchange: the request being observed.
        locate: called once, when the decision is first needed, to fill in
            ``exchange.route`` (the router has run by then).

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_decided", "_key", "_locate", "exchange", "level", "limit", "policy", "request",
        "response",
    )  # fmt: skip

    def __init__(
        self, policy: Policy, exchange: Exchange, locate: Callable[[], None] | None = None
    ) -> None:
        self.policy = policy
        self.exchange = exchange
        self._locate = locate
        self._decided = False
        self._key: tuple[str, bytes] | None = None
        self.level = "metadata"
        self.limit = 0
        self.request: BodyCapture | None = None
        self.response: BodyCapture | None = None

    def _decide(self) -> None:
        self._decided = True
        if self._locate is not None:
            self._locate()
        self.level, self.limit = self.policy.body_capture(self.exchange)
        self._key = body_key(self.policy)

    def request_chunk(self, chunk: bytes) -> None:
        """Account for a request body chunk read by the app."""
        if not self._decided:
            self._decide()
            if self.level in ("request", "request_response"):
                self.request = BodyCapture(self.limit, self._key)
        if self.request is not None:
            self.request.feed(chunk)

    def response_start(self, headers: RawHeaders | None) -> None:
        """Decide on response capture when the response starts."""
        if not self._decided:
            self._decide()
        if self.level == "request_response":
            self.response = BodyCapture(self.limit, self._key)
            self.exchange.response_headers = headers

    def response_chunk(self, chunk: bytes) -> None:
        """Account for a response body chunk (before it is sent on)."""
        if self.response is not None:
            self.response.feed(chunk)

    def finish(self) -> None:
        """Store what was captured on the exchange."""
        ex = self.exchange
        digests: dict[str, str] = {}
        request, response = self.request, self.response
        if request is not None and request.size:
            ex.request_body, ex.request_body_size = request.data, request.size
            if (digest := request.digest) is not None:
                digests[REQUEST_DIGEST] = digest
        if response is not None:
            ex.response_body, ex.response_body_size = response.data, response.size
            if (digest := response.digest) is not None:
                digests[RESPONSE_DIGEST] = digest
        if digests:
            ex.extra = {**(ex.extra or {}), **digests}


def raw_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Turn WSGI ``start_response`` headers into the raw pairs ``response_start`` takes."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def request_body(exchange: Exchange, limit: int) -> dict[str, Any]:
    """Build ``request.body`` from what a :class:`BodyRecorder` stored on ``exchange``."""
    content_type = exchange.headers.get("content-type") or ""
    return describe_body(
        exchange.request_body or b"",
        exchange.request_body_size,
        content_type,
        (exchange.extra or {}).get(REQUEST_DIGEST),
        limit,
    )


def response_body(exchange: Exchange, limit: int) -> dict[str, Any]:
    """Build ``response.body`` from what a :class:`BodyRecorder` stored on ``exchange``."""
    return describe_body(
        exchange.response_body or b"",
        exchange.response_body_size,
        _content_type(exchange.response_headers),
        (exchange.extra or {}).get(RESPONSE_DIGEST),
        limit,
    )
