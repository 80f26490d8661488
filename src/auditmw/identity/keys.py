"""Key material for JWT verification: static keys and a JWKS key store.

Trust: a :class:`StaticKeys` trusts exactly the secret or PEM public keys it was given.
A :class:`JWKSKeyStore` trusts whatever the configured JWKS URL serves, so that URL must
be your identity provider's, reached over HTTPS (plain ``http`` is accepted for local
tests; do not use it in production).  Keys are fetched by a background thread, never on
the request path: a request only reads the last good key set (a plain dict swap, no
lock, no I/O).  When the endpoint is down the last good set is kept and the failure is
counted in :attr:`JWKSKeyStore.status`.  Do not use JWKS for symmetric (HS*) keys.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from auditmw.core.optional import require
from auditmw.exceptions import ConfigurationError, IdentityError
from auditmw.identity._keysets import KeyEntry, StaticKeys, algorithm_family, key_family

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["JWKSKeyStore", "KeyStoreStatus", "StaticKeys", "algorithm_family"]

logger = logging.getLogger("auditmw.identity")


def safe_url(url: str) -> str:
    """Return ``url`` without credentials, query or fragment, for logs and reprs.

    Args:
        url: any URL.

    .. versionadded:: 0.1.0
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class KeyStoreStatus:
    """A snapshot of a JWKS key store's health, for monitoring and lifecycle events.

    Args:
        url: the JWKS URL without credentials or query.
        key_ids: the ``kid`` of every key currently held.
        fetches: successful fetches so far.
        failures: failed fetches so far.
        consecutive_failures: failed fetches since the last success.
        last_error: the last failure, as ``"<ErrorType>: <reason>"`` (no secrets).
        last_success: wall-clock time of the last successful fetch, or ``None``.

    .. versionadded:: 0.1.0
    """

    url: str
    key_ids: tuple[str, ...]
    fetches: int
    failures: int
    consecutive_failures: int
    last_error: str | None
    last_success: float | None


class JWKSKeyStore:
    """Fetches a JWKS document in a background thread and serves its keys without I/O.

    The thread fetches at :meth:`start` (or on first use), then every
    ``refresh_interval`` seconds; after a failure it retries with exponential backoff
    from ``retry_interval``.  A lookup of an unknown ``kid`` wakes it for one refresh,
    at most once per ``min_refresh_interval``.  Fork-safe: a child process starts its
    own thread on first use.

    Args:
        url: the JWKS URL (``https://…/.well-known/jwks.json``).
        refresh_interval: seconds between scheduled refreshes.
        min_refresh_interval: minimum seconds between refreshes triggered by unknown kids.
        retry_interval: first retry delay after a failed fetch, in seconds.
        timeout: HTTP timeout in seconds.
        max_bytes: largest JWKS document accepted.

    Raises:
        ConfigurationError: ``url`` is not http(s) or an interval is not positive.
        MissingDependencyError: httpx is not installed (``pip install 'auditmw[jwks]'``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str,
        *,
        refresh_interval: float = 300.0,
        min_refresh_interval: float = 30.0,
        retry_interval: float = 5.0,
        timeout: float = 5.0,
        max_bytes: int = 1 << 20,
    ) -> None:
        self._httpx = require("httpx", extra="jwks", feature="JWKS key fetching")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError("jwks_url must be an http(s) URL", setting="jwks_url")
        if min(refresh_interval, min_refresh_interval, retry_interval, timeout) <= 0:
            raise ConfigurationError("JWKS intervals must be positive", setting="jwks")
        self._url = url
        self.url = safe_url(url)
        self._refresh_interval = refresh_interval
        self._min_refresh = min_refresh_interval
        self._retry_interval = retry_interval
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._keys: dict[str | None, list[KeyEntry]] = {}
        self._digest = b""
        self._listeners: list[Callable[[], None]] = []
        self._status = KeyStoreStatus(self.url, (), 0, 0, 0, None, None)
        self._ready = threading.Event()
        self._reset_thread_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_after_fork(ref))

    def _reset_thread_state(self) -> None:
        # Also run in a forked child: locks held by the parent's threads must not be inherited.
        self._lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_kid_refresh = -float("inf")

    @property
    def status(self) -> KeyStoreStatus:
        """The store's health: counters, last error and current key ids."""
        return self._status

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the fetching thread) whenever the key ids change."""
        self._listeners.append(callback)

    def start(self) -> None:
        """Start the background thread (idempotent); the first fetch begins immediately."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="auditmw-jwks", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until a key set was fetched at least once; for start-up code and tests."""
        return self._ready.wait(timeout)

    def candidates(self, kid: str | None) -> list[KeyEntry]:
        """Return the held keys for ``kid`` (all keys when ``None``); never blocks or does I/O.

        An unknown ``kid`` asks the thread for one (rate-limited) refresh.
        """
        if self._thread is None:
            self.start()
        keys = self._keys
        entries = keys.get(kid) if kid is not None else [e for v in keys.values() for e in v]
        if entries is None:
            self.request_refresh()
            return []
        return entries

    def request_refresh(self) -> bool:
        """Wake the thread for a refresh unless one was requested recently; return whether."""
        now = time.monotonic()
        if now - self._last_kid_refresh < self._min_refresh:
            return False
        self._last_kid_refresh = now
        self._wake.set()
        return True

    def refresh(self) -> bool:
        """Fetch the JWKS now (blocking; never call it on the request path)."""
        try:
            with (
                self._httpx.Client(timeout=self._timeout) as client,
                client.stream("GET", self._url, headers=_ACCEPT) as response,
            ):
                response.raise_for_status()
                body = self._read_capped(response.iter_bytes())
            return self._install(body)
        except Exception as exc:
            return self._fail(exc)

    async def arefresh(self) -> bool:
        """Fetch the JWKS now from async code (for example an ASGI lifespan handler)."""
        try:
            async with (
                self._httpx.AsyncClient(timeout=self._timeout) as client,
                client.stream("GET", self._url, headers=_ACCEPT) as response,
            ):
                response.raise_for_status()
                chunks = [chunk async for chunk in response.aiter_bytes()]
            return self._install(self._read_capped(chunks))
        except Exception as exc:
            return self._fail(exc)

    def _read_capped(self, chunks: Any) -> bytes:
        body = bytearray()
        for chunk in chunks:
            body += chunk
            if len(body) > self._max_bytes:
                raise IdentityError(f"JWKS document larger than {self._max_bytes} bytes")
        return bytes(body)

    def _install(self, body: bytes) -> bool:
        keys = parse_jwks(body)
        # A reused kid may carry a new key: compare documents, not just ids.
        digest = hashlib.sha256(body).digest()
        ids = tuple(sorted(k for k in keys if k is not None))
        with self._status_lock:
            changed, self._digest = digest != self._digest, digest
            self._keys = keys
            old = self._status
            self._status = KeyStoreStatus(
                self.url, ids, old.fetches + 1, old.failures, 0, old.last_error, time.time()
            )
        self._ready.set()
        if changed:
            for callback in self._listeners:
                callback()
        return True

    def _fail(self, exc: Exception) -> bool:
        reason = f"{type(exc).__name__}: {_describe(exc)}"
        with self._status_lock:
            old = self._status
            self._status = KeyStoreStatus(
                self.url, old.key_ids, old.fetches, old.failures + 1,
                old.consecutive_failures + 1, reason, old.last_success,
            )  # fmt: skip
        logger.warning("auditmw: JWKS fetch from %s failed (%s); keeping %d known keys",
                       self.url, reason, len(old.key_ids))  # fmt: skip
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self.refresh()
            if ok:
                delay = self._refresh_interval
            else:
                backoff = self._retry_interval * 2 ** min(self._status.consecutive_failures - 1, 16)
                delay = min(backoff, self._refresh_interval)
            self._wake.wait(delay)
            self._wake.clear()

    def __repr__(self) -> str:
        return f"JWKSKeyStore(url={self.url!r}, keys={len(self._status.key_ids)})"


_ACCEPT: Final = {"accept": "application/json"}


def _reset_after_fork(ref: weakref.ref[JWKSKeyStore]) -> None:
    store = ref()
    if store is not None:
        store._reset_thread_state()


def _describe(exc: Exception) -> str:
    # httpx messages name the URL (possibly with credentials): describe by kind only.
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, IdentityError):
        return str(exc)
    return "request failed"


def parse_jwks(body: bytes) -> dict[str | None, list[KeyEntry]]:
    """Parse a JWKS document into verification keys grouped by ``kid``.

    Unusable members (unknown ``kty``, private or symmetric keys, RSA keys shorter than
    2048 bits) are skipped.

    Raises:
        IdentityError: the document is not a JWKS or holds no usable key.

    .. versionadded:: 0.1.0
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IdentityError("JWKS document is not JSON") from exc
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise IdentityError("JWKS document has no 'keys' list")
    keys: dict[str | None, list[KeyEntry]] = {}
    for member in members:
        entry = _jwk_entry(member)
        if entry is not None:
            kid = member.get("kid")
            keys.setdefault(kid if isinstance(kid, str) else None, []).append(entry)
    if not keys:
        raise IdentityError("JWKS document holds no usable public key")
    return keys


def _jwk_entry(member: object) -> KeyEntry | None:
    if not isinstance(member, dict) or member.get("use", "sig") != "sig" or "d" in member:
        return None
    try:
        jwk = PyJWK(member)
    except PyJWTError:
        return None
    family = key_family(jwk.key)
    pinned = member.get("alg")
    if family is None or family == "HS":
        return None
    return (jwk.key, family, pinned if isinstance(pinned, str) else None)
