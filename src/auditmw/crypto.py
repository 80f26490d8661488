"""Encryption at rest for audit files (public names).

The code lives in :mod:`auditmw.integrity.crypto`. This module only hands the public
names on, so that ``auditmw.crypto`` stays importable as documented; auditmw's own
modules import the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.integrity.crypto import (
    HEADER_KEY,
    AlteredLineError,
    DecryptionError,
    KeyProvider,
    Keyring,
    SegmentKey,
    decrypt_lines,
    new_segment,
    open_segment,
    parse_header,
    shred,
)

__all__ = [
    "AlteredLineError",
    "DecryptionError",
    "HEADER_KEY",
    "KeyProvider",
    "Keyring",
    "SegmentKey",
    "decrypt_lines",
    "new_segment",
    "open_segment",
    "parse_header",
    "shred",
]
