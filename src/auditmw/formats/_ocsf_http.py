"""OCSF 1.8.0 objects for the HTTP side of an event: endpoints, request, response.

Split from :mod:`auditmw.formats.ocsf` to keep modules short; see there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from auditmw.formats._common import http_version, is_ip

if TYPE_CHECKING:
    from auditmw.core.types import Event

__all__ = ["api_response", "http_request", "http_response", "src_endpoint"]

_HTTP_METHODS: Final = frozenset(
    ["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PATCH"]
)


def src_endpoint(source: dict[str, Any] | None) -> dict[str, Any]:
    if source is None or "ip" not in source:
        # API Activity requires src_endpoint; say honestly that the origin is unknown.
        return {"name": "unknown"}
    address = source["ip"]
    # A non-IP client address (Unix socket, test client) is the endpoint's name.
    endpoint: dict[str, Any] = {"ip" if is_ip(address) else "name": address}
    if "port" in source:
        endpoint["port"] = source["port"]
    return endpoint


def http_request(
    request: dict[str, Any],
    source: dict[str, Any] | None,
    host: str,
    port: int | None,
    unmapped: dict[str, Any],
) -> dict[str, Any]:
    path = request["path"]
    scheme = request["scheme"]
    url: dict[str, Any] = {"scheme": scheme, "hostname": host, "path": path}
    url_string = f"{scheme}://{request['host']}{path}"
    if port is not None:
        url["port"] = port
    if "query" in request:
        url["query_string"] = request["query"]
        url_string = f"{url_string}?{request['query']}"
    url["url_string"] = url_string
    result: dict[str, Any] = {"uid": request["id"], "url": url, "length": request["bytes"]}
    result["version"] = http_version(request["protocol"])
    method = request["method"]
    if method in _HTTP_METHODS:
        result["http_method"] = method
    else:
        unmapped["request_method"] = method
    if "route" in request:
        unmapped["request_route"] = request["route"]
    if "headers" in request:
        result["http_headers"] = [{"name": k, "value": v} for k, v in request["headers"].items()]
    body = request.get("body")
    if body is not None and "size" in body:
        result["body_length"] = body["size"]
    if source is not None:
        if "user_agent" in source:
            result["user_agent"] = source["user_agent"]
        if "forwarded_for" in source:
            unmapped["source_forwarded_for"] = source["forwarded_for"]
            result["x_forwarded_for"] = _ips(source["forwarded_for"])
    return result


def _ips(forwarded_for: str) -> list[str]:
    # X-Forwarded-For may hold obfuscated ("_hidden") or "unknown" hops; ip_t allows only IPs.
    ips = []
    for item in forwarded_for.split(","):
        candidate = item.strip()
        if is_ip(candidate):
            ips.append(candidate)
    return ips


def api_response(event: Event, response: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"code": response["status_code"]}
    if event["outcome"] != "success" and "outcome_reason" in event:
        result["error"] = event["outcome_reason"]
    if "body" in response:
        result["data"] = response["body"]
    return result


def http_response(response: dict[str, Any], duration_us: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "code": response["status_code"],
        "length": response["bytes"],
        "latency": duration_us // 1000,
    }
    headers = response.get("headers")
    if headers:
        result["http_headers"] = [{"name": k, "value": v} for k, v in headers.items()]
        if "content-type" in headers:
            result["content_type"] = headers["content-type"]
    body = response.get("body")
    if body is not None and "size" in body:
        result["body_length"] = body["size"]
    return result
