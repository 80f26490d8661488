"""API keys: verified identity from a header or query parameter, matched by keyed hash.

Trust: a key is trusted when its HMAC-SHA256 under the server secret equals a digest in
the registry.  The registry stores only those digests, never keys, so a leaked registry
does not leak keys (without the secret it cannot even be brute-forced offline).  The
lookup is a dict lookup by digest (its timing depends on the digest, not on how much of
a key matches) confirmed with :func:`hmac.compare_digest`.  An unknown key is recorded
by a short keyed fingerprint so repeated attempts correlate; the key itself never
reaches an event, a log line or an exception.  Do not use API keys sent in query
parameters where URLs are logged elsewhere (proxies, browsers).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import unquote_to_bytes

from auditmw.core.event import Actor, ActorType, AuthInfo
from auditmw.exceptions import ConfigurationError
from auditmw.identity._claims import clean_text

if TYPE_CHECKING:
    from auditmw.core.event import Exchange

__all__ = ["APIKeyEntry", "APIKeyRegistry", "APIKeyResolver", "hash_key"]

HASH_PREFIX: Final = "hmac-sha256:"
MIN_SECRET_BYTES: Final = 16
_FINGERPRINT_LABEL: Final = b"auditmw/v1/apikey-fingerprint"
_ACTOR_TYPES: Final = ("user", "service", "api_key")


def hash_key(secret: bytes, key: bytes) -> str:
    """Return the stored form of ``key``: ``"hmac-sha256:" + hex(HMAC-SHA256(secret, key))``.

    Args:
        secret: the server secret.
        key: the API key's bytes.

    .. versionadded:: 0.1.0
    """
    return HASH_PREFIX + hmac.new(secret, key, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class APIKeyEntry:
    """One registry entry: a key id, the key's keyed hash, and the principal it stands for.

    Args:
        key_id: a public, stable name for the key (recorded as ``auth.key_id``).
        hash: ``"hmac-sha256:<64 hex>"`` as printed by ``auditmw apikey hash``.
        principal: ``id``, ``name``, ``roles``, ``tenant_id`` and ``type`` of the owner.

    .. versionadded:: 0.1.0
    """

    key_id: str
    hash: str
    principal: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"APIKeyEntry(key_id={self.key_id!r})"


class APIKeyRegistry:
    """The known API keys, as keyed hashes, with the actor each one resolves to.

    Args:
        secret: the server secret keying the hashes (at least 16 bytes).
        entries: the registry entries, as :class:`APIKeyEntry` or their dict form.

    Raises:
        ConfigurationError: the secret is too short or an entry is invalid.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, secret: str | bytes, entries: Sequence[APIKeyEntry | Mapping[str, Any]]
    ) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if len(self._secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"api key secret must be at least {MIN_SECRET_BYTES} bytes", setting="secret"
            )
        fp_key = hmac.new(self._secret, _FINGERPRINT_LABEL, hashlib.sha256).digest()
        self._fingerprint_key = fp_key
        self._actors: dict[bytes, tuple[bytes, Actor]] = {}
        for index, raw in enumerate(entries):
            entry = raw if isinstance(raw, APIKeyEntry) else _entry(raw, index)
            stored = _digest_of(entry, index)
            self._actors[stored] = (stored, _actor(entry))

    @classmethod
    def from_file(cls, path: str | Path, secret: str | bytes) -> APIKeyRegistry:
        """Load a registry from JSON or TOML: ``{"keys": [entry, …]}`` / ``[[keys]]``.

        Raises:
            ConfigurationError: the file cannot be read or parsed, or an entry is invalid.
        """
        path = Path(path)
        try:
            text = path.read_bytes()
            data = tomllib.loads(text.decode()) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"api key registry {path.name!r} could not be read: {type(exc).__name__}",
                setting="api_keys",
            ) from exc
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            raise ConfigurationError("api key registry must hold a 'keys' list", setting="api_keys")
        return cls(secret, keys)

    def __len__(self) -> int:
        return len(self._actors)

    def match(self, key: bytes) -> Actor | None:
        """Return the actor of ``key``, or ``None`` when it is not registered."""
        digest = hmac.new(self._secret, key, hashlib.sha256).digest()
        found = self._actors.get(digest)
        # Confirm against the stored digest in constant time, not only via dict equality.
        if found is not None and hmac.compare_digest(found[0], digest):
            return found[1]
        return None

    def fingerprint(self, key: bytes) -> str:
        """Return ``"fp:"`` + 16 hex digits of a keyed hash of ``key`` (safe to record)."""
        return "fp:" + hmac.new(self._fingerprint_key, key, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"APIKeyRegistry(keys={len(self)}, secret=<hidden>)"


def _entry(raw: Mapping[str, Any], index: int) -> APIKeyEntry:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"api_keys[{index}] must be a table", setting="api_keys")
    key_id, digest, principal = raw.get("key_id"), raw.get("hash"), raw.get("principal", {})
    if not isinstance(key_id, str) or not key_id or not isinstance(principal, Mapping):
        raise ConfigurationError(
            f"api_keys[{index}] needs a 'key_id' string and an optional 'principal' table",
            setting=f"api_keys[{index}]",
        )
    return APIKeyEntry(key_id, digest if isinstance(digest, str) else "", principal)


def _digest_of(entry: APIKeyEntry, index: int) -> bytes:
    hex_digest = entry.hash.removeprefix(HASH_PREFIX)
    try:
        digest = bytes.fromhex(hex_digest)
    except ValueError:
        digest = b""
    if not entry.hash.startswith(HASH_PREFIX) or len(digest) != 32:
        raise ConfigurationError(
            f"api_keys[{index}].hash must be 'hmac-sha256:<64 hex>' "
            "(create it with: auditmw apikey hash)",
            setting=f"api_keys[{index}].hash",
        )
    return digest


def _actor(entry: APIKeyEntry) -> Actor:
    principal = entry.principal
    kind = principal.get("type", "api_key")
    if kind not in _ACTOR_TYPES:
        raise ConfigurationError(
            f"api key {entry.key_id!r}: principal.type must be one of {_ACTOR_TYPES}",
            setting="api_keys.principal.type",
        )
    roles = principal.get("roles", ())
    return Actor(
        id=clean_text(principal.get("id")) or entry.key_id,
        type=cast("ActorType", kind),
        name=clean_text(principal.get("name")),
        roles=tuple(str(role) for role in roles) if isinstance(roles, list | tuple) else (),
        tenant_id=clean_text(principal.get("tenant_id")),
        auth=AuthInfo(method="api_key", verified=True, key_id=entry.key_id),
    )


def _raw_bytes(value: str) -> bytes:
    try:
        # Headers are decoded as Latin-1, so this gives back the bytes sent.
        return value.encode("latin-1")
    except UnicodeEncodeError:
        # A str mapping may hold any character; never map two keys to one ("?").
        return value.encode("utf-8", "surrogatepass")


class APIKeyResolver:
    """Resolves an API key from a header (default ``X-API-Key``) or a query parameter.

    Args:
        registry: the known keys.
        header: the header to read (``None`` to disable).
        query_param: the query parameter to read when the header is absent.
        max_key_bytes: longer values are ``malformed`` and are not hashed.

    Raises:
        ConfigurationError: neither ``header`` nor ``query_param`` is set.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        registry: APIKeyRegistry,
        *,
        header: str | None = "x-api-key",
        query_param: str | None = None,
        max_key_bytes: int = 4096,
    ) -> None:
        if header is None and query_param is None:
            raise ConfigurationError("set header or query_param", setting="header")
        self._registry = registry
        self._header = header.lower() if header else None
        self._query_prefix = f"{query_param}=" if query_param else None
        self._max = max_key_bytes
        self._malformed = Actor(auth=AuthInfo(method="api_key", error="malformed"))

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return the key's actor, an anonymous actor with ``auth.error``, or ``None``."""
        key = self._extract(exchange)
        if key is None:
            return None
        key = key.strip(b" \t")
        if not key or len(key) > self._max:
            return self._malformed
        actor = self._registry.match(key)
        if actor is not None:
            return actor
        return Actor(
            auth=AuthInfo(
                method="api_key", key_id=self._registry.fingerprint(key), error="unknown_key"
            )
        )

    def _extract(self, exchange: Exchange) -> bytes | None:
        if self._header is not None:
            value = exchange.headers.get(self._header)
            if value is not None:
                return _raw_bytes(value[: self._max + 1])
        if self._query_prefix is not None and exchange.query:
            for part in exchange.query.split("&"):
                if part.startswith(self._query_prefix):
                    raw = part[len(self._query_prefix) :]
                    # Percent-encoding triples the length at most: cap before decoding.
                    return unquote_to_bytes(raw[: 3 * (self._max + 1)])
        return None

    def __repr__(self) -> str:
        return f"APIKeyResolver(header={self._header!r}, registry={self._registry!r})"
