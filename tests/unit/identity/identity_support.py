"""Helpers for the identity tests: real keys, exchanges and a real JWKS server.

Imported by the identity unit tests (a module, not a conftest, so it cannot clash
with other suites' conftest files).
"""

from __future__ import annotations

import http.server
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
    from collections.abc import Callable, Iterator

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


class JWKSServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS document that tests can change."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.requests = 0
        self.fetched = threading.Event()
        self.gate: threading.Event | None = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.gate is not None:
                    server.gate.wait(30)  # a hanging identity provider
                doc = server.document
                body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
                body = body if server.status == 200 else b"down"
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.fetched.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    """A running JWKS server, stopped after the test."""
    server = JWKSServer()
    yield server
    server.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()
