"""RFC 6962 Merkle tree hashing over event hashes.

The leaves are the 32-byte event hashes of one checkpoint range.  A leaf is hashed as
``SHA-256(0x00 || leaf)`` and an inner node as ``SHA-256(0x01 || left || right)``, as in
Certificate Transparency (RFC 6962 §2.1), so a single event can be proven part of a
signed checkpoint with an audit path of ``log2(n)`` hashes.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from hashlib import sha256
from typing import TYPE_CHECKING

from auditmw import _native

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["inclusion_proof", "merkle_root", "verify_inclusion"]

_EMPTY = sha256(b"").digest()
#: The C tree hash (auditmw._native), or None: the Python code below is its reference.
_native_root = _native.merkle_root


def _level_up(nodes: list[bytes]) -> list[bytes]:
    # Pairing bottom-up and promoting an odd last node yields exactly the RFC 6962
    # tree (the left subtree is always the largest power of two).
    paired = [
        sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes) - 1, 2)
    ]
    if len(nodes) % 2:
        paired.append(nodes[-1])
    return paired


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 Merkle tree hash of ``leaves`` (32-byte event hashes).

    Args:
        leaves: the event hashes, in sequence order.

    .. versionadded:: 0.1.0
    """
    if _native_root is not None and (root := _native_root(leaves)) is not None:
        return root  # one C call: the leaves as the writer and the verifier keep them
    if not leaves:
        return _EMPTY
    nodes = [sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(nodes) > 1:
        nodes = _level_up(nodes)
    return nodes[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path proving ``leaves[index]`` is in the tree of ``leaves``.

    Args:
        leaves: the event hashes of the checkpoint range.
        index: position of the proven leaf in ``leaves``.

    Raises:
        IndexError: ``index`` is outside ``leaves``.

    .. versionadded:: 0.1.0
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    nodes = [sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(nodes) > 1:
        sibling = index ^ 1
        if sibling < len(nodes):
            path.append(nodes[sibling])
        nodes = _level_up(nodes)
        index //= 2
    return path


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Return whether ``path`` proves ``leaf`` at ``index`` in a tree of ``size`` with ``root``.

    Args:
        leaf: the event hash.
        index: its position in the checkpoint range.
        size: the number of leaves in the range.
        path: the audit path from :func:`inclusion_proof`.
        root: the Merkle root from the signed checkpoint.

    .. versionadded:: 0.1.0
    """
    if not 0 <= index < size:
        return False
    node = sha256(b"\x00" + leaf).digest()
    remaining = list(path)
    width = size
    while width > 1:
        if index % 2 == 1:
            if not remaining:
                return False
            node = sha256(b"\x01" + remaining.pop(0) + node).digest()
        elif index + 1 < width:
            if not remaining:
                return False
            node = sha256(b"\x01" + node + remaining.pop(0)).digest()
        index //= 2
        width = (width + 1) // 2
    return not remaining and node == root
