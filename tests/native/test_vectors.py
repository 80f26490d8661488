"""The own SHA-256 and HMAC-SHA256: FIPS 180-4 and RFC 4231 vectors, and hashlib/hmac."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from types import ModuleType

# FIPS 180-4 examples (NIST CSRC "SHA256.pdf") and the long message of FIPS 180-2 App. B.3
SHA256_VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
        b"jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]

# RFC 4231 §4: (key, data, HMAC-SHA256); case 5 (truncated output) compares a prefix
HMAC_VECTORS = [
    (
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size"
        b" data. The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("data", "want"), SHA256_VECTORS, ids=lambda v: str(len(v)))
def test_sha256_fips_180_4(core: ModuleType, data: bytes, want: str) -> None:
    assert core.sha256(data).hex() == want


@pytest.mark.parametrize(("key", "data", "want"), HMAC_VECTORS)
def test_hmac_rfc_4231(core: ModuleType, key: bytes, data: bytes, want: str) -> None:
    assert core.MacKey(key).digest(data).hex()[: len(want)] == want


@settings(max_examples=500)
@given(data=st.binary(max_size=600))
def test_sha256_matches_hashlib(core: ModuleType, data: bytes) -> None:
    assert core.sha256(data) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", range(200))
def test_sha256_every_padding_case(core: ModuleType, size: int) -> None:
    data = bytes(range(size))
    assert core.sha256(data) == hashlib.sha256(data).digest()


@settings(max_examples=500)
@given(key=st.binary(max_size=200), data=st.binary(max_size=300))
def test_hmac_matches_hmac_module(core: ModuleType, key: bytes, data: bytes) -> None:
    """Any key length (empty, < block, = block, > block: hashed first)."""
    mac_key = core.MacKey(key)
    assert mac_key.digest(data) == hmac.digest(key, data, "sha256")
    assert mac_key.digest(data) == mac_key.digest(data)  # the precomputed states are reused
