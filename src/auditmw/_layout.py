"""The byte layout of integrity data: domain-separation prefixes shared by writer and verifier.

Changing any of these values makes every existing log fail verification: they are part
of the stored format (``v1``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CHECKPOINT_DOMAIN",
    "CHECKPOINT_KIND",
    "CHECKPOINT_MAC_DOMAIN",
    "EVENT_DOMAIN",
    "MAC_DOMAIN",
    "SIGNATURE_DOMAIN",
    "ZERO_HASH",
    "integrity_key",
]

EVENT_DOMAIN: Final = b"auditmw/v1/event"
MAC_DOMAIN: Final = b"auditmw/v1/mac"
CHECKPOINT_DOMAIN: Final = b"auditmw/v1/checkpoint"
SIGNATURE_DOMAIN: Final = b"auditmw/v1/checkpoint-signature"
CHECKPOINT_MAC_DOMAIN: Final = b"auditmw/v1/checkpoint-mac"
#: The ``prev`` of a chain's first event.
ZERO_HASH: Final = bytes(32)
#: The ``kind`` of inline checkpoint records.
CHECKPOINT_KIND: Final = "audit.checkpoint"


def integrity_key(format: str) -> str:
    """Return the top-level member holding the integrity object in ``format``'s documents.

    ``"integrity"`` for the canonical format, ``"auditmw_integrity"`` for exported ones.

    .. versionadded:: 0.1.0
    """
    return "integrity" if format == "auditmw" else "auditmw_integrity"
