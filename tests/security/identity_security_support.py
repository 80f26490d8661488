"""Helpers for the identity security tests (re-exported from the unit helpers).

Imported by the ``test_identity_*`` modules (a module, not a conftest, so it cannot clash
with other suites' conftest files).
"""

from __future__ import annotations

from tests.unit.identity.identity_support import (
    HS_SECRET,
    JWKSServer,
    KeyPair,
    ec_key,
    ed_key,
    jwks_server,
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
