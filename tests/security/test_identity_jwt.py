"""Hostile and broken JWTs: every algorithm family and every failure reason, as data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import TYPE_CHECKING, Any

import jwt
import orjson
import pytest

from auditmw.identity import JWTResolver
from tests.security.identity_security_support import (
    HS_SECRET,
    KeyPair,
    ec_key,
    ed_key,
    make_exchange,
    rsa_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.event import Actor

__all__ = ["ec_key", "ed_key", "rsa_key"]

NOW = int(time.time())
OTHER_SECRET = b"o" * 64
FAILURES = {
    "malformed",
    "expired",
    "not_yet_valid",
    "invalid_signature",
    "invalid_audience",
    "invalid_issuer",
    "unknown_key",
    "algorithm_not_allowed",
    "missing_claim",
}


def b64(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: bytes, key: bytes | None) -> str:
    """Build a compact JWS by hand (HMAC-SHA256 over the signing input, or unsigned)."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


def resolve(resolver: JWTResolver, token: str) -> Actor:
    """Resolve ``token`` as a bearer credential; the resolver must recognise it."""
    actor = resolver.resolve(make_exchange({"authorization": f"Bearer {token}"}))
    assert actor is not None
    return actor


def keys_for(alg: str, keys: dict[str, KeyPair]) -> tuple[Any, dict[str, Any]]:
    """Return (signing key, resolver kwargs) for algorithm ``alg``."""
    if alg.startswith("HS"):
        return HS_SECRET, {"secret": HS_SECRET}
    pair = keys[{"RS": "rsa", "PS": "rsa", "ES": "ec", "Ed": "ed"}[alg[:2]]]
    return pair.private, {"public_keys": {"k1": pair.public_pem}}


@pytest.fixture
def keys(rsa_key: KeyPair, ec_key: KeyPair, ed_key: KeyPair) -> dict[str, KeyPair]:
    """The asymmetric test keys by family."""
    return {"rsa": rsa_key, "ec": ec_key, "ed": ed_key}


ALGORITHMS = [
    pytest.param(alg, id=alg)
    for alg in ("HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA")
]


class TestAlgorithmFamilies:
    @pytest.mark.parametrize("alg", ALGORITHMS)
    def test_valid_token_is_verified(self, alg: str, keys: dict[str, KeyPair]) -> None:
        """A correctly signed token of each family yields a verified jwt actor."""
        signing_key, config = keys_for(alg, keys)
        resolver = JWTResolver(algorithms=[alg], issuer="https://idp/", **config)
        claims = {"sub": "u1", "iss": "https://idp/", "exp": NOW + 600, "iat": NOW}
        token = jwt.encode(claims, signing_key, algorithm=alg, headers={"kid": "k1"})
        actor = resolve(resolver, token)
        assert actor.id == "u1"
        assert actor.type == "user"
        assert actor.auth.to_dict() == {
            "method": "jwt", "verified": True, "issuer": "https://idp/", "key_id": "k1",
        }  # fmt: skip

    @pytest.mark.parametrize("alg", ALGORITHMS)
    def test_tampered_token_is_invalid_signature(self, alg: str, keys: dict[str, KeyPair]) -> None:
        """Changing the payload of a signed token of each family breaks the signature."""
        signing_key, config = keys_for(alg, keys)
        resolver = JWTResolver(algorithms=[alg], **config)
        token = jwt.encode({"sub": "u1"}, signing_key, algorithm=alg, headers={"kid": "k1"})
        head, _, signature = token.split(".")
        forged = f"{head}.{b64(orjson.dumps({'sub': 'admin'}))}.{signature}"
        actor = resolve(resolver, forged)
        assert actor.type == "anonymous"
        assert actor.auth.error == "invalid_signature"
        assert actor.auth.method == "jwt"
        assert actor.auth.verified is False


def signed(alg: str = "HS256", key: bytes = HS_SECRET, **changes: Any) -> str:
    """Sign valid claims (sub, aud "api", iss "https://idp/") with ``changes`` applied.

    A change to ``None`` removes the claim, so each token has exactly one flaw.
    """
    claims: dict[str, Any] = {"sub": "u", "aud": "api", "iss": "https://idp/", **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=alg)


def flip_signature(token: str) -> str:
    """Change one character in the middle of the signature."""
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    char = "A" if signature[middle] != "A" else "B"
    return f"{head}.{payload}.{signature[:middle]}{char}{signature[middle + 1 :]}"


FAILURE_CASES: list[Any] = [
    pytest.param(lambda: "abc", "malformed", id="one-segment"),
    pytest.param(lambda: "a.b", "malformed", id="two-segments"),
    pytest.param(lambda: "a.b.c.d.e", "malformed", id="jwe-shaped"),
    pytest.param(lambda: "!!!.###.$$$", "malformed", id="bad-base64"),
    pytest.param(lambda: f"{b64(b'[1]')}.{b64(b'{}')}.", "malformed", id="header-not-object"),
    pytest.param(
        lambda: handmade({"alg": "HS256"}, b"not json at all", HS_SECRET),
        "malformed",
        id="non-json-payload",
    ),
    pytest.param(
        lambda: handmade({"alg": "HS256"}, b"[1, 2]", HS_SECRET), "malformed", id="array-payload"
    ),
    pytest.param(
        lambda: handmade({"alg": "HS256"}, b'{"sub": "u", "exp": "soon"}', HS_SECRET),
        "malformed",
        id="exp-not-a-number",
    ),
    pytest.param(lambda: signed(exp=NOW - 3600), "expired", id="expired"),
    pytest.param(
        lambda: signed(nbf=NOW + 3600),
        "not_yet_valid",
        id="nbf-in-future",
    ),
    pytest.param(
        lambda: signed(iat=NOW + 3600),
        "not_yet_valid",
        id="iat-in-future",
    ),
    pytest.param(
        lambda: signed(key=OTHER_SECRET),
        "invalid_signature",
        id="wrong-secret",
    ),
    pytest.param(
        lambda: flip_signature(signed()),
        "invalid_signature",
        id="flipped-signature",
    ),
    pytest.param(
        lambda: signed(aud="other"),
        "invalid_audience",
        id="wrong-audience",
    ),
    pytest.param(
        lambda: signed(iss="evil"),
        "invalid_issuer",
        id="wrong-issuer",
    ),
    pytest.param(
        lambda: signed(aud=None),
        "missing_claim",
        id="missing-aud",
    ),
    pytest.param(
        lambda: signed(alg="HS384"),
        "algorithm_not_allowed",
        id="hs384-not-in-list",
    ),
    pytest.param(
        lambda: handmade({"alg": "none"}, b'{"sub": "admin"}', None),
        "algorithm_not_allowed",
        id="alg-none",
    ),
    pytest.param(
        lambda: handmade({"alg": "NONE"}, b'{"sub": "admin"}', None),
        "algorithm_not_allowed",
        id="alg-NONE",
    ),
    pytest.param(
        lambda: handmade({"alg": "none"}, b'{"sub": "admin"}', HS_SECRET),
        "algorithm_not_allowed",
        id="alg-none-with-signature",
    ),
    pytest.param(
        lambda: handmade({"typ": "JWT"}, b'{"sub": "admin"}', HS_SECRET),
        "algorithm_not_allowed",
        id="alg-missing",
    ),
    pytest.param(
        lambda: handmade({"alg": ["HS256"]}, b'{"sub": "admin"}', HS_SECRET),
        "algorithm_not_allowed",
        id="alg-not-a-string",
    ),
]


class TestFailureReasons:
    def test_the_baseline_token_is_valid(self) -> None:
        """Without a flaw, the table's token verifies (so each case tests only its flaw)."""
        resolver = JWTResolver(
            algorithms=["HS256"], secret=HS_SECRET, audience="api", issuer="https://idp/"
        )
        assert resolve(resolver, signed()).auth.error is None

    @pytest.mark.parametrize(("make_token", "error"), FAILURE_CASES)
    def test_failure_is_an_anonymous_actor(self, make_token: Callable[[], str], error: str) -> None:
        """Each broken or hostile token yields exactly its reason, never an exception."""
        resolver = JWTResolver(
            algorithms=["HS256"], secret=HS_SECRET, audience="api", issuer="https://idp/"
        )
        token = make_token()
        actor = resolve(resolver, token)
        assert actor.type == "anonymous"
        assert actor.id == "anonymous"
        assert actor.auth.error == error
        assert actor.auth.method == "jwt"
        assert actor.auth.verified is False
        assert resolve(resolver, token) == actor  # the cached failure is identical

    def test_unknown_kid(self, rsa_key: KeyPair) -> None:
        """A kid that names no configured key is unknown_key, with the kid recorded."""
        resolver = JWTResolver(algorithms=["RS256"], public_keys={"k1": rsa_key.public_pem})
        token = jwt.encode({"sub": "u"}, rsa_key.private, algorithm="RS256", headers={"kid": "k9"})
        actor = resolve(resolver, token)
        assert (actor.auth.error, actor.auth.key_id) == ("unknown_key", "k9")

    def test_every_reason_is_covered(self) -> None:
        """The table above exercises every documented reason except unknown_key."""
        covered = {case.values[1] for case in FAILURE_CASES}
        assert covered == FAILURES - {"unknown_key"}

    def test_hints_from_failed_tokens_are_cleaned_and_capped(self) -> None:
        """Issuer and kid of a failed token are attacker data: no control chars, capped."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET)
        claims = {"sub": "u", "iss": 'evil\n{"forged": 1}' + "i" * 1000}
        token = jwt.encode(claims, OTHER_SECRET, algorithm="HS256", headers={"kid": "k\r\x00" * 99})
        actor = resolve(resolver, token)
        assert actor.auth.error == "invalid_signature"
        assert actor.auth.issuer is not None
        assert actor.auth.key_id is not None
        assert actor.auth.issuer.startswith('evil{"forged": 1}')
        assert len(actor.auth.issuer) <= 128
        assert set(actor.auth.key_id) == {"k"}
        assert len(actor.auth.key_id) <= 128


class TestKeyConfusion:
    def test_hs256_signed_with_rsa_public_pem(self, rsa_key: KeyPair) -> None:
        """An HS256 token whose 'secret' is the RSA public key PEM is refused."""
        token = handmade({"alg": "HS256", "kid": "k1"}, b'{"sub": "admin"}', rsa_key.public_pem)
        resolver = JWTResolver(algorithms=["RS256"], public_keys={"k1": rsa_key.public_pem})
        actor = resolve(resolver, token)
        assert actor.auth.error == "algorithm_not_allowed"
        assert actor.type == "anonymous"

    def test_hs256_against_every_asymmetric_allow_list(self, rsa_key: KeyPair) -> None:
        """Allowing every asymmetric algorithm still never verifies an HS token."""
        token = handmade({"alg": "HS256"}, b'{"sub": "admin"}', rsa_key.public_pem)
        resolver = JWTResolver(
            algorithms=["RS256", "RS384", "RS512", "PS256"], public_keys=[rsa_key.public_pem]
        )
        assert resolve(resolver, token).auth.error == "algorithm_not_allowed"

    def test_alg_of_another_key_type_for_a_kid(self, rsa_key: KeyPair, ec_key: KeyPair) -> None:
        """A token claiming ES256 with the kid of an RSA key is algorithm_not_allowed."""
        resolver = JWTResolver(
            algorithms=["RS256", "ES256"],
            public_keys={"rsa": rsa_key.public_pem, "ec": ec_key.public_pem},
        )
        token = jwt.encode({"sub": "u"}, ec_key.private, algorithm="ES256", headers={"kid": "rsa"})
        assert resolve(resolver, token).auth.error == "algorithm_not_allowed"
        good = jwt.encode({"sub": "u"}, ec_key.private, algorithm="ES256", headers={"kid": "ec"})
        assert resolve(resolver, good).auth.error is None

    def test_rs_token_with_ec_algorithm_claim(self, rsa_key: KeyPair, ec_key: KeyPair) -> None:
        """A token claiming ES256 while only an RSA key exists finds no key."""
        resolver = JWTResolver(
            algorithms=["RS256", "ES256"], public_keys=[rsa_key.public_pem, ec_key.public_pem]
        )
        token = jwt.encode({"sub": "u"}, rsa_key.private, algorithm="RS256")
        _head, payload, signature = token.split(".")
        swapped = f"{b64(orjson.dumps({'alg': 'ES256'}))}.{payload}.{signature}"
        assert resolve(resolver, swapped).auth.error == "invalid_signature"


class TestHostileSizesAndBytes:
    def test_100_kib_token_is_malformed_without_parsing(self) -> None:
        """A 100 KiB token is refused by size (default cap 8 KiB)."""
        big = jwt.encode({"sub": "u", "pad": "x" * 100_000}, HS_SECRET, algorithm="HS256")
        assert len(big) > 100 * 1024
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET)
        actor = resolve(resolver, big)
        assert actor.auth.error == "malformed"
        assert len(resolver._failures) == 0  # nothing parsed, nothing cached

    def test_100_kib_token_under_a_raised_cap_verifies(self) -> None:
        """The cap is a setting: raised, a large valid token is verified."""
        big = jwt.encode({"sub": "u", "pad": "x" * 100_000}, HS_SECRET, algorithm="HS256")
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, max_token_bytes=1 << 20)
        assert resolve(resolver, big).id == "u"

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b"Bearer " + os.urandom(300), id="random-bytes"),
            pytest.param(b"Bearer \xff\xfe.\x00\x01.\x80", id="non-utf8-segments"),
            pytest.param(b"Bearer eyJ\xe9.eyJ\xe9.sig", id="latin1-in-base64"),
            pytest.param(b"Bearer " + b"." * 5000, id="only-dots"),
            pytest.param(b"Bearer a\r\nb.c.d", id="newline"),
        ],
    )
    def test_binary_garbage(self, raw: bytes) -> None:
        """Binary garbage in the header is malformed, never an exception."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET)
        actor = resolver.resolve(make_exchange([(b"authorization", raw)]))
        assert actor is not None
        assert actor.auth.error == "malformed"

    def test_deeply_nested_payload(self) -> None:
        """A signed payload nested beyond JSON parser limits is malformed."""
        payload = b'{"sub": "u", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        token = handmade({"alg": "HS256"}, payload, HS_SECRET)
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET, max_token_bytes=1 << 20)
        assert resolve(resolver, token).auth.error == "malformed"
