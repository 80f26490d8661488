"""Fixtures for the identity unit tests."""

from __future__ import annotations

from tests.unit.identity.identity_support import ec_key, ed_key, jwks_server, rsa_key, rsa_key2

__all__ = ["ec_key", "ed_key", "jwks_server", "rsa_key", "rsa_key2"]
