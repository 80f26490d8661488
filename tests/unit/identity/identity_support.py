"""Helpers for the identity unit tests: real keys and exchanges.

Imported by the identity unit tests (a module, not a conftest, so it cannot clash
with other suites' conftest files).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from auditmw.event import Exchange, Headers

if TYPE_CHECKING:
    from collections.abc import Callable

HS_SECRET = b"s" * 64


@dataclass(frozen=True)
class KeyPair:
    """A private key (to sign test tokens) and its public PEM and JWK."""

    private: Any
    public_pem: bytes
    kind: str

    def jwk(self, kid: str, alg: str | None = None) -> dict[str, Any]:
        """Return the public JWK with ``kid`` (and ``alg`` when given)."""
        algorithm: Any = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}[self.kind]
        data: dict[str, Any] = orjson.loads(algorithm.to_jwk(self.private.public_key()))
        data["kid"] = kid
        if alg:
            data["alg"] = alg
        return data


def _pair(private: Any, kind: str) -> KeyPair:
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private, pem, kind)


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    """A 2048-bit RSA key pair."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA")


@pytest.fixture(scope="session")
def rsa_key2() -> KeyPair:
    """A second RSA key pair (for rotation and wrong-key tests)."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA")


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    """A P-256 key pair."""
    return _pair(ec.generate_private_key(ec.SECP256R1()), "EC")


@pytest.fixture(scope="session")
def ed_key() -> KeyPair:
    """An Ed25519 key pair."""
    return _pair(ed25519.Ed25519PrivateKey.generate(), "OKP")


def make_exchange(
    headers: dict[str, str] | list[tuple[bytes, bytes]] | None = None,
    *,
    query: str = "",
    user: Any = None,
    request_object: Any = None,
) -> Exchange:
    """Build an exchange with the given headers (a dict, or raw byte pairs)."""
    if isinstance(headers, dict):
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    else:
        raw = headers or []
    return Exchange(
        event_id="e1",
        kind="http",
        method="GET",
        path="/",
        headers=Headers(raw=raw),
        start_ns=0,
        start_mono=0,
        query=query,
        user=user,
        request_object=request_object,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()
