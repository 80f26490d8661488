"""Elastic Common Schema 9.4 exporter.

The document is nested (``{"event": {"action": ...}}``) and uses only fields that
ECS 9.4 defines, with their ECS types and allowed categorization values.  Values ECS
has no field for (actor type, auth method, annotations, redactions, ...) go under
``labels``, whose values are all strings, with keys made of ``[a-z0-9_]``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from auditmw.core.canonical import dumps
from auditmw.formats._common import PRODUCT_NAME, http_version, is_ip, is_lifecycle, split_host

if TYPE_CHECKING:
    from auditmw.core.types import Event

__all__ = ["ECS_VERSION", "export"]

#: The ECS version of every exported document.
ECS_VERSION: Final = "9.4.0"

_OUTCOME: Final = {"success": "success", "aborted": "unknown"}
_SEVERITY: Final = {"info": 1, "low": 2, "medium": 3, "high": 4}
_REQUEST_TYPES: Final = {
    "create": "creation",
    "read": "access",
    "update": "change",
    "delete": "deletion",
    "other": "info",
}
_AUTH_TYPES: Final = {"login": "start", "logout": "end"}
# (category, type) of each lifecycle kind; ECS lists which types fit which category.
_LIFECYCLE: Final = {
    "audit.started": ("process", "start"),
    "audit.stopped": ("process", "end"),
    "audit.policy_loaded": ("configuration", "change"),
}
_LABEL_KEY: Final = re.compile(r"[^a-z0-9_]")


def export(event: Event) -> dict[str, Any]:
    """Return ``event`` as an ECS 9.4 document.

    Args:
        event: a canonical auditmw event (schema_version "1.0").

    Raises:
        KeyError: a required canonical field is missing.

    .. versionadded:: 0.1.0
    """
    actor = event["actor"]
    labels: dict[str, str] = {
        "auditmw_schema_version": event["schema_version"],
        "auditmw_kind": event["kind"],
        "operation": event["operation"],
        "outcome": event["outcome"],
        "resource_type": event["resource"]["type"],
    }
    doc: dict[str, Any] = {
        "@timestamp": event["time"],
        "ecs": {"version": ECS_VERSION},
        "event": _event(event),
        "log": {"level": event["severity"]},
        "message": f"{actor.get('id', '-')} {event['action']} {event['outcome']}",
        "user": _user(actor, labels),
        "service": _service(event["service"]),
        "labels": labels,
    }
    if "tenant_id" in actor:
        doc["organization"] = {"id": actor["tenant_id"]}
    _resource(doc, event["resource"], labels)
    if "source" in event:
        _source(doc, event["source"], labels)
    if "request" in event:
        _request(doc, event, labels)
    if "trace" in event:
        doc["trace"] = {"id": event["trace"]["trace_id"]}
        doc["span"] = {"id": event["trace"]["span_id"]}
    _extras(doc, event, labels)
    return doc


def _event(event: Event) -> dict[str, Any]:
    operation = event["operation"]
    outcome = event["outcome"]
    if is_lifecycle(event):
        category, kind_type = _LIFECYCLE.get(event["kind"], ("process", "info"))
        categories, types = [category], [kind_type]
    elif operation in _AUTH_TYPES:
        categories, types = ["authentication", "session"], [_AUTH_TYPES[operation]]
    else:
        categories, types = ["api", "web"], [_REQUEST_TYPES.get(operation, "info")]
        if outcome == "denied":
            types.append("denied")
        elif outcome == "error":
            types.append("error")
        elif outcome == "success":
            types.append("allowed")
    result: dict[str, Any] = {
        "kind": "event",
        "category": categories,
        "type": types,
        "action": event["action"],
        "outcome": _OUTCOME.get(outcome, "failure"),
        "id": event["event_id"],
        "start": event["time"],
        "end": event["end_time"],
        "duration": event["duration_us"] * 1000,
        "severity": _SEVERITY.get(event["severity"], 4),
        "module": PRODUCT_NAME,
        "dataset": "auditmw.audit",
        "provider": event["service"]["name"],
    }
    if "outcome_reason" in event:
        result["reason"] = event["outcome_reason"]
    integrity = event.get("integrity")
    if integrity is not None:
        if "hash" in integrity:
            result["hash"] = integrity["hash"]
        if "seq" in integrity:
            result["sequence"] = integrity["seq"]
    return result


def _user(actor: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    user: dict[str, Any] = {}
    for ours, theirs in (("id", "id"), ("name", "name"), ("email", "email"), ("roles", "roles")):
        if ours in actor:
            user[theirs] = actor[ours]
    labels["actor_type"] = actor["type"]
    if "scopes" in actor:
        # OAuth writes scopes space-separated: the same form keeps them readable and lossless.
        labels["actor_scopes"] = " ".join(actor["scopes"])
    if "client_id" in actor:
        labels["actor_client_id"] = actor["client_id"]
    if "session_id" in actor:
        labels["actor_session_id"] = actor["session_id"]
    auth = actor["auth"]
    labels["auth_method"] = auth["method"]
    labels["auth_verified"] = "true" if auth["verified"] else "false"
    for name in ("issuer", "key_id", "error"):
        if name in auth:
            labels[f"auth_{name}"] = auth[name]
    return user


def _service(service: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": service["name"]}
    if "version" in service:
        result["version"] = service["version"]
    if "environment" in service:
        result["environment"] = service["environment"]
    if "instance" in service:
        result["node"] = {"name": service["instance"]}
    return result


def _resource(doc: dict[str, Any], resource: dict[str, Any], labels: dict[str, str]) -> None:
    # ECS 9 "entity.target" is the entity an action was performed on; its ``type`` has a
    # closed value list, so our free-form resource type goes to ``sub_type``.
    target: dict[str, Any] = {"sub_type": resource["type"]}
    if "id" in resource:
        target["id"] = resource["id"]
        labels["resource_id"] = resource["id"]
    doc["entity"] = {"target": target}
    for key, value in resource.get("route_params", {}).items():
        labels[_label_key("route_param_", key)] = str(value)


def _source(doc: dict[str, Any], source: dict[str, Any], labels: dict[str, str]) -> None:
    endpoint: dict[str, Any] = {}
    if "ip" in source:
        # ``address`` takes any form; ``ip`` only a real address (not a socket path).
        endpoint["address"] = source["ip"]
        if is_ip(source["ip"]):
            endpoint["ip"] = source["ip"]
    if "port" in source:
        endpoint["port"] = source["port"]
    if endpoint:
        doc["source"] = endpoint
        doc["client"] = dict(endpoint)
    if "user_agent" in source:
        doc["user_agent"] = {"original": source["user_agent"]}
    if "forwarded_for" in source:
        labels["forwarded_for"] = source["forwarded_for"]


def _request(doc: dict[str, Any], event: Event, labels: dict[str, str]) -> None:
    request = event["request"]
    host, port = split_host(request["host"])
    url: dict[str, Any] = {"scheme": request["scheme"], "domain": host, "path": request["path"]}
    original = request["path"]
    if port is not None:
        url["port"] = port
    if "query" in request:
        url["query"] = request["query"]
        original = f"{original}?{request['query']}"
    url["original"] = original
    url["full"] = f"{request['scheme']}://{request['host']}{original}"
    doc["url"] = url
    http_request: dict[str, Any] = {
        "id": request["id"],
        "method": request["method"],
        "bytes": request["bytes"],
    }
    http: dict[str, Any] = {"version": http_version(request["protocol"]), "request": http_request}
    _message(http_request, request, "request", labels)
    if "route" in request:
        labels["http_route"] = request["route"]
    response = event.get("response")
    if response is not None:
        http_response: dict[str, Any] = {
            "status_code": response["status_code"],
            "bytes": response["bytes"],
        }
        _message(http_response, response, "response", labels)
        http["response"] = http_response
    doc["http"] = http
    doc["network"] = {"protocol": "websocket" if event["kind"] == "websocket" else "http"}


def _message(
    target: dict[str, Any], message: dict[str, Any], side: str, labels: dict[str, str]
) -> None:
    headers = message.get("headers", {})
    for name, value in headers.items():
        labels[_label_key(f"http_{side}_header_", name)] = value
    if "content-type" in headers:
        target["mime_type"] = headers["content-type"]
    body = message.get("body")
    if body is None:
        return
    ecs_body: dict[str, Any] = {}
    if "size" in body:
        ecs_body["bytes"] = body["size"]
    if "json" in body:
        ecs_body["content"] = dumps(body["json"]).decode()
    elif "text" in body:
        ecs_body["content"] = body["text"]
    if ecs_body:
        target["body"] = ecs_body
    if "content_type" in body and "mime_type" not in target:
        target["mime_type"] = body["content_type"]
    for name in ("sha256", "truncated"):
        if name in body:
            labels[f"http_{side}_body_{name}"] = str(body[name]).lower()


def _extras(doc: dict[str, Any], event: Event, labels: dict[str, str]) -> None:
    policy = event["policy"]
    doc["rule"] = {"ruleset": policy["id"], "name": policy["rule"], "version": policy["hash"]}
    for name in ("redactions", "truncated"):
        if name in event:
            # A JSON list keeps every pointer intact whatever characters it holds.
            labels[name] = dumps(event[name]).decode()
    for key, value in event.get("annotations", {}).items():
        labels[_label_key("annotation_", key)] = value
    for key, value in event.get("websocket", {}).items():
        labels[f"websocket_{key}"] = str(value)
    for key, value in event.get("integrity", {}).items():
        # hash and seq already sit in event.hash and event.sequence: each value once, so
        # a verifier knows the one place to look.
        if key not in ("hash", "seq"):
            labels[f"integrity_{key}"] = str(value)
    details = event.get("details")
    if details is not None:
        for key, value in details.items():
            labels[_label_key("detail_", key)] = str(value)
        if "error" in details:
            doc["error"] = {"type": details["error"], "message": details.get("message", "")}
    elif event["outcome"] == "error" and "outcome_reason" in event:
        doc["error"] = {"type": event["outcome_reason"].removeprefix("exception:")}


def _label_key(prefix: str, key: str) -> str:
    return prefix + _LABEL_KEY.sub("_", key.lower())
