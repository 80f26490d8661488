"""OCSF 1.8.0 exporter: API Activity (6003), Authentication (3002), Application Lifecycle (6002).

HTTP and WebSocket requests become API Activity events whose ``activity_id`` follows
the operation (create 1, read 2, update 3, delete 4, other 99).  Login and logout
become Authentication events (Logon 1, Logoff 2).  auditmw's own ``audit.*`` records
become Application Lifecycle events (Start 3, Stop 4, Other 99) about the audited
service.  Values OCSF has no attribute for (policy, redactions, annotations,
integrity, ...) are kept under ``unmapped`` with their canonical names, so nothing
is lost.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from auditmw.formats._common import (
    PRODUCT_NAME,
    PRODUCT_VERSION,
    is_lifecycle,
    split_host,
    time_us,
)
from auditmw.formats._ocsf_http import api_response, http_request, http_response, src_endpoint

if TYPE_CHECKING:
    from auditmw.core.types import Event

__all__ = ["APPLICATION_LIFECYCLE", "API_ACTIVITY", "AUTHENTICATION", "OCSF_VERSION", "export"]

#: The OCSF schema version of every exported event.
OCSF_VERSION: Final = "1.8.0"

#: OCSF class of HTTP and WebSocket requests.
API_ACTIVITY: Final = 6003
#: OCSF class of login and logout events.
AUTHENTICATION: Final = 3002
#: OCSF class of auditmw's own lifecycle records (``audit.*``).
APPLICATION_LIFECYCLE: Final = 6002

_CLASSES: Final = {
    API_ACTIVITY: ("API Activity", 6, "Application Activity"),
    AUTHENTICATION: ("Authentication", 3, "Identity & Access Management"),
    APPLICATION_LIFECYCLE: ("Application Lifecycle", 6, "Application Activity"),
}
_ACTIVITIES: Final = {
    API_ACTIVITY: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
    AUTHENTICATION: {1: "Logon", 2: "Logoff"},
    APPLICATION_LIFECYCLE: {3: "Start", 4: "Stop", 99: "Other"},
}


def _head(class_uid: int, activity_id: int) -> dict[str, Any]:
    class_name, category_uid, category_name = _CLASSES[class_uid]
    activity_name = _ACTIVITIES[class_uid][activity_id]
    return {
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_name": category_name,
        "category_uid": category_uid,
        "class_name": class_name,
        "class_uid": class_uid,
        "type_name": f"{class_name}: {activity_name}",
        "type_uid": class_uid * 100 + activity_id,
    }


# The classification part of each document is constant per (class, activity): build it once.
_HEADS: Final = {(c, a): _head(c, a) for c, acts in _ACTIVITIES.items() for a in acts}
_API_ACTIVITY_IDS: Final = {"create": 1, "read": 2, "update": 3, "delete": 4}
_AUTH_ACTIVITY_IDS: Final = {"login": 1, "logout": 2}
_LIFECYCLE_ACTIVITY_IDS: Final = {"audit.started": 3, "audit.stopped": 4}
_SEVERITY: Final = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium")}
_STATUS: Final = {"success": (1, "Success"), "aborted": (99, "Other")}
_USER_TYPE: Final = {"user": (1, "User"), "service": (4, "Service"), "api_key": (99, "API Key")}
_AUTH_PROTOCOL: Final = {"basic": (11, "Basic Authentication"), "none": (0, "Unknown")}
_AUTH_PROTOCOL_NAMES: Final = {"jwt": "JWT", "session": "Session", "api_key": "API Key"}
# OCSF's email_t pattern: an address that does not match stays in ``unmapped`` instead.
_EMAIL: Final = re.compile(r"^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$")
# Canonical fields copied to ``unmapped`` unchanged when present.
_UNMAPPED: Final = (
    "policy",
    "redactions",
    "truncated",
    "annotations",
    "websocket",
    "integrity",
    "details",
    "trace",
)


def export(event: Event) -> dict[str, Any]:
    """Return ``event`` as an OCSF 1.8.0 event document.

    The result may share nested values (bodies, annotations, ...) with ``event``;
    neither is modified.

    Args:
        event: a canonical auditmw event (schema_version "1.0").

    Raises:
        KeyError: a required canonical field is missing.

    .. versionadded:: 0.1.0
    """
    operation = event["operation"]
    if is_lifecycle(event):
        class_uid = APPLICATION_LIFECYCLE
        activity_id = _LIFECYCLE_ACTIVITY_IDS.get(event["kind"], 99)
    elif operation in _AUTH_ACTIVITY_IDS:
        class_uid, activity_id = AUTHENTICATION, _AUTH_ACTIVITY_IDS[operation]
    else:
        class_uid, activity_id = API_ACTIVITY, _API_ACTIVITY_IDS.get(operation, 99)
    doc = _HEADS[class_uid, activity_id].copy()
    start_us = time_us(event["time"])
    end_us = time_us(event["end_time"])
    outcome = event["outcome"]
    severity_id, severity = _SEVERITY.get(event["severity"], (4, "High"))
    status_id, status = _STATUS.get(outcome, (2, "Failure"))
    service = event["service"]
    unmapped: dict[str, Any] = {
        "schema_version": event["schema_version"],
        "kind": event["kind"],
        "operation": operation,
        "duration_us": event["duration_us"],
        "service": service,
    }
    doc.update(
        time=start_us // 1000,
        start_time=start_us // 1000,
        end_time=end_us // 1000,
        duration=event["duration_us"] // 1000,
        severity_id=severity_id,
        severity=severity,
        status_id=status_id,
        status=status,
        status_code=outcome,
        message=event["action"],
        metadata=_metadata(event, service),
        actor=_actor(event["actor"], unmapped),
        unmapped=unmapped,
    )
    if "outcome_reason" in event:
        doc["status_detail"] = event["outcome_reason"]
    if class_uid == APPLICATION_LIFECYCLE:
        _fill_lifecycle(doc, event, service, unmapped)
    else:
        _fill_request(doc, event, service, class_uid, unmapped)
    for name in _UNMAPPED:
        if name in event:
            unmapped[name] = event[name]
    return doc


def _metadata(event: Event, service: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "product": {
            "name": PRODUCT_NAME,
            "vendor_name": PRODUCT_NAME,
            "version": PRODUCT_VERSION,
        },
        "version": OCSF_VERSION,
        "uid": event["event_id"],
        "log_provider": PRODUCT_NAME,
        "log_name": service["name"],
        "original_time": event["time"],
    }
    integrity = event.get("integrity")
    if integrity is not None and "seq" in integrity:
        metadata["sequence"] = integrity["seq"]
    return metadata


def _actor(actor: dict[str, Any], unmapped: dict[str, Any]) -> dict[str, Any]:
    auth = actor["auth"]
    user = _user(actor, unmapped)
    result: dict[str, Any] = {"user": user}
    if "session_id" in actor:
        session: dict[str, Any] = {"uid": actor["session_id"]}
        if "issuer" in auth:
            session["issuer"] = auth["issuer"]
        result["session"] = session
    if "issuer" in auth:
        result["idp"] = {"uid": auth["issuer"], "issuer": auth["issuer"]}
    if "client_id" in actor:
        result["app_uid"] = result["app_name"] = actor["client_id"]
    extra: dict[str, Any] = {"type": actor["type"], "auth": auth}
    if "scopes" in actor:
        extra["scopes"] = actor["scopes"]
    unmapped["actor"] = extra
    return result


def _user(actor: dict[str, Any], unmapped: dict[str, Any]) -> dict[str, Any]:
    type_id, type_name = _USER_TYPE.get(actor["type"], (0, "Unknown"))
    user: dict[str, Any] = {"uid": actor.get("id", actor["type"]), "type_id": type_id}
    user["type"] = type_name
    if "name" in actor:
        user["name"] = actor["name"]
    email = actor.get("email")
    if email is not None:
        if _EMAIL.match(email):
            user["email_addr"] = email
        else:
            unmapped["actor_email"] = email
    if "roles" in actor:
        user["groups"] = [{"name": role, "type": "role"} for role in actor["roles"]]
    if "tenant_id" in actor:
        user["org"] = {"uid": actor["tenant_id"]}
    return user


def _fill_lifecycle(
    doc: dict[str, Any], event: Event, service: dict[str, Any], unmapped: dict[str, Any]
) -> None:
    app: dict[str, Any] = {"name": service["name"]}
    if "version" in service:
        app["version"] = service["version"]
    doc["app"] = app
    doc["message"] = event["kind"]
    # Application Lifecycle carries ``actor`` only through the OCSF "host" profile.
    doc["metadata"]["profiles"] = ["host"]
    unmapped["action"] = event["action"]
    unmapped["resource"] = event["resource"]


def _fill_request(
    doc: dict[str, Any],
    event: Event,
    service: dict[str, Any],
    class_uid: int,
    unmapped: dict[str, Any],
) -> None:
    request = event.get("request")
    response = event.get("response")
    source = event.get("source")
    doc["src_endpoint"] = src_endpoint(source)
    api_service: dict[str, Any] = {"name": service["name"]}
    if "version" in service:
        api_service["version"] = service["version"]
    api: dict[str, Any] = {"operation": event["action"], "service": api_service}
    if request is not None:
        api["request"] = {"uid": request["id"]}
        if "body" in request:
            api["request"]["data"] = request["body"]
        host, port = split_host(request["host"])
        doc["http_request"] = http_request(request, source, host, port, unmapped)
        dst: dict[str, Any] = {"svc_name": service["name"], "hostname": host}
        if port is not None:
            dst["port"] = port
        doc["dst_endpoint"] = dst
    if response is not None:
        api["response"] = api_response(event, response)
        doc["http_response"] = http_response(response, event["duration_us"])
    if class_uid == AUTHENTICATION:
        # Authentication has neither ``api`` nor ``resources`` (``api`` needs the cloud
        # profile): the target is the ``service``; the rest stays lossless in unmapped.
        _fill_authentication(doc, event, api_service)
        unmapped["resource"] = event["resource"]
        if "request" in api and "data" in api["request"]:
            unmapped["request_body"] = api["request"]["data"]
        if "response" in api and "data" in api["response"]:
            unmapped["response_body"] = api["response"]["data"]
        return
    doc["api"] = api
    doc["resources"] = [_resource(event["resource"])]
    trace = event.get("trace")
    if class_uid == API_ACTIVITY and trace is not None:
        # The optional OCSF "trace" profile carries W3C trace context on API Activity.
        doc["trace"] = {"uid": trace["trace_id"]}
        doc["metadata"]["profiles"] = ["trace"]


def _resource(resource: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"type": resource["type"], "name": resource["type"]}
    if "id" in resource:
        details["uid"] = resource["id"]
    if "route_params" in resource:
        details["data"] = resource["route_params"]
    return details


def _fill_authentication(doc: dict[str, Any], event: Event, service: dict[str, Any]) -> None:
    actor = doc["actor"]
    method = event["actor"]["auth"]["method"]
    protocol_id, protocol = _AUTH_PROTOCOL.get(method, (99, _AUTH_PROTOCOL_NAMES.get(method, "")))
    doc["user"] = actor["user"]
    doc["auth_protocol_id"] = protocol_id
    doc["auth_protocol"] = protocol or method
    doc["logon_type_id"], doc["logon_type"] = 3, "Network"
    doc["is_remote"] = True
    doc["service"] = service
    if "session" in actor:
        doc["session"] = actor["session"]
