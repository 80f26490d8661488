"""``_core.merkle_root`` against the Python RFC 6962 tree hash, root for root."""

from __future__ import annotations

import hashlib
import sys
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditmw.integrity import merkle
from tests.unit.test_integrity import rfc6962_root

if TYPE_CHECKING:
    from types import ModuleType

leaf = st.binary(min_size=32, max_size=32)


def python_root(leaves: Any) -> bytes:
    """The Python reference, whatever core the process runs."""
    saved, merkle._native_root = merkle._native_root, None
    try:
        return merkle.merkle_root(leaves)
    finally:
        merkle._native_root = saved


@given(st.lists(leaf, max_size=70))
def test_same_root_as_python(core: ModuleType, leaves: list[bytes]) -> None:
    """Every tree size up to 70 (odd promotions at every level) gives the Python root."""
    assert core.merkle_root(leaves) == python_root(leaves) == rfc6962_root(leaves)
    assert core.merkle_root(tuple(leaves)) == python_root(leaves)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 255, 256, 257, 1000, 1023, 1024, 1025, 4097])
def test_boundary_sizes(core: ModuleType, size: int) -> None:
    """Powers of two and their neighbours, and the sizes where the GIL is released."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    assert core.merkle_root(leaves) == python_root(leaves)


@pytest.mark.parametrize(
    "leaves",
    [
        [b"short"],
        [bytes(32), bytes(33)],
        [bytearray(32)],
        [bytes(32), "not bytes"],
        iter([bytes(32)]),
        b"".join([bytes(32)] * 2),
        None,
    ],
    ids=["short", "long", "bytearray", "str", "iterator", "flat-bytes", "none"],
)
def test_other_shapes_leave_it_to_python(core: ModuleType, leaves: Any) -> None:
    """Input the C code does not read (not a list/tuple of 32-byte bytes) gives None."""
    assert core.merkle_root(leaves) is None


def test_merkle_root_uses_the_native_core(core: ModuleType) -> None:
    """With the native core loaded, merkle.merkle_root is the C call (and agrees)."""
    from auditmw import _native

    if _native.CORE != "native":
        pytest.skip(f"the process runs the Python core: {_native.UNAVAILABLE_REASON}")
    assert merkle._native_root is _native.merkle_root
    leaves = [bytes([i]) * 32 for i in range(9)]
    assert merkle.merkle_root(leaves) == python_root(leaves)
    # Leaves that are not 32 bytes (never the writer's, but the function accepts them)
    # still get the Python tree.
    odd = [b"a", b"bc"]
    assert merkle.merkle_root(odd) == python_root(odd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.slow
def test_memory_flat(core: ModuleType) -> None:
    """Reference counts balanced and memory flat over many calls, both outcomes."""
    from tests.native.test_refcounts import flat

    leaves = [bytes([i]) * 32 for i in range(7)]
    odd = [*leaves, b"x"]
    counts = [sys.getrefcount(o) for o in (leaves, odd, *leaves)]
    flat(lambda: core.merkle_root(leaves), 200_000)
    flat(lambda: core.merkle_root(odd), 200_000)
    assert [sys.getrefcount(o) for o in (leaves, odd, *leaves)] == counts
