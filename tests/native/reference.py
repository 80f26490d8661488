"""The chain step in plain Python: the specification ``_core.chain_step`` is held to.

``ChainEncoder._append`` does exactly this on the Python core (its MAC comes from a
copied HMAC state, which gives the same bytes).  The differential tests and the atheris
harness (``fuzz/fuzz_python.py``) both compare the C code with this function; ``shape`` serves the event builder's checks.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

__all__ = ["Step", "reference", "shape"]

#: ``(line or None, digest, hash hex, mac hex or None)``; ``None`` line: serialize again.
Step = tuple[bytes | None, bytes, str, str | None]


def reference(  # noqa: PLR0917 - the argument order of chain_step
    body: bytes, head: bytes, marker: bytes, domain: bytes, mac: bytes | None, mac_domain: bytes
) -> Step:
    """The chain step exactly as ``ChainEncoder._append`` does it in Python."""
    digest = sha256(domain + head + body).digest()
    hash_hex = digest.hex()
    seal = b'"hash":"' + hash_hex.encode() + b'",'
    mac_hex = None
    if mac is not None:
        mac_hex = hmac.digest(mac, mac_domain + digest, "sha256").hex()
        seal += b'"mac":"' + mac_hex.encode() + b'",'
    found = body.find(marker)
    if found >= 0 and body.find(marker, found + 1) < 0:
        at = found + len(marker)
        if mac is not None:
            at = body.index(b",", at) + 1
        return b"".join((body[:at], seal, body[at:])), digest, hash_hex, mac_hex
    return None, digest, hash_hex, mac_hex


def shape(value: object) -> object:
    """The types and key orders of a value, all the way down (the event builder's
    differential checks: equal dicts may still differ in key order or value types)."""
    if isinstance(value, dict):
        return (dict, [(k, shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return (list, [shape(v) for v in value])
    return type(value)
