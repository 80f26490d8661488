"""JWT bearer tokens: verified identity from ``Authorization: Bearer …`` or a cookie.

Trust: a token is trusted only when its signature verifies with the configured secret,
PEM public keys or JWKS, with an algorithm from the explicit ``algorithms`` allow-list
(``none`` is always refused, HS* never mixes with asymmetric keys, so an HS token signed
with a public key cannot pass), and when ``exp``/``nbf``/``iat`` (and ``aud``/``iss``
when configured) check out.  ``verify=False`` trusts the token blindly and is only for
apps behind a gateway that has already verified it; the actor then says
``auth.verified = false``.  Any failure yields an anonymous actor whose ``auth.error``
names the reason; issuer and key id of a failed token are attacker-controlled and are
recorded only cleaned and capped.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Final

import jwt
import orjson
from jwt.algorithms import HMACAlgorithm

from auditmw.core.event import Actor, AuthInfo
from auditmw.exceptions import ConfigurationError
from auditmw.identity._cache import TokenCache, digest
from auditmw.identity._claims import ClaimsMapping, clean_text
from auditmw.identity._keysets import (
    GENERATE_HINT,
    InsecureKeyWarning,
    StaticKeys,
    algorithm_family,
    check_algorithms,
    check_keys,
    check_limits,
)
from auditmw.identity.keys import JWKSKeyStore

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from auditmw.core.event import Exchange

__all__ = ["ClaimsMapping", "InsecureKeyWarning", "JWTResolver"]

logger = logging.getLogger("auditmw.identity")

#: pyjwt exceptions → ``auth.error``, most specific first (subclasses precede bases).
_ERRORS: Final = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "invalid_audience"),
    (jwt.InvalidIssuerError, "invalid_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "invalid_signature"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.InvalidKeyError, "invalid_signature"),
)
_MAX_HINT: Final = 128
_HMAC_HASHES: Final = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}


class _AcceptedHMAC(HMACAlgorithm):
    """HMAC whose short key was accepted (and warned about) when the resolver was built."""

    def check_key_length(self, key: bytes) -> str | None:
        return None


def _accepting_decoder(algorithms: Sequence[str]) -> Callable[..., dict[str, Any]]:
    decoder = jwt.PyJWT()
    jws = decoder._jws
    for alg in algorithms:
        jws.unregister_algorithm(alg)
        jws.register_algorithm(alg, _AcceptedHMAC(_HMAC_HASHES[alg]))
    decode: Callable[..., dict[str, Any]] = decoder.decode
    return decode


class JWTResolver:
    """Resolves a JWT bearer token (header or cookie) into a verified actor.

    Args:
        algorithms: the allowed ``alg`` values, e.g. ``["RS256"]``; required.
        secret: the shared secret for HS256/384/512.  RFC 7518 §3.2 asks for at least
            the hash size (32 bytes for HS256); a shorter one is accepted, as pyjwt
            does, with one :class:`InsecureKeyWarning`, and stated in ``audit.started``
            and by ``auditmw audit-ready``.
        public_keys: PEM public keys for RS*/PS*/ES*/EdDSA, a list or a ``{kid: pem}`` map.
        jwks: a JWKS URL, or a shared :class:`~auditmw.identity.keys.JWKSKeyStore`.
        audience: accepted ``aud`` value(s); checked only when set.
        issuer: the accepted ``iss`` value(s); checked only when set.
        leeway: seconds of clock skew allowed for ``exp``, ``nbf`` and ``iat``.
        required_claims: claims that must be present (``missing_claim`` otherwise).
        claims: how claims map to actor fields.
        header: the request header holding the token.
        scheme: the auth scheme before the token (``""`` for a bare header value).
        cookie: a cookie holding the token, read when the header is absent.
        verify: ``False`` skips signature checks (a gateway verified); logged at start-up.
        cache_size: verified tokens kept (LRU); ``0`` disables the cache.
        cache_ttl: longest time in seconds a verified token is served from the cache.
        failure_ttl: seconds a failed token's result is cached (``unknown_key`` never is).
        max_token_bytes: longer tokens are ``malformed`` without being parsed.
        min_secret_bytes: refuse an HS* ``secret`` shorter than this (e.g. ``32``);
            by default a short secret is accepted with a warning.

    Raises:
        ConfigurationError: the algorithms, keys or limits are inconsistent, or the
            secret is shorter than ``min_secret_bytes``; the message names the setting.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Short HS* secrets are accepted with :class:`InsecureKeyWarning`;
       ``min_secret_bytes`` refuses them.
    """

    def __init__(
        self,
        *,
        algorithms: Sequence[str],
        secret: str | bytes | None = None,
        public_keys: Sequence[str | bytes] | Mapping[str, str | bytes] | None = None,
        jwks: str | JWKSKeyStore | None = None,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: int = 0,
        required_claims: Sequence[str] = (),
        claims: ClaimsMapping | None = None,
        header: str = "authorization",
        scheme: str = "Bearer",
        cookie: str | None = None,
        verify: bool = True,
        cache_size: int = 4096,
        cache_ttl: int = 300,
        failure_ttl: int = 5,
        max_token_bytes: int = 8192,
        min_secret_bytes: int | None = None,
    ) -> None:
        self._algorithms = check_algorithms(algorithms)
        check_limits(leeway=leeway, cache_size=cache_size, cache_ttl=cache_ttl,
                      failure_ttl=failure_ttl, max_token_bytes=max_token_bytes)  # fmt: skip
        if min_secret_bytes is not None and min_secret_bytes < 1:
            raise ConfigurationError(
                f"min_secret_bytes must be a positive number of bytes, got {min_secret_bytes}",
                setting="min_secret_bytes",
            )
        if jwks is not None and public_keys is not None:
            raise ConfigurationError(
                "set either jwks or public_keys, not both (one resolver per key source)",
                setting="public_keys",
            )
        self._verify = verify
        self._owns_store = isinstance(jwks, str)
        self._store = JWKSKeyStore(jwks) if isinstance(jwks, str) else jwks
        self._static = StaticKeys(secret, public_keys)
        self._weaknesses: tuple[dict[str, Any], ...] = ()
        self._jwt_decode: Callable[..., dict[str, Any]] = jwt.decode
        if verify:
            need = check_keys(self._algorithms, self._static, self._store, min_secret_bytes)
            if need is not None:
                self._accept_short_secret(need)
        else:
            logger.warning(
                "auditmw: JWTResolver(verify=False): JWT signatures are NOT verified; "
                "actors will carry auth.verified=false. Use only behind a verifying gateway."
            )
        self._keys = self._store if self._store is not None else self._static
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._options: dict[str, Any] = {
            "verify_signature": verify,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_aud": audience is not None,
            "verify_iss": issuer is not None,
            "require": list(required_claims),
            "enforce_minimum_key_length": True,
        }
        self._build = (claims or ClaimsMapping()).compile()
        self._header = header.lower()
        self._scheme = scheme.lower()
        self._cookie = cookie
        self._cache = TokenCache(cache_size)
        self._failures = TokenCache(min(cache_size, 1024))
        self._cache_ttl = cache_ttl
        self._failure_ttl = failure_ttl
        self._max_token = max_token_bytes
        if self._store is not None:
            self._store.add_listener(self._cache.clear)
            self._store.start()

    def _accept_short_secret(self, need: int) -> None:
        size = len(self._static.secret or b"")
        hs = sorted(alg for alg in self._algorithms if algorithm_family(alg) == "HS")
        self._weaknesses = (
            {
                "kind": "short_hmac_secret",
                "resolver": "JWTResolver",
                "algorithms": hs,
                "secret_bytes": size,
                "recommended_bytes": need,
            },
        )
        warnings.warn(
            f"JWTResolver: the {'/'.join(hs)} secret is {size} bytes, below the {need} "
            "bytes RFC 7518 §3.2 asks for; tokens signed with it can be forged by "
            f"guessing it. Use a longer secret ({GENERATE_HINT}), or pass "
            "min_secret_bytes=32 to refuse short secrets.",
            InsecureKeyWarning,
            stacklevel=3,
        )
        # Warned once, here: pyjwt would otherwise warn again on every token decoded.
        self._jwt_decode = _accepting_decoder(hs)

    @property
    def weaknesses(self) -> tuple[dict[str, Any], ...]:
        """Known weaknesses of this configuration (e.g. a short secret), for ``audit.started``.

        .. versionadded:: 0.2.0
        """
        return self._weaknesses

    @property
    def key_store(self) -> JWKSKeyStore | None:
        """The JWKS key store, when keys come from a JWKS URL (for health monitoring)."""
        return self._store

    def close(self) -> None:
        """Stop the JWKS thread this resolver started (a shared store is left running)."""
        if self._owns_store and self._store is not None:
            self._store.close()

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return the token's actor, an anonymous actor with ``auth.error``, or ``None``."""
        token = self._extract(exchange)
        if token is None:
            return None
        if not token or len(token) > self._max_token:
            return _failure("malformed")
        key = digest(token)
        # Judged at the instant the token was presented (the request's start), not
        # when a long stream ends; and it saves a clock read.
        now = exchange.start_ns / 1e9 if exchange.start_ns else time.time()
        actor = self._cache.get(key, now)
        if actor is not None:
            return actor
        actor = self._failures.get(key, now)
        if actor is not None:
            return actor
        actor, expires = self._decode(token, now)
        if actor.auth.error is None:
            self._cache.put(key, actor, expires)
        elif actor.auth.error != "unknown_key":
            self._failures.put(key, actor, now + self._failure_ttl)
        return actor

    def _extract(self, exchange: Exchange) -> str | None:
        value = exchange.headers.get(self._header)
        if value is not None:
            if not self._scheme:
                return value.strip()
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == self._scheme:
                return token.strip()
        if self._cookie is not None:
            return _cookie_value(exchange.headers.get("cookie"), self._cookie)
        return None

    def _decode(self, token: str, now: float) -> tuple[Actor, float]:
        header, payload = _peek(token)
        if header is None or payload is None:
            return _failure("malformed"), now
        alg = header.get("alg")
        kid = clean_text(header.get("kid"), _MAX_HINT)
        issuer = clean_text(payload.get("iss"), _MAX_HINT)
        if not isinstance(alg, str) or alg not in self._algorithms:
            return _failure("algorithm_not_allowed", issuer, kid), now
        try:
            claims = self._verified_claims(token, alg, kid)
        except jwt.PyJWTError as exc:
            return _failure(_reason(exc), issuer, kid), now
        except Exception as exc:  # a resolver never raises; record it as a bad token
            logger.debug("auditmw: unexpected %s while decoding a JWT", type(exc).__name__)
            return _failure("malformed", issuer, kid), now
        if claims is None:
            return _failure("unknown_key", issuer, kid), now
        auth = AuthInfo(method="jwt", verified=self._verify, issuer=issuer, key_id=kid)
        return self._build(claims, auth), self._cache_until(claims, now)

    def _cache_until(self, claims: dict[str, Any], now: float) -> float:
        if "exp" not in claims:
            return now + self._cache_ttl
        try:
            # Read exp exactly as pyjwt did (it accepts floats and numeric strings via
            # int()), so the cache never outlives what a fresh verification would accept.
            exp = int(claims["exp"])
        except (TypeError, ValueError, OverflowError):
            return now  # pyjwt accepted what we cannot read: do not cache
        return min(now + self._cache_ttl, exp + self._leeway)

    def _verified_claims(self, token: str, alg: str, kid: str | None) -> dict[str, Any] | None:
        if not self._verify:
            return self._decode_with(token, alg, b"")
        entries = self._keys.candidates(kid)
        if not entries:
            return None
        family = algorithm_family(alg)
        keys = [key for key, kind, pinned in entries if kind == family and pinned in (None, alg)]
        if not keys:  # the key for this kid is of another type or pins another algorithm
            raise jwt.InvalidAlgorithmError(alg)
        for index, key in enumerate(keys):
            try:
                return self._decode_with(token, alg, key)
            except jwt.InvalidSignatureError:
                if index == len(keys) - 1:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def _decode_with(self, token: str, alg: str, key: Any) -> dict[str, Any]:
        claims: dict[str, Any] = self._jwt_decode(
            token,
            key=key,
            algorithms=[alg],
            options=self._options,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
        )
        return claims

    def __repr__(self) -> str:
        source = self._store if self._store is not None else self._static
        return (
            f"JWTResolver(algorithms={sorted(self._algorithms)}, keys={source!r}, "
            f"issuer={self._issuer!r}, audience={self._audience!r}, verify={self._verify})"
        )


def _reason(exc: Exception) -> str:
    for kind, reason in _ERRORS:
        if isinstance(exc, kind):
            return reason
    return "malformed"


def _failure(error: str, issuer: str | None = None, kid: str | None = None) -> Actor:
    return Actor(
        auth=AuthInfo(method="jwt", verified=False, issuer=issuer, key_id=kid, error=error)
    )


def _b64json(segment: str) -> Any:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return orjson.loads(raw)


def _peek(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Decode header and payload without verifying anything (for routing and hints)."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        return None, None
    try:
        header = _b64json(parts[0])
        payload = _b64json(parts[1])
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    return header, payload if isinstance(payload, dict) else None


def _cookie_value(cookie_header: str | None, name: str) -> str | None:
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None
