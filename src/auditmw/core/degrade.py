"""The degraded form of an event that cannot be serialized as it is.

The last-resort guard of the writer side: the pipeline already makes the values
it takes from a request serializable (:func:`auditmw.canonical.sanitize`), but a
processor, a custom resolver or an exporter may still hand the encoder a value
that orjson refuses.  Such an event is never allowed to stop delivery.  It is
written in a degraded but valid form, in two steps, each deterministic:

1. the whole event passes through :func:`~auditmw.canonical.sanitize`; the
   pointers it changed are added to the event's ``truncated`` list;
2. if that form still cannot be encoded, the event is reduced to its metadata
   (the required scalar fields that are well-formed), with ``truncated: [""]``
   (the JSON Pointer of the whole document).

See ``docs/failure.md``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from auditmw.core.canonical import sanitize

if TYPE_CHECKING:
    from auditmw.core.types import Event

__all__ = ["degrade", "metadata_only"]

logger = logging.getLogger("auditmw.delivery")

_METADATA = (
    "schema_version",
    "event_id",
    "time",
    "end_time",
    "kind",
    "action",
    "operation",
    "outcome",
    "outcome_reason",
    "severity",
)
_ANONYMOUS = {"id": "anonymous", "type": "anonymous", "auth": {"method": "none", "verified": False}}


def degrade(event: Event) -> Event:
    """Return ``event`` made serializable; changed values are listed in ``truncated``.

    Args:
        event: an event that failed to serialize (or whose export failed).

    .. versionadded:: 0.2.0
    """
    changed: list[str] = []
    out: dict[str, Any] = sanitize(dict(event), "", changed)
    previous = out.get("truncated")
    listed = [p for p in previous if isinstance(p, str)] if isinstance(previous, list) else []
    out["truncated"] = listed + [p for p in changed if p not in listed]
    return out


def metadata_only(event: Event) -> Event:
    """Return the metadata of ``event`` alone, marked ``truncated: [""]``.

    Keeps the required scalar fields that are plain ASCII strings and
    ``duration_us`` when it is a small integer; the actor is kept only as its id
    and type when both are plain strings.

    .. versionadded:: 0.2.0
    """
    out: dict[str, Any] = {}
    for name in _METADATA:
        value = event.get(name)
        if isinstance(value, str) and value.isascii() and len(value) <= 256:
            out[name] = value
    duration = event.get("duration_us")
    if type(duration) is int and 0 <= duration < 2**53:
        out["duration_us"] = duration
    actor = event.get("actor")
    out["actor"] = _ANONYMOUS
    if isinstance(actor, dict):
        aid, atype = actor.get("id"), actor.get("type")
        if isinstance(aid, str) and isinstance(atype, str) and (aid + atype).isascii():
            out["actor"] = {**_ANONYMOUS, "id": aid[:256], "type": atype[:32]}
    out["truncated"] = [""]
    return out
