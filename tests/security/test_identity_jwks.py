"""JWKS against a real local HTTP server: start-up, rotation under traffic, outages."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from auditmw.exceptions import ConfigurationError
from auditmw.identity import JWKSKeyStore, JWTResolver
from tests.security.identity_security_support import (
    JWKSServer,
    KeyPair,
    ec_key,
    jwks_server,
    make_exchange,
    rsa_key,
    rsa_key2,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from auditmw.event import Actor

__all__ = ["ec_key", "jwks_server", "rsa_key", "rsa_key2"]

FAST = {"retry_interval": 0.05, "min_refresh_interval": 0.05, "timeout": 2.0}


def token_for(pair: KeyPair, kid: str | None, sub: str = "u1", alg: str = "RS256") -> str:
    """Sign a token with ``pair`` and header ``kid``."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode({"sub": sub}, pair.private, algorithm=alg, headers=headers)


def resolve(resolver: JWTResolver, token: str) -> Actor:
    """Resolve a bearer token."""
    actor = resolver.resolve(make_exchange({"authorization": f"Bearer {token}"}))
    assert actor is not None
    return actor


@pytest.fixture
def stores() -> Iterator[list[JWKSKeyStore]]:
    """Collects stores to close after the test."""
    created: list[JWKSKeyStore] = []
    yield created
    for store in created:
        store.close()


def make_store(stores: list[JWKSKeyStore], url: str, **kwargs: Any) -> JWKSKeyStore:
    """Create a fast-retrying store that is closed after the test."""
    store = JWKSKeyStore(url, **{**FAST, **kwargs})
    stores.append(store)
    return store


class TestStartup:
    def test_keys_fetched_at_start(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """The resolver starts the store; once fetched, tokens with a known kid verify."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url)
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        assert store.wait_until_ready(5)
        actor = resolve(resolver, token_for(rsa_key, "k1"))
        assert (actor.id, actor.auth.key_id, actor.auth.verified) == ("u1", "k1", True)
        assert store.status.key_ids == ("k1",)

    def test_resolver_owns_a_store_built_from_a_url(
        self, jwks_server: JWKSServer, rsa_key: KeyPair
    ) -> None:
        """jwks='https://…' builds, starts and (on close) stops the resolver's own store."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        resolver = JWTResolver(algorithms=["RS256"], jwks=jwks_server.url)
        try:
            assert jwks_server.fetched.wait(5)
            assert wait_for(lambda: resolve(resolver, token_for(rsa_key, "k1")).id == "u1")
        finally:
            resolver.close()

    def test_endpoint_down_at_startup_then_back(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """While the endpoint is down tokens are unknown_key; the store retries and recovers."""
        jwks_server.status = 503
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url)
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        assert wait_for(lambda: store.status.failures >= 2)
        token = token_for(rsa_key, "k1")
        assert resolve(resolver, token).auth.error == "unknown_key"
        assert store.status.last_error == "HTTPStatusError: HTTP 503"
        jwks_server.status = 200
        assert store.wait_until_ready(5)
        assert wait_for(lambda: resolve(resolver, token).auth.error is None)
        assert store.status.consecutive_failures == 0
        assert store.status.fetches >= 1

    def test_connection_refused_is_recorded(
        self, stores: list[JWKSKeyStore], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A closed port counts as a failure with a log line, never an exception."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="auditmw.identity"):
            store = make_store(stores, f"http://127.0.0.1:{port}/jwks")
            assert store.refresh() is False
        assert store.status.failures == 1
        assert store.status.last_error == "ConnectError: request failed"
        assert "JWKS fetch" in caplog.text


class TestOutages:
    def test_hanging_endpoint_never_blocks_a_request(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """While the JWKS fetch hangs, resolve() returns unknown_key instead of waiting."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        jwks_server.gate = gate = threading.Event()
        released: list[bool] = []

        def release() -> None:
            released.append(True)
            gate.set()

        watchdog = threading.Timer(10, release)
        watchdog.start()
        try:
            store = make_store(stores, jwks_server.url, timeout=20)
            resolver = JWTResolver(algorithms=["RS256"], jwks=store)
            assert wait_for(lambda: jwks_server.requests >= 1)  # the fetch is in flight, stuck
            actor = resolve(resolver, token_for(rsa_key, "k1"))
            assert released == []  # answered while the provider was still hanging
            assert actor.auth.error == "unknown_key"
        finally:
            gate.set()
            watchdog.cancel()
        assert store.wait_until_ready(5)
        assert resolve(resolver, token_for(rsa_key, "k1", sub="u9")).id == "u9"

    def test_last_good_keys_are_kept(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """A failed refresh keeps serving the last good key set."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url, refresh_interval=3600)
        assert store.refresh() is True
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        jwks_server.status = 500
        assert store.refresh() is False
        jwks_server.status = 200
        jwks_server.document = {"keys": "not a list"}
        assert store.refresh() is False
        assert store.status.failures >= 2  # the resolver's thread may have failed too
        assert store.status.key_ids == ("k1",)
        assert resolve(resolver, token_for(rsa_key, "k1", sub="u2")).id == "u2"

    @pytest.mark.parametrize(
        ("document", "reason"),
        [
            pytest.param(b"<html>", "JWKS document is not JSON", id="html"),
            pytest.param({"nokeys": []}, "JWKS document has no 'keys' list", id="no-keys"),
            pytest.param(
                {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]},
                "JWKS document holds no usable public key",
                id="symmetric-only",
            ),
        ],
    )
    def test_bad_documents(
        self, jwks_server: JWKSServer, stores: list[JWKSKeyStore], document: Any, reason: str
    ) -> None:
        """Unusable documents are failures with a clear reason; symmetric keys are skipped."""
        jwks_server.document = document
        store = make_store(stores, jwks_server.url)
        assert store.refresh() is False
        assert store.status.last_error == f"IdentityError: {reason}"

    def test_oversized_document_is_refused(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """A JWKS larger than max_bytes is not read to the end."""
        jwks_server.document = {"keys": [rsa_key.jwk(f"k{i}") for i in range(50)]}
        store = make_store(stores, jwks_server.url, max_bytes=4096)
        assert store.refresh() is False
        assert store.status.last_error is not None
        assert "larger than 4096" in store.status.last_error

    def test_async_refresh(
        self, jwks_server: JWKSServer, ec_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """arefresh fetches with httpx's async client (for lifespan handlers)."""
        jwks_server.document = {"keys": [ec_key.jwk("e1")]}
        store = make_store(stores, jwks_server.url)
        assert asyncio.run(store.arefresh()) is True
        resolver = JWTResolver(algorithms=["ES256"], jwks=store)
        assert resolve(resolver, token_for(ec_key, "e1", alg="ES256")).auth.error is None

    def test_credentials_in_url_are_not_shown(self, stores: list[JWKSKeyStore]) -> None:
        """A URL with user:password and a query is shown without them."""
        store = make_store(stores, "https://user:hunter2@idp.example/jwks?token=abc")
        assert "hunter2" not in repr(store)
        assert "abc" not in repr(store)
        assert store.status.url == "https://idp.example/jwks"

    def test_bad_url_is_a_configuration_error(self) -> None:
        """Only http(s) URLs are accepted."""
        with pytest.raises(ConfigurationError) as info:
            JWKSKeyStore("file:///etc/passwd")
        assert info.value.setting == "jwks_url"


class TestRotation:
    def test_unknown_kid_triggers_one_refresh(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, rsa_key2: KeyPair,
        stores: list[JWKSKeyStore],
    ) -> None:  # fmt: skip
        """A new kid is unknown_key once, refreshes in the background, then verifies."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url, refresh_interval=3600)
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        assert store.wait_until_ready(5)
        old_token, new_token = token_for(rsa_key, "k1"), token_for(rsa_key2, "k2", sub="u2")
        assert resolve(resolver, old_token).auth.error is None
        jwks_server.document = {"keys": [rsa_key2.jwk("k2")]}
        assert resolve(resolver, new_token).auth.error == "unknown_key"
        assert wait_for(lambda: store.status.key_ids == ("k2",))
        assert resolve(resolver, new_token).id == "u2"
        # The old key left the set: its cached token is dropped, not served from cache.
        assert resolve(resolver, old_token).auth.error == "unknown_key"

    def test_kid_miss_refreshes_are_rate_limited(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """A flood of unknown kids causes at most one extra fetch per interval."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url, refresh_interval=3600, min_refresh_interval=60)
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        assert store.wait_until_ready(5)
        for i in range(200):
            assert resolve(resolver, token_for(rsa_key, f"x{i}")).auth.error == "unknown_key"
        assert wait_for(lambda: jwks_server.requests >= 2)
        assert jwks_server.requests == 2

    def test_rotation_during_traffic(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, rsa_key2: KeyPair,
        stores: list[JWKSKeyStore],
    ) -> None:  # fmt: skip
        """Threads resolving while keys rotate see only valid actors or unknown_key."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url, refresh_interval=3600)
        resolver = JWTResolver(algorithms=["RS256"], jwks=store, cache_size=8)
        assert store.wait_until_ready(5)
        tokens = [token_for(rsa_key, "k1", sub=f"a{i}") for i in range(20)]
        tokens += [token_for(rsa_key2, "k2", sub=f"b{i}") for i in range(20)]
        seen: set[str | None] = set()
        errors: list[BaseException] = []
        stop = threading.Event()

        def traffic() -> None:
            try:
                while not stop.is_set():
                    for token in tokens:
                        seen.add(resolve(resolver, token).auth.error)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=traffic) for _ in range(4)]
        for worker in workers:
            worker.start()
        jwks_server.document = {"keys": [rsa_key.jwk("k1"), rsa_key2.jwk("k2")]}
        assert wait_for(lambda: store.status.key_ids == ("k1", "k2"))
        assert wait_for(lambda: resolve(resolver, tokens[-1]).auth.error is None)
        stop.set()
        for worker in workers:
            worker.join()
        assert errors == []
        assert seen <= {None, "unknown_key"}
        assert all(resolve(resolver, token).auth.error is None for token in tokens)

    def test_pinned_jwk_algorithm_is_enforced(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """A JWK with alg RS256 does not verify a PS256 token signed by the same key."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1", alg="RS256")]}
        store = make_store(stores, jwks_server.url)
        assert store.refresh() is True
        resolver = JWTResolver(algorithms=["RS256", "PS256"], jwks=store)
        token = token_for(rsa_key, "k1", alg="PS256")
        assert resolve(resolver, token).auth.error == "algorithm_not_allowed"
        assert resolve(resolver, token_for(rsa_key, "k1")).auth.error is None

    def test_token_without_kid_uses_the_only_key(
        self, jwks_server: JWKSServer, rsa_key: KeyPair, stores: list[JWKSKeyStore]
    ) -> None:
        """A token without kid is tried against the held keys of its family."""
        jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
        store = make_store(stores, jwks_server.url)
        assert store.refresh() is True
        resolver = JWTResolver(algorithms=["RS256"], jwks=store)
        assert resolve(resolver, token_for(rsa_key, None)).id == "u1"
