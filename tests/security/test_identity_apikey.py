"""API keys under attack: unknown, empty, huge and odd keys, all recorded as data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from auditmw.identity import APIKeyRegistry, APIKeyResolver, hash_key
from tests.security.identity_security_support import make_exchange

if TYPE_CHECKING:
    from auditmw.event import Actor

SECRET = b"server-secret-0123456789"
KEY = "k_live_abcdef0123456789"


class CountingRegistry(APIKeyRegistry):
    """A real registry that records the length of every key it hashes."""

    hashed: list[int]

    def match(self, key: bytes) -> Actor | None:
        """Record the key length, then match for real."""
        self.hashed.append(len(key))
        return super().match(key)


@pytest.fixture
def registry() -> CountingRegistry:
    """A registry with one key."""
    registry = CountingRegistry(
        SECRET, [{"key_id": "ci", "hash": hash_key(SECRET, KEY.encode()), "principal": {}}]
    )
    registry.hashed = []
    return registry


CASES = [
    pytest.param([(b"x-api-key", KEY.encode())], None, "ci", id="valid"),
    pytest.param([(b"x-api-key", b"  " + KEY.encode() + b"\t")], None, "ci", id="padded"),
    pytest.param([(b"X-Api-Key", KEY.encode())], None, "ci", id="header-case"),
    pytest.param([(b"x-api-key", b"guess-1")], "unknown_key", "fp:", id="unknown"),
    pytest.param([(b"x-api-key", KEY.encode()[:-1])], "unknown_key", "fp:", id="prefix-of-key"),
    pytest.param([(b"x-api-key", KEY.encode() + b"x")], "unknown_key", "fp:", id="key-plus-one"),
    pytest.param([(b"x-api-key", b"")], "malformed", None, id="empty"),
    pytest.param([(b"x-api-key", b"   ")], "malformed", None, id="blank"),
    pytest.param([(b"x-api-key", b"k" * 4097)], "malformed", None, id="over-4-kib"),
    pytest.param([(b"x-api-key", b"k" * (8 << 20))], "malformed", None, id="8-mib"),
    pytest.param([(b"x-api-key", b"\xff\x00\xfe\r\n")], "unknown_key", "fp:", id="binary"),
]


class TestAPIKeyAttempts:
    @pytest.mark.parametrize(("headers", "error", "key_id"), CASES)
    def test_attempt(
        self, registry: CountingRegistry, headers: list[tuple[bytes, bytes]], error: str | None,
        key_id: str | None,
    ) -> None:  # fmt: skip
        """Every attempt yields an actor whose auth says what happened, never the key."""
        actor = APIKeyResolver(registry).resolve(make_exchange(headers))
        assert actor is not None
        assert actor.auth.method == "api_key"
        assert actor.auth.error == error
        assert actor.auth.verified is (error is None)
        if key_id is None:
            assert actor.auth.key_id is None
        else:
            assert actor.auth.key_id is not None
            assert actor.auth.key_id.startswith(key_id)
        assert actor.type == ("api_key" if error is None else "anonymous")
        sent = headers[0][1].strip()
        if sent and len(sent) > 8:
            assert sent.decode("latin-1") not in repr(actor.to_dict())

    def test_huge_keys_are_not_hashed(self, registry: CountingRegistry) -> None:
        """A key over the cap is refused before any hashing."""
        resolver = APIKeyResolver(registry, query_param="api_key")
        resolver.resolve(make_exchange([(b"x-api-key", b"k" * (8 << 20))]))
        resolver.resolve(make_exchange({}, query="api_key=" + "k" * (1 << 20)))
        assert registry.hashed == []

    def test_huge_query_key_is_malformed(self, registry: CountingRegistry) -> None:
        """An oversized key in the query string is malformed too."""
        resolver = APIKeyResolver(registry, header=None, query_param="api_key")
        actor = resolver.resolve(make_exchange({}, query="api_key=" + "%41" * 5000))
        assert actor is not None
        assert actor.auth.error == "malformed"
        assert registry.hashed == []

    def test_repeated_attempts_correlate(self, registry: CountingRegistry) -> None:
        """The same unknown key gets the same fingerprint; a different one does not."""
        resolver = APIKeyResolver(registry)

        def fingerprint(key: bytes) -> str | None:
            actor = resolver.resolve(make_exchange([(b"x-api-key", key)]))
            assert actor is not None
            return actor.auth.key_id

        assert fingerprint(b"attacker-1") == fingerprint(b"attacker-1")
        assert fingerprint(b"attacker-1") != fingerprint(b"attacker-2")
