"""No token, key or secret in any repr, log line, exception message or actor."""

from __future__ import annotations

import logging

import jwt
import pytest

from auditmw.canonical import dumps
from auditmw.exceptions import ConfigurationError
from auditmw.identity import (
    APIKeyRegistry,
    APIKeyResolver,
    JWTResolver,
    StaticKeys,
    hash_key,
)
from tests.security.identity_security_support import KeyPair, make_exchange, rsa_key

__all__ = ["rsa_key"]

HS_CANARY = b"CANARY-hs-secret-" + b"z" * 60
API_SECRET = b"CANARY-api-secret-0123456789"
API_KEY = "CANARY-api-key-9f8e7d6c"


def secret_fragments(rsa_key: KeyPair) -> list[str]:
    """Substrings that must never be shown."""
    pem_body = rsa_key.public_pem.decode().splitlines()[2]
    return ["CANARY", pem_body, hash_key(API_SECRET, API_KEY.encode())[12:]]


class TestReprs:
    def test_reprs_hide_secrets(self, rsa_key: KeyPair) -> None:
        """Resolver and key reprs show configuration, never key material."""
        registry = APIKeyRegistry(
            API_SECRET, [{"key_id": "k", "hash": hash_key(API_SECRET, API_KEY.encode())}]
        )
        objects = [
            JWTResolver(algorithms=["HS256"], secret=HS_CANARY, issuer="https://idp/"),
            JWTResolver(algorithms=["RS256"], public_keys={"k1": rsa_key.public_pem}),
            StaticKeys(HS_CANARY),
            registry,
            APIKeyResolver(registry),
        ]
        text = "\n".join(repr(obj) for obj in objects)
        for fragment in secret_fragments(rsa_key):
            assert fragment not in text
        assert "secret=<hidden>" in text
        assert "https://idp/" in text


class TestExceptionsAndLogs:
    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param(
                {"algorithms": ["HS512"], "secret": b"CANARY-short", "min_secret_bytes": 64},
                id="short-secret",
            ),
            pytest.param(
                {"algorithms": ["RS256"], "public_keys": ["CANARY-not-a-pem"]}, id="bad-pem"
            ),
            pytest.param({"algorithms": ["RS256"], "secret": HS_CANARY}, id="secret-for-rs"),
        ],
    )
    def test_configuration_errors_do_not_quote_secrets(self, kwargs: dict[str, object]) -> None:
        """Configuration errors, and their causes' messages, never contain the secret."""
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(**kwargs)  # type: ignore[arg-type]
        assert "CANARY" not in str(info.value)

    def test_failed_resolutions_log_no_token(
        self, rsa_key: KeyPair, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Resolving good and hostile credentials logs no token, key or secret."""
        hs = JWTResolver(algorithms=["HS256"], secret=HS_CANARY)
        rs = JWTResolver(algorithms=["RS256"], public_keys=[rsa_key.public_pem])
        registry = APIKeyRegistry(
            API_SECRET, [{"key_id": "k", "hash": hash_key(API_SECRET, API_KEY.encode())}]
        )
        keys = APIKeyResolver(registry)
        good = jwt.encode({"sub": "u", "jti": "x"}, HS_CANARY, algorithm="HS256")
        tokens = [good, good[:-3] + "abc", "CANARY.CANARY.CANARY", good.replace(".", "..")]
        tokens.append(jwt.encode({"sub": "u", "exp": 1}, HS_CANARY, algorithm="HS256"))
        actors = []
        with caplog.at_level(logging.DEBUG):
            for token in tokens:
                for resolver in (hs, rs):
                    actors.append(
                        resolver.resolve(make_exchange({"authorization": f"Bearer {token}"}))
                    )
            for key in (API_KEY, "CANARY-guess", ""):
                actors.append(keys.resolve(make_exchange({"x-api-key": key})))
        emitted = caplog.text + "".join(dumps(a.to_dict()).decode() for a in actors if a)
        for fragment in [
            *secret_fragments(rsa_key),
            API_KEY,
            *(t.split(".")[-1] for t in tokens if t.count(".") == 2 and len(t) > 40),
        ]:
            assert fragment not in emitted
