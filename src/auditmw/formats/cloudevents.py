"""CloudEvents 1.0 exporter (structured-mode JSON).

``data`` is the canonical event itself; the context attributes make it routable on an
event bus: ``source`` is ``urn:auditmw:service:<service name>``, ``type`` is
``io.auditmw.audit.v1`` for requests and ``io.auditmw.lifecycle.v1.<kind>`` for
auditmw's own records, ``subject`` is ``<resource type>[/<resource id>]``.  The
``authtype``/``authid`` (authcontext), ``sequence`` and ``traceparent`` (distributed
tracing) extensions are set when the event carries the values.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from auditmw.formats._common import is_lifecycle

if TYPE_CHECKING:
    from auditmw.core.types import Event

__all__ = ["AUDIT_TYPE", "LIFECYCLE_TYPE_PREFIX", "export"]

#: ``type`` of request (HTTP, WebSocket, login) events.
AUDIT_TYPE: Final = "io.auditmw.audit.v1"
#: ``type`` prefix of lifecycle records; the suffix is the kind without ``audit.``.
LIFECYCLE_TYPE_PREFIX: Final = "io.auditmw.lifecycle.v1."

# authcontext extension values: app_user, user, service_account, api_key, system,
# unauthenticated, unknown.
_AUTHTYPE: Final = {
    "user": "user",
    "service": "service_account",
    "api_key": "api_key",
    "anonymous": "unauthenticated",
}
_sources: dict[str, str] = {}


def _source(name: str) -> str:
    source = _sources.get(name)
    if source is None:
        # Percent-encode so that any service name yields a valid URI reference.
        source = f"urn:auditmw:service:{quote(name, safe='-._~')}"
        if len(_sources) < 1024:
            _sources[name] = source
    return source


def export(event: Event) -> dict[str, Any]:
    """Return ``event`` as a structured-mode CloudEvents 1.0 JSON object.

    The ``data`` member is ``event`` itself (not a copy); neither is modified.

    Args:
        event: a canonical auditmw event (schema_version "1.0").

    Raises:
        KeyError: a required canonical field is missing.

    .. versionadded:: 0.1.0
    """
    lifecycle = is_lifecycle(event)
    kind = event["kind"]
    resource = event["resource"]
    subject = resource["type"]
    if "id" in resource:
        subject = f"{subject}/{resource['id']}"
    actor = event["actor"]
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": event["event_id"],
        "source": _source(event["service"]["name"]),
        "type": LIFECYCLE_TYPE_PREFIX + kind[6:] if lifecycle else AUDIT_TYPE,
        "time": event["time"],
        "subject": subject,
        "datacontenttype": "application/json",
        "dataschema": f"urn:auditmw:schema:{event['schema_version']}",
        "authtype": "system" if lifecycle else _AUTHTYPE.get(actor["type"], "unknown"),
        "data": event,
    }
    if "id" in actor:
        doc["authid"] = actor["id"]
    integrity = event.get("integrity")
    if integrity is not None and "seq" in integrity:
        # The sequence extension compares values as strings: zero-pad to keep the order.
        doc["sequence"] = f"{integrity['seq']:020d}"
    trace = event.get("trace")
    if trace is not None:
        # The sampled flag is not recorded in the event, so none is claimed.
        doc["traceparent"] = f"00-{trace['trace_id']}-{trace['span_id']}-00"
    return doc
