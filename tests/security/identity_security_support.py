"""Helpers for the identity security tests: a real JWKS server, plus the unit helpers.

Imported by the ``test_identity_*`` modules (a module, not a conftest, so it cannot clash
with other suites' conftest files).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.unit.identity.identity_support import (
    HS_SECRET,
    KeyPair,
    ec_key,
    ed_key,
    make_exchange,
    rsa_key,
    rsa_key2,
    wait_for,
)

__all__ = [
    "HS_SECRET",
    "JWKSServer",
    "KeyPair",
    "ec_key",
    "ed_key",
    "jwks_server",
    "make_exchange",
    "rsa_key",
    "rsa_key2",
    "wait_for",
]


class JWKSServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS document that tests can change."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.requests = 0
        self.fetched = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
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
