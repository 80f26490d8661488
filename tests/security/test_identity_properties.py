"""Property: for arbitrary header bytes, every resolver returns an actor or None, never raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw.canonical import dumps
from auditmw.event import Actor, Exchange
from auditmw.identity import (
    APIKeyRegistry,
    APIKeyResolver,
    FrameworkUserResolver,
    JWKSKeyStore,
    JWTResolver,
    hash_key,
)
from tests.security.identity_security_support import (
    HS_SECRET,
    JWKSServer,
    KeyPair,
    make_exchange,
    rsa_key,
)

if TYPE_CHECKING:
    from auditmw.types import Resolver

__all__ = ["rsa_key"]

SECRET = b"server-secret-0123456789"
ERRORS = {
    None, "malformed", "expired", "not_yet_valid", "invalid_signature", "invalid_audience",
    "invalid_issuer", "unknown_key", "algorithm_not_allowed", "missing_claim",
}  # fmt: skip

names = st.sampled_from([b"authorization", b"x-api-key", b"cookie", b"x-token"]) | st.binary(
    max_size=20
)
prefixes = st.sampled_from([b"", b"Bearer ", b"bearer ", b"Basic ", b"session=", b"Bearer eyJ"])
values = st.builds(lambda p, v: p + v, prefixes, st.binary(max_size=600))
headers = st.lists(st.tuples(names, values), max_size=6)


@pytest.fixture(scope="module")
def resolvers(rsa_key: KeyPair) -> Iterator[list[Resolver]]:
    """One resolver of every kind and configuration, JWKS included."""
    registry = APIKeyRegistry(SECRET, [{"key_id": "a", "hash": hash_key(SECRET, b"good-key")}])
    server = JWKSServer()
    server.document = {"keys": [rsa_key.jwk("k1")]}
    store = JWKSKeyStore(server.url, min_refresh_interval=3600)
    assert store.refresh()
    yield [
        JWTResolver(algorithms=["HS256", "HS512"], secret=HS_SECRET, audience="api", issuer="i"),
        JWTResolver(
            algorithms=["RS256", "PS256"], public_keys=[rsa_key.public_pem], cookie="session"
        ),
        JWTResolver(
            algorithms=["RS256", "ES256", "EdDSA"], jwks=store, header="x-token", scheme=""
        ),
        JWTResolver(algorithms=["RS256"], verify=False),
        APIKeyResolver(registry, query_param="api_key"),
        FrameworkUserResolver(),
    ]
    store.close()
    server.close()


def check(resolvers: list[Resolver], exchange: Exchange) -> None:
    """Every resolver returns None or an actor with a known error, serializable as JSON."""
    for resolver in resolvers:
        actor = resolver.resolve(exchange)
        assert actor is None or isinstance(actor, Actor)
        if actor is not None:
            assert actor.auth.error in ERRORS
            dumps(actor.to_dict())


class TestNeverRaises:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=headers, query=st.text(max_size=200))
    def test_arbitrary_headers(
        self, resolvers: list[Resolver], raw: list[tuple[bytes, bytes]], query: str
    ) -> None:
        """Arbitrary raw header bytes and query strings never make a resolver raise."""
        check(resolvers, make_exchange(raw, query=query))

    @settings(max_examples=200, deadline=None)
    @given(
        header=st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "crit", "b64"]),
            st.none()
            | st.booleans()
            | st.integers()
            | st.text(max_size=30)
            | st.lists(st.text(max_size=5), max_size=3),
        ),
        payload=st.dictionaries(
            st.sampled_from(["sub", "exp", "nbf", "iat", "aud", "iss", "roles", "scope", "act"]),
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text(max_size=30)
            | st.lists(st.text(max_size=5), max_size=3),
        ),
    )
    def test_signed_tokens_with_arbitrary_claims(
        self, resolvers: list[Resolver], header: dict[str, object], payload: dict[str, object]
    ) -> None:
        """Validly signed tokens with arbitrary header fields and claim types never raise."""
        try:
            token = jwt.encode(payload, HS_SECRET, algorithm="HS256", headers=header)
        except (jwt.PyJWTError, TypeError, ValueError, NotImplementedError):
            return  # pyjwt refuses to build this one; nothing to resolve
        exchange = make_exchange([(b"authorization", b"Bearer " + token.encode())])
        check(resolvers, exchange)
