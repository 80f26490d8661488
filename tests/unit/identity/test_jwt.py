"""Unit tests for JWTResolver: configuration, extraction, claims mapping and caching."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from auditmw.exceptions import ConfigurationError
from auditmw.identity import ClaimsMapping, JWTResolver
from tests.unit.identity.identity_support import HS_SECRET, KeyPair, make_exchange

if TYPE_CHECKING:
    from auditmw.event import Actor


def hs_token(claims: dict[str, Any], alg: str = "HS256", **headers: Any) -> str:
    """Sign ``claims`` with the test HMAC secret."""
    return jwt.encode(claims, HS_SECRET, algorithm=alg, headers=headers or None)


def bearer(token: str) -> dict[str, str]:
    """Return an Authorization header carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def resolve(resolver: JWTResolver, token: str) -> Actor:
    """Resolve a bearer token, asserting that the resolver recognised it."""
    actor = resolver.resolve(make_exchange(bearer(token)))
    assert actor is not None
    return actor


@pytest.fixture
def hs() -> JWTResolver:
    """An HS256 resolver with default settings."""
    return JWTResolver(algorithms=["HS256"], secret=HS_SECRET)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "setting"),
        [
            pytest.param({"algorithms": []}, "algorithms", id="empty"),
            pytest.param({"algorithms": "HS256"}, "algorithms", id="string-not-list"),
            pytest.param({"algorithms": ["none"]}, "algorithms", id="none"),
            pytest.param({"algorithms": ["HS256", "NONE"]}, "algorithms", id="none-uppercase"),
            pytest.param({"algorithms": ["XS999"]}, "algorithms", id="unknown"),
            pytest.param({"algorithms": ["HS256", "RS256"]}, "algorithms", id="hs-mixed-rs"),
            pytest.param({"algorithms": ["HS256"]}, "secret", id="hs-without-secret"),
            pytest.param(
                {"algorithms": ["HS256"], "secret": b"short", "min_secret_bytes": 32},
                "secret",
                id="short-refused",
            ),
            pytest.param(
                {"algorithms": ["HS512"], "secret": b"x" * 32, "min_secret_bytes": 64},
                "secret",
                id="short-for-hs512-refused",
            ),
            pytest.param({"algorithms": ["RS256"]}, "jwks", id="rs-without-keys"),
            pytest.param(
                {"algorithms": ["RS256"], "secret": HS_SECRET}, "secret", id="rs-with-secret"
            ),
            pytest.param(
                {"algorithms": ["RS256"], "public_keys": [b"not a pem"]},
                "public_keys",
                id="bad-pem",
            ),
            pytest.param(
                {"algorithms": ["RS256"], "jwks": "https://idp/jwks", "public_keys": []},
                "public_keys",
                id="jwks-and-public-keys",
            ),
            pytest.param(
                {"algorithms": ["HS256"], "secret": HS_SECRET, "leeway": -1}, "leeway", id="leeway"
            ),
            pytest.param(
                {"algorithms": ["HS256"], "secret": HS_SECRET, "cache_size": -5},
                "cache_size",
                id="cache-size",
            ),
            pytest.param(
                {"algorithms": ["HS256"], "secret": HS_SECRET, "max_token_bytes": 0},
                "max_token_bytes",
                id="max-token-bytes",
            ),
        ],
    )
    def test_invalid_settings_name_the_setting(self, kwargs: dict[str, Any], setting: str) -> None:
        """Inconsistent settings raise ConfigurationError naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(**kwargs)
        assert info.value.setting == setting

    def test_hs_with_public_keys_is_refused(self, rsa_key: KeyPair) -> None:
        """An HS allow-list with public keys is the key-confusion setup: refused."""
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(algorithms=["HS256"], secret=HS_SECRET, public_keys=[rsa_key.public_pem])
        assert info.value.setting == "secret"

    def test_key_without_matching_algorithm_is_refused(self, ec_key: KeyPair) -> None:
        """An EC key with only RSA algorithms allowed is a configuration error."""
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(algorithms=["RS256"], public_keys=[ec_key.public_pem])
        assert info.value.setting == "public_keys"

    def test_private_key_pem_is_refused(self, rsa_key: KeyPair) -> None:
        """Only public keys are accepted; a private PEM is refused without echoing it."""
        from cryptography.hazmat.primitives import serialization

        pem = rsa_key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(algorithms=["RS256"], public_keys=[pem])
        assert "PRIVATE" not in str(info.value)

    def test_unverified_mode_logs_a_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        """verify=False is announced once at construction."""
        with caplog.at_level(logging.WARNING, logger="auditmw.identity"):
            JWTResolver(algorithms=["RS256"], verify=False)
        assert "NOT verified" in caplog.text


class TestExtraction:
    @pytest.mark.parametrize(
        ("headers", "recognised"),
        [
            pytest.param({}, False, id="no-header"),
            pytest.param({"authorization": "Basic dXNlcjpwYXNz"}, False, id="basic-scheme"),
            pytest.param({"authorization": "bearer TOKEN"}, True, id="lowercase-scheme"),
            pytest.param({"authorization": "  Bearer   TOKEN  "}, True, id="extra-spaces"),
            pytest.param({"authorization": "Bearer"}, True, id="scheme-only"),
            pytest.param({"x-api-key": "abc"}, False, id="other-header"),
        ],
    )
    def test_bearer_header(
        self, hs: JWTResolver, headers: dict[str, str], recognised: bool
    ) -> None:
        """Only the configured scheme in the configured header is this resolver's credential."""
        assert (hs.resolve(make_exchange(headers)) is not None) is recognised

    def test_scheme_only_is_malformed(self, hs: JWTResolver) -> None:
        """'Bearer' with no token is a malformed credential."""
        actor = hs.resolve(make_exchange({"authorization": "Bearer"}))
        assert actor is not None
        assert actor.auth.error == "malformed"

    def test_custom_header_without_scheme(self) -> None:
        """A bare token in a custom header is read when scheme is empty."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, header="X-Token", scheme="")
        actor = resolver.resolve(make_exchange({"x-token": hs_token({"sub": "u1"})}))
        assert actor is not None
        assert actor.id == "u1"

    @pytest.mark.parametrize(
        "cookie",
        [
            pytest.param("session={}", id="only"),
            pytest.param("a=1; session={}; b=2", id="middle"),
            pytest.param('session="{}"', id="quoted"),
        ],
    )
    def test_cookie(self, cookie: str) -> None:
        """A token in the configured cookie is read when the header is absent."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, cookie="session")
        header = cookie.format(hs_token({"sub": "u2"}))
        actor = resolver.resolve(make_exchange({"cookie": header}))
        assert actor is not None
        assert actor.id == "u2"

    def test_cookie_absent(self) -> None:
        """Other cookies are not a credential."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, cookie="session")
        assert resolver.resolve(make_exchange({"cookie": "theme=dark"})) is None


class TestClaimsMapping:
    def test_default_mapping(self, hs: JWTResolver) -> None:
        """Standard OIDC/OAuth claims fill every actor field."""
        claims = {
            "sub": "u-1",
            "iss": "https://idp.example.com/",
            "preferred_username": "ada",
            "email": "ada@example.com",
            "roles": ["admin"],
            "groups": ["ops", "admin"],
            "realm_access": {"roles": ["offline"]},
            "scope": "orders:read orders:write",
            "azp": "web",
            "jti": "jti-1",
            "amr": ["pwd", "otp"],
            "act": {"sub": "svc-batch"},
        }
        actor = resolve(hs, hs_token(claims, kid="k1"))
        assert actor.to_dict() == {
            "id": "u-1",
            "type": "user",
            "name": "ada",
            "email": "ada@example.com",
            "roles": ["admin", "ops", "offline"],
            "scopes": ["orders:read", "orders:write"],
            "client_id": "web",
            "session_id": "jti-1",
            "mfa": True,
            "on_behalf_of": "svc-batch",
            "auth": {
                "method": "jwt",
                "verified": True,
                "issuer": "https://idp.example.com/",
                "key_id": "k1",
            },
        }

    @pytest.mark.parametrize(
        ("claims", "expected_type", "expected_id"),
        [
            pytest.param({"sub": "u"}, "user", "u", id="user"),
            pytest.param({"client_id": "batch"}, "service", "batch", id="no-sub"),
            pytest.param({"sub": "batch", "azp": "batch"}, "service", "batch", id="sub-is-client"),
            pytest.param({"sub": "u", "azp": "web"}, "user", "u", id="user-via-client"),
            pytest.param({}, "service", "unknown", id="empty"),
        ],
    )
    def test_service_rule(self, hs: JWTResolver, claims: dict[str, Any], expected_type: str,
                          expected_id: str) -> None:  # fmt: skip
        """Client-credentials tokens (no sub, or sub == client id) are services."""
        actor = resolve(hs, hs_token(claims))
        assert (actor.type, actor.id) == (expected_type, expected_id)

    def test_custom_mapping(self) -> None:
        """Dotted paths, a tenant claim and a custom service rule are honoured."""
        mapping = ClaimsMapping(
            id="user.id",
            roles=("resource_access.api.roles",),
            scopes="scp",
            tenant_id="tid",
            is_service=lambda claims: claims.get("kind") == "robot",
        )
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, claims=mapping)
        claims = {
            "user": {"id": 7},
            "resource_access": {"api": {"roles": "read write"}},
            "scp": ["a", "b"],
            "tid": "t-9",
            "kind": "robot",
        }
        actor = resolve(resolver, hs_token(claims))
        assert (actor.id, actor.type, actor.roles, actor.scopes, actor.tenant_id) == (
            "7", "service", ("read", "write"), ("a", "b"), "t-9",
        )  # fmt: skip

    @pytest.mark.parametrize(
        ("amr", "mfa"),
        [
            pytest.param(["pwd"], False, id="password"),
            pytest.param(["pwd", "mfa"], True, id="mfa"),
            pytest.param(["hwk"], True, id="hardware-key"),
            pytest.param("otp", True, id="string"),
            pytest.param(42, False, id="not-a-list"),
        ],
    )
    def test_amr_sets_mfa(self, hs: JWTResolver, amr: Any, mfa: bool) -> None:
        """amr values count as multi-factor only for the known methods."""
        actor = resolve(hs, hs_token({"sub": "u", "amr": amr}))
        assert dict(actor.extra)["mfa"] is mfa

    def test_hostile_claim_values_are_cleaned(self, hs: JWTResolver) -> None:
        """Control characters are removed, long values capped, odd types dropped."""
        claims = {
            "sub": "u\n1\x00" + "x" * 1000,
            "name": {"nested": "object"},
            "roles": ["ok", 5, None, ["nested"], "a\r\nb"] + ["r"] * 500,
            "email": True,
        }
        actor = resolve(hs, hs_token(claims))
        assert actor.id.startswith("u1x")
        assert len(actor.id) <= 256
        assert actor.name is None
        assert actor.email is None
        assert actor.roles[:3] == ("ok", "5", "ab")
        assert len(actor.roles) <= 64

    def test_no_mapping_fields_when_absent(self, hs: JWTResolver) -> None:
        """A minimal token yields a minimal actor: no empty fields, no extra."""
        actor = resolve(hs, hs_token({"sub": "u"}))
        assert actor.to_dict() == {
            "id": "u",
            "type": "user",
            "auth": {"method": "jwt", "verified": True},
        }


class TestChecks:
    def test_audience_and_issuer_checked_when_configured(self) -> None:
        """aud and iss must match the configured values."""
        resolver = JWTResolver(
            algorithms=["HS256"], secret=HS_SECRET, audience=["api", "api2"], issuer="https://i/"
        )
        good = {"sub": "u", "aud": "api2", "iss": "https://i/"}
        assert resolve(resolver, hs_token(good)).auth.error is None
        assert resolve(resolver, hs_token({**good, "aud": "x"})).auth.error == "invalid_audience"
        assert resolve(resolver, hs_token({**good, "iss": "x"})).auth.error == "invalid_issuer"
        missing = {"sub": "u", "iss": "https://i/"}
        assert resolve(resolver, hs_token(missing)).auth.error == "missing_claim"

    def test_audience_ignored_when_not_configured(self, hs: JWTResolver) -> None:
        """A token with an aud claim is accepted when no audience is configured."""
        assert resolve(hs, hs_token({"sub": "u", "aud": "anything"})).auth.error is None

    def test_required_claims(self) -> None:
        """Configured required claims must be present."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, required_claims=["exp"])
        assert resolve(resolver, hs_token({"sub": "u"})).auth.error == "missing_claim"
        ok = hs_token({"sub": "u", "exp": int(time.time()) + 60})
        assert resolve(resolver, ok).auth.error is None

    @pytest.mark.parametrize(
        ("offset", "leeway", "error"),
        [
            pytest.param(-30, 0, "expired", id="expired"),
            pytest.param(-30, 60, None, id="expired-within-leeway"),
        ],
    )
    def test_leeway(self, offset: int, leeway: int, error: str | None) -> None:
        """Leeway extends exp by the configured seconds."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, leeway=leeway)
        token = hs_token({"sub": "u", "exp": int(time.time()) + offset})
        assert resolve(resolver, token).auth.error == error

    def test_unverified_mode(self, rsa_key: KeyPair) -> None:
        """verify=False maps claims but marks the actor as unverified."""
        resolver = JWTResolver(algorithms=["RS256"], verify=False)
        token = jwt.encode({"sub": "gw-user"}, rsa_key.private, algorithm="RS256")
        actor = resolve(resolver, token)
        assert (actor.id, actor.auth.verified, actor.auth.error) == ("gw-user", False, None)

    def test_unverified_mode_still_checks_time_and_algorithm(self) -> None:
        """verify=False still refuses expired tokens and algorithms outside the list."""
        resolver = JWTResolver(algorithms=["RS256"], verify=False)
        expired = hs_token({"sub": "u", "exp": 1})
        assert resolve(resolver, expired).auth.error == "algorithm_not_allowed"
        resolver = JWTResolver(algorithms=["HS256"], verify=False)
        assert resolve(resolver, expired).auth.error == "expired"


class TestCache:
    def test_hit_returns_the_same_actor(self, hs: JWTResolver) -> None:
        """A second resolution of the same token is served from the cache."""
        token = hs_token({"sub": "u"})
        assert resolve(hs, token) is resolve(hs, token)

    def test_expired_token_is_not_served_from_cache(self, hs: JWTResolver) -> None:
        """Once exp passes, the cached actor is dropped and the token re-verified."""
        token = hs_token({"sub": "u", "exp": int(time.time()) + 1})
        assert resolve(hs, token).auth.error is None
        time.sleep(max(0.0, int(time.time()) + 1.05 - time.time()) + 1.0)
        assert resolve(hs, token).auth.error == "expired"

    @pytest.mark.parametrize(
        "make_exp",
        [
            pytest.param(lambda exp: float(exp) + 0.9, id="float"),
            pytest.param(str, id="numeric-string"),
        ],
    )
    def test_odd_exp_types_are_not_cached_past_expiry(self, hs: JWTResolver, make_exp: Any) -> None:
        """exp as a float or numeric string (pyjwt accepts both) still bounds the cache."""
        exp = int(time.time()) + 1
        token = hs_token({"sub": "u", "exp": make_exp(exp)})
        assert resolve(hs, token).auth.error is None
        time.sleep(max(0.0, exp + 0.05 - time.time()))
        assert resolve(hs, token).auth.error == "expired"

    def test_issuer_list(self) -> None:
        """Several accepted issuers may be configured."""
        resolver = JWTResolver(
            algorithms=["HS256"], secret=HS_SECRET, issuer=["https://a/", "https://b/"]
        )
        assert resolve(resolver, hs_token({"sub": "u", "iss": "https://b/"})).auth.error is None
        assert (
            resolve(resolver, hs_token({"sub": "u", "iss": "https://c/"})).auth.error
            == "invalid_issuer"
        )

    def test_cache_is_bounded(self) -> None:
        """The cache never holds more than cache_size tokens."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, cache_size=3)
        tokens = [hs_token({"sub": f"u{i}"}) for i in range(10)]
        for token in tokens:
            resolve(resolver, token)
        assert len(resolver._cache) == 3
        assert resolve(resolver, tokens[-1]) is resolve(resolver, tokens[-1])

    def test_failures_are_cached_briefly(self, hs: JWTResolver) -> None:
        """A bad token's result is cached in the bounded failure cache."""
        token = hs_token({"sub": "u"})[:-4] + "AAAA"
        first = resolve(hs, token)
        assert first.auth.error == "invalid_signature"
        assert resolve(hs, token) is first
        assert len(hs._failures) == 1

    def test_cache_disabled(self) -> None:
        """cache_size=0 verifies every time."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, cache_size=0)
        token = hs_token({"sub": "u"})
        assert resolve(resolver, token) is not resolve(resolver, token)
        assert len(resolver._cache) == 0
