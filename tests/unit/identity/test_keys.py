"""Unit tests for key material: JWKS parsing, static keys, URL hiding."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auditmw.exceptions import IdentityError
from auditmw.identity import StaticKeys
from auditmw.identity._keysets import algorithm_family, key_family
from auditmw.identity.keys import parse_jwks, safe_url
from tests.unit.identity.identity_support import KeyPair, _pair


class TestParseJWKS:
    def test_groups_keys_by_kid_and_family(
        self, rsa_key: KeyPair, ec_key: KeyPair, ed_key: KeyPair
    ) -> None:
        """Each usable key is indexed by kid with its family and pinned alg."""
        document = {
            "keys": [
                rsa_key.jwk("r", alg="RS256"),
                ec_key.jwk("e"),
                ed_key.jwk("d"),
                {**rsa_key.jwk("x"), "kid": 7},
            ]
        }
        keys = parse_jwks(orjson.dumps(document))
        assert {
            kid: [(family, alg) for _, family, alg in entries] for kid, entries in keys.items()
        } == {
            "r": [("RSA", "RS256")],
            "e": [("EC", None)],
            "d": [("OKP", None)],
            None: [("RSA", None)],
        }

    @pytest.mark.parametrize(
        "member",
        [
            pytest.param({"kty": "oct", "k": "c2VjcmV0c2VjcmV0", "kid": "h"}, id="symmetric"),
            pytest.param({"kty": "XYZ", "kid": "u"}, id="unknown-kty"),
            pytest.param({"kid": "n"}, id="no-kty"),
            pytest.param("not-an-object", id="string"),
        ],
    )
    def test_skips_unusable_members(self, rsa_key: KeyPair, member: Any) -> None:
        """Unusable members are skipped; the usable ones remain."""
        keys = parse_jwks(orjson.dumps({"keys": [member, rsa_key.jwk("ok")]}))
        assert set(keys) == {"ok"}

    def test_skips_private_encryption_and_weak_keys(self, rsa_key: KeyPair) -> None:
        """Members with private parts, use=enc, or RSA under 2048 bits are never held."""
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
        weak = _pair(small, "RSA")
        members = [
            {**rsa_key.jwk("p"), "d": "AQAB"},
            {**rsa_key.jwk("enc"), "use": "enc"},
            weak.jwk("weak"),
        ]
        with pytest.raises(IdentityError, match="no usable public key"):
            parse_jwks(orjson.dumps({"keys": members}))


class TestStaticKeys:
    def test_kid_mapping_and_fallback(self, rsa_key: KeyPair, rsa_key2: KeyPair) -> None:
        """Keys are chosen by kid; an unknown or missing kid finds nothing."""
        keys = StaticKeys(public_keys={"a": rsa_key.public_pem, "b": rsa_key2.public_pem})
        ((chosen, family, pinned),) = keys.candidates("b")
        assert chosen.public_numbers() == rsa_key2.private.public_key().public_numbers()
        assert (family, pinned) == ("RSA", None)
        assert keys.candidates("zzz") == []
        assert keys.candidates(None) == []

    def test_list_is_tried_for_any_kid(self, rsa_key: KeyPair, ec_key: KeyPair) -> None:
        """Keys given as a list serve tokens with or without kid."""
        keys = StaticKeys(public_keys=[rsa_key.public_pem, ec_key.public_pem])
        assert [family for _, family, _ in keys.candidates("anything")] == ["RSA", "EC"]
        assert len(keys.candidates(None)) == 2
        assert keys.families == frozenset({"RSA", "EC"})


class TestHelpers:
    @pytest.mark.parametrize(
        ("alg", "family"),
        [
            ("HS256", "HS"),
            ("RS512", "RSA"),
            ("PS256", "RSA"),
            ("ES384", "EC"),
            ("EdDSA", "OKP"),
            ("none", None),
            ("XX1", None),
        ],
    )
    def test_algorithm_family(self, alg: str, family: str | None) -> None:
        """Algorithms map to the key family that verifies them."""
        assert algorithm_family(alg) == family

    def test_key_family_refuses_non_keys(self) -> None:
        """Anything that is not a public key or secret has no family."""
        assert key_family("a string") is None
        assert key_family(b"secret") == "HS"

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://u:p@idp.example/jwks?x=1#f", "https://idp.example/jwks"),
            ("http://127.0.0.1:8080/certs", "http://127.0.0.1:8080/certs"),
        ],
    )
    def test_safe_url(self, url: str, shown: str) -> None:
        """Credentials, query and fragment are removed from displayed URLs."""
        assert safe_url(url) == shown
