"""The byte layout of integrity data: domain-separation prefixes shared by writer and verifier.

Changing any of these values makes every existing log fail verification: they are part
of the stored format (``v1``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CHECKPOINT_DOMAIN",
    "CHECKPOINT_KIND",
    "CHECKPOINT_MAC_DOMAIN",
    "EVENT_DOMAIN",
    "MAC_DOMAIN",
    "SIGNATURE_DOMAIN",
    "TORN_FENCE",
    "ZERO_HASH",
    "find_integrity",
    "is_fenced_torn",
    "integrity_key",
    "with_integrity",
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
#: Appended by the file sink to a torn last line (left by a crash) before it writes on,
#: so the next record starts on a fresh line.  ``0x1E`` (ASCII record separator, as in
#: RFC 7464 JSON text sequences) never occurs in a JSON record: no record ends this way.
TORN_FENCE: Final = b"\x1eauditmw/v1/torn"


def is_fenced_torn(line: bytes) -> bool:
    """Whether ``line`` is a partial record fenced by the file sink (a crash artefact).

    Such a line holds no evidence (it is not a whole record); the events around it are
    still checked by their chain, so a fence can never hide a deleted event.

    .. versionadded:: 0.2.0
    """
    return line.endswith(TORN_FENCE)


def integrity_key(format: str) -> str:
    """Return the member holding the integrity object in ``format``'s stored documents.

    ``"integrity"`` for the canonical format and for CloudEvents, where it sits inside
    ``data`` (the canonical event; extension attributes may only hold flat values),
    and the top-level ``"auditmw_integrity"`` for OCSF, ECS and OTel documents.

    .. versionadded:: 0.1.0
    """
    return "integrity" if format in ("auditmw", "cloudevents") else "auditmw_integrity"


def with_integrity(format: str, document: dict[str, Any], integrity: Any) -> dict[str, Any]:
    """Return a shallow copy of an exported ``document`` carrying ``integrity``."""
    data = document.get("data")
    if format == "cloudevents" and isinstance(data, dict):
        return {**document, "data": {**data, "integrity": integrity}}
    return {**document, integrity_key(format): integrity}


def find_integrity(doc: dict[str, Any]) -> Any:
    """Return the integrity object of a stored document, wherever its format keeps it."""
    found = doc.get("auditmw_integrity") or doc.get("integrity")
    if found is None and isinstance(doc.get("data"), dict):
        found = doc["data"].get("integrity")
    return found
