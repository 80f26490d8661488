"""Event corpus for the exporter tests.

``corpus_event`` parametrizes a test over a corpus that covers every operation,
outcome, actor type and lifecycle kind, with and without bodies, redactions,
annotations, WebSocket and integrity fields.  ``make_event`` builds one event;
``event_strategy`` is a hypothesis strategy of canonical events.  The ``*_check``
fixtures return the problems of a document against each official schema.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import ipaddress
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from hypothesis import strategies as st

from auditmw.canonical import dumps, loads

if TYPE_CHECKING:
    from auditmw.types import Event

OPERATIONS = ["create", "read", "update", "delete", "login", "logout", "other"]
OUTCOMES = ["success", "denied", "failure", "error", "aborted"]
SEVERITY = {"success": "info", "failure": "low", "aborted": "low", "denied": "medium"}
STATUS = {"success": 200, "denied": 403, "failure": 404, "error": 500, "aborted": 200}
METHODS = {"create": "POST", "read": "GET", "update": "PUT", "delete": "DELETE"}
ACTOR_TYPES = ["user", "service", "api_key", "anonymous"]
AUTH_METHODS = {"user": "jwt", "service": "basic", "api_key": "api_key", "anonymous": "none"}
LIFECYCLE_KINDS = [
    "audit.started",
    "audit.stopped",
    "audit.policy_loaded",
    "audit.events_dropped",
    "audit.sink_failed",
    "audit.sink_recovered",
]
LIFECYCLE_DETAILS: dict[str, dict[str, Any]] = {
    "audit.started": {"pid": 123, "version": "0.1.0"},
    "audit.stopped": {"pid": 123, "version": "0.1.0"},
    "audit.policy_loaded": {"policy_id": "default"},
    "audit.events_dropped": {
        "count": 12,
        "first_time": "2026-11-30T03:58:00.000001Z",
        "last_time": "2026-11-30T03:58:59.999999Z",
    },
    "audit.sink_failed": {
        "sink": "PostgresSink:0",
        "error": "SinkUnavailableError",
        "message": "connection refused",
    },
    "audit.sink_recovered": {"sink": "PostgresSink:0"},
}
INTEGRITY = {"chain_id": "c-1", "seq": 7, "prev": "ab" * 32, "hash": "cd" * 32, "mac": "ef" * 32}
ECS_SCHEMA = "ecs_fields-v9.4.0.json"
CLOUDEVENTS_SCHEMA = "cloudevents-1.0.json"


def _actor(actor_type: str, *, full: bool) -> dict[str, Any]:
    method = AUTH_METHODS[actor_type]
    if actor_type == "anonymous":
        return {
            "id": "anonymous",
            "type": "anonymous",
            "auth": {"method": "none", "verified": False, "error": "missing"},
        }
    actor: dict[str, Any] = {
        "id": f"{actor_type}-42",
        "type": actor_type,
        "auth": {"method": method, "verified": True},
    }
    if full:
        actor.update(
            name="Ada",
            email="ada@example.com",
            roles=["admin", "auditor"],
            scopes=["orders:write", "orders:read"],
            tenant_id="t1",
            client_id="web",
            session_id="jti-1",
        )
        actor["auth"].update(issuer="https://idp.example.com/", key_id="k1")
    return actor


def make_event(
    *,
    operation: str = "update",
    outcome: str = "success",
    actor_type: str = "user",
    kind: str = "http",
    full: bool = True,
    bodies: bool = False,
    integrity: bool = False,
) -> Event:
    """Build one canonical HTTP, WebSocket or login event with the given traits."""
    status = STATUS[outcome]
    if kind == "websocket":
        status = 101 if outcome == "success" else 403
    method = "GET" if kind == "websocket" else METHODS.get(operation, "POST")
    event: Event = {
        "schema_version": "1.0",
        "event_id": "0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6e",
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.125456Z",
        "duration_us": 2000,
        "kind": kind,
        "action": f"auth.{operation}"
        if operation in ("login", "logout")
        else f"orders.{operation}",
        "operation": operation,
        "outcome": outcome,
        "severity": SEVERITY.get(outcome, "high"),
        "actor": _actor(actor_type, full=full),
        "source": {"ip": "203.0.113.7"},
        "request": {
            "id": "req-abc",
            "method": method,
            "path": "/orders/42",
            "scheme": "https",
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "bytes": 0,
        },
        "response": {"status_code": status, "bytes": 512},
        "resource": {"type": "orders"},
        "service": {"name": "orders-api", "instance": "host-1/1234"},
        "policy": {"id": "default", "hash": "sha256:" + "0" * 64, "rule": "default"},
    }
    if outcome != "success":
        event["outcome_reason"] = "authz_denied" if outcome == "denied" else "exception:ValueError"
    if full:
        _add_full(event)
    if kind == "websocket":
        event["websocket"] = {"close_code": 1000, "messages_received": 3, "messages_sent": 2}
    if bodies:
        event["request"]["body"] = {
            "content_type": "application/json",
            "size": 12,
            "sha256": "ab" * 32,
            "json": {"qty": 2, "note": "x"},
            "truncated": True,
        }
        event["response"]["body"] = {"content_type": "text/plain", "size": 2, "text": "ok"}
    if integrity:
        event["integrity"] = dict(INTEGRITY)
    return event


def _add_full(event: Event) -> None:
    event["source"].update(
        port=51234, user_agent="Mozilla/5.0 (X11)", forwarded_for="203.0.113.7, unknown, 10.0.0.1"
    )
    event["request"].update(
        route="/orders/{order_id}",
        query="expand=items&token=%5BREDACTED%5D",
        host="api.example.com:8443",
        headers={"content-type": "application/json", "x-request-id": "req-abc"},
        bytes=128,
    )
    event["response"]["headers"] = {"content-type": "application/json"}
    event["resource"].update(id="42", route_params={"order_id": "42"})
    event["service"].update(version="1.2.3", environment="prod")
    event["trace"] = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
    event["redactions"] = ["/request/query/token"]
    event["truncated"] = ["/source/user_agent"]
    event["annotations"] = {"ticket": "T-1", "reviewed.by": "ops team"}


def make_lifecycle_event(kind: str, *, integrity: bool = False) -> Event:
    """Build one auditmw lifecycle record of ``kind``."""
    event: Event = {
        "schema_version": "1.0",
        "event_id": "0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6f",
        "time": "2026-11-30T03:59:01.000000Z",
        "end_time": "2026-11-30T03:59:01.000000Z",
        "duration_us": 0,
        "kind": kind,
        "action": kind,
        "operation": "other",
        "outcome": "success",
        "severity": "high" if kind in ("audit.events_dropped", "audit.sink_failed") else "info",
        "actor": {
            "id": "auditmw",
            "type": "service",
            "auth": {"method": "none", "verified": False},
        },
        "resource": {"type": "audit"},
        "service": {"name": "orders-api", "instance": "host-1/1234"},
        "policy": {"id": "default", "hash": "sha256:" + "1" * 64, "rule": "lifecycle"},
        "details": copy.deepcopy(LIFECYCLE_DETAILS[kind]),
    }
    if integrity:
        event["integrity"] = dict(INTEGRITY)
    return event


def _build_corpus() -> list[Any]:
    params: list[Any] = []
    traits = itertools.cycle(itertools.product(ACTOR_TYPES, [True, False]))
    for operation, outcome in itertools.product(OPERATIONS, OUTCOMES):
        actor_type, rich = next(traits)
        kind = "auth" if operation in ("login", "logout") and rich else "http"
        event = make_event(
            operation=operation,
            outcome=outcome,
            actor_type=actor_type,
            kind=kind,
            full=rich,
            bodies=rich,
            integrity=not rich,
        )
        params.append(pytest.param(event, id=f"{operation}-{outcome}-{actor_type}-{kind}"))
    for actor_type, full in itertools.product(ACTOR_TYPES, [True, False]):
        event = make_event(actor_type=actor_type, full=full)
        params.append(pytest.param(event, id=f"actor-{actor_type}-{'full' if full else 'min'}"))
    for outcome in ("success", "denied"):
        event = make_event(kind="websocket", operation="read", outcome=outcome, integrity=True)
        params.append(pytest.param(event, id=f"websocket-{outcome}"))
    for kind in LIFECYCLE_KINDS:
        params.append(pytest.param(make_lifecycle_event(kind), id=kind))
        params.append(pytest.param(make_lifecycle_event(kind, integrity=True), id=f"{kind}-chain"))
    params.extend(_odd_events())
    return params


def _odd_events() -> list[Any]:
    ipv6 = make_event(operation="read")
    ipv6["source"]["ip"] = "2001:db8::1"
    ipv6["request"]["host"] = "[2001:db8::2]:8443"
    custom = make_event(operation="other", full=False)
    custom["request"]["method"] = "PROPFIND"
    odd_email = make_event()
    odd_email["actor"]["email"] = "not an email"
    no_ip = make_event(full=False)
    del no_ip["source"]["ip"]
    socket = make_event(full=False)
    socket["source"]["ip"] = "/run/app.sock"
    return [
        pytest.param(ipv6, id="ipv6-host-port"),
        pytest.param(custom, id="custom-method"),
        pytest.param(odd_email, id="invalid-email"),
        pytest.param(no_ip, id="no-source-ip"),
        pytest.param(socket, id="unix-socket-client"),
    ]


CORPUS = _build_corpus()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that asks for ``corpus_event`` over the whole corpus."""
    if "corpus_event" in metafunc.fixturenames:
        metafunc.parametrize("corpus_event", CORPUS)


@pytest.fixture
def make() -> Callable[..., Event]:
    """Return the :func:`make_event` factory."""
    return make_event


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """Return ``tests/data/schemas``: the pinned reference schemas kept with the tests."""
    return Path(__file__).resolve().parents[2] / "data" / "schemas"


# -- hypothesis ---------------------------------------------------------------------

_text = st.text(st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]), min_size=1)
_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
_ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    # ASGI servers may report a test client's name or a Unix socket as the client.
    st.sampled_from(["testclient", "/run/app.sock"]),
)
_times = st.integers(min_value=0, max_value=4_102_444_799_999_999)


def _format_us(us: int) -> str:
    value = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@st.composite
def _events(draw: st.DrawFn) -> Event:
    lifecycle = draw(st.booleans())
    if lifecycle:
        event = make_lifecycle_event(draw(st.sampled_from(LIFECYCLE_KINDS)))
    else:
        event = make_event(
            operation=draw(st.sampled_from(OPERATIONS)),
            outcome=draw(st.sampled_from(OUTCOMES)),
            actor_type=draw(st.sampled_from(ACTOR_TYPES)),
            kind=draw(st.sampled_from(["http", "websocket"])),
            full=draw(st.booleans()),
            bodies=draw(st.booleans()),
            integrity=draw(st.booleans()),
        )
        event["source"]["ip"] = draw(_ips)
        event["request"]["path"] = "/" + draw(_text)
        event["actor"]["id"] = draw(_ids)
    start = draw(_times)
    duration = draw(st.integers(min_value=0, max_value=10**9))
    event["time"] = _format_us(start)
    event["end_time"] = _format_us(start + duration)
    event["duration_us"] = duration
    event["event_id"] = str(draw(st.uuids()))
    event["resource"]["type"] = draw(_ids)
    if draw(st.booleans()):
        event["resource"]["id"] = draw(_text)
    event["action"] = draw(_ids) + "." + event["operation"]
    return event


@pytest.fixture(scope="session")
def event_strategy() -> st.SearchStrategy[Event]:
    """Return a hypothesis strategy of canonical events."""
    return _events()


# -- validators shared by the format tests --------------------------------------------

_TEXT_TYPES = {"keyword", "wildcard", "match_only_text", "constant_keyword", "text"}
_LABEL_KEY = re.compile(r"[a-z0-9_]+\Z")
_CE_CONTEXT = {"specversion", "id", "source", "type", "time", "subject"}
_CE_CONTEXT |= {"datacontenttype", "dataschema", "data"}
_CE_EXTENSION = re.compile(r"[a-z0-9]{1,20}\Z")

Checker = Callable[[dict[str, Any]], list[str]]


@functools.cache
def _ocsf_validator(class_uid: int, profiles: tuple[str, ...]) -> Any:
    ocsf_json_schema = pytest.importorskip("ocsf_json_schema")
    schema = ocsf_json_schema.OcsfJsonSchemaEmbedded(ocsf_json_schema.get_ocsf_schema("1.8.0"))
    class_schema = schema.get_class_schema(
        schema.lookup_class_name_from_uid(class_uid), list(profiles)
    )
    return jsonschema.Draft202012Validator(class_schema)


def ocsf_errors(doc: dict[str, Any]) -> list[str]:
    """Return the OCSF 1.8.0 schema errors of ``doc`` (with its declared profiles)."""
    profiles = tuple(doc["metadata"].get("profiles", ()))
    validator = _ocsf_validator(doc["class_uid"], profiles)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    if doc["type_uid"] != doc["class_uid"] * 100 + doc["activity_id"]:
        problems.append(f"type_uid {doc['type_uid']} != class_uid * 100 + activity_id")
    return problems


@pytest.fixture(scope="session")
def ocsf_check() -> Checker:
    """Return a function listing the OCSF 1.8.0 problems of a document."""
    return ocsf_errors


@pytest.fixture(scope="session")
def ecs_fields(schema_dir: Path) -> dict[str, Any]:
    """Return the ECS 9.4 flat field list, keyed by dotted field name."""
    fields: dict[str, Any] = json.loads((schema_dir / ECS_SCHEMA).read_text())
    return fields


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "labels":
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _ecs_scalar_ok(ecs_type: str, value: Any) -> bool:
    if ecs_type in _TEXT_TYPES:
        return isinstance(value, str)
    if ecs_type in {"long", "integer"}:
        return isinstance(value, int) and not isinstance(value, bool)
    if ecs_type == "boolean":
        return isinstance(value, bool)
    if ecs_type == "date":
        return isinstance(value, str) and dt.datetime.fromisoformat(value).tzinfo is not None
    if ecs_type == "ip":
        return isinstance(value, str) and bool(ipaddress.ip_address(value))
    return False


def ecs_errors(doc: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """Return every way ``doc`` departs from the ECS field list (empty when conformant)."""
    problems = []
    for name, value in _flatten(doc).items():
        spec = fields.get(name)
        if spec is None:
            problems.append(f"{name}: not an ECS field")
        elif name == "labels":
            problems.extend(
                f"labels.{key}: bad key or non-string value {label!r}"
                for key, label in value.items()
                if not _LABEL_KEY.match(key) or not isinstance(label, str)
            )
        else:
            problems.extend(_ecs_value_errors(name, value, spec))
    expected = {
        a["name"]: set(a.get("expected_event_types", []))
        for a in fields["event.category"]["allowed_values"]
    }
    event = doc["event"]
    fitting = set().union(*(expected.get(c, set()) for c in event["category"]))
    problems.extend(f"event.type {t!r} fits no category" for t in event["type"] if t not in fitting)
    return problems


def _ecs_value_errors(name: str, value: Any, spec: dict[str, Any]) -> list[str]:
    problems = []
    values = value if isinstance(value, list) else [value]
    if "array" in spec.get("normalize", []) and not isinstance(value, list):
        problems.append(f"{name}: ECS expects an array")
    problems.extend(
        f"{name}: {item!r} is not an ECS {spec['type']}"
        for item in values
        if not _ecs_scalar_ok(spec["type"], item)
    )
    allowed = {a["name"] for a in spec.get("allowed_values", [])}
    if allowed and not set(values) <= allowed:
        problems.append(f"{name}: {set(values) - allowed} not among the allowed values")
    return problems


@pytest.fixture(scope="session")
def ecs_check(ecs_fields: dict[str, Any]) -> Checker:
    """Return a function listing the ECS 9.4 problems of a document."""
    return functools.partial(ecs_errors, fields=ecs_fields)


def _hex_ids_to_base64(body: dict[str, Any]) -> dict[str, Any]:
    # OTLP/JSON writes trace/span ids as hex, but protobuf's generic JSON mapping (used by
    # json_format.Parse) expects base64 for bytes fields: convert before parsing.
    for resource_logs in body["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    return body


@pytest.fixture(scope="session")
def otlp_parse() -> Callable[[dict[str, Any]], Any]:
    """Return a function parsing an OTLP/JSON body into ``ExportLogsServiceRequest``."""
    json_format = pytest.importorskip("google.protobuf.json_format")
    service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")

    def parse(body: dict[str, Any]) -> Any:
        message = service.ExportLogsServiceRequest()
        json_format.Parse(dumps(_hex_ids_to_base64(loads(dumps(body)))), message)
        return message

    return parse


@pytest.fixture(scope="session")
def cloudevents_validator(schema_dir: Path) -> jsonschema.Draft7Validator:
    """Return a format-checking validator for the CloudEvents 1.0 JSON Schema."""
    schema = json.loads((schema_dir / CLOUDEVENTS_SCHEMA).read_text())
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    missing = {"uri-reference", "uri", "date-time"} - set(checker.checkers)
    if missing:
        pytest.fail(f"jsonschema cannot check formats {missing}: install rfc3986-validator")
    return jsonschema.Draft7Validator(schema, format_checker=checker)


@pytest.fixture(scope="session")
def cloudevents_check(cloudevents_validator: jsonschema.Draft7Validator) -> Checker:
    """Return a function listing the CloudEvents 1.0 problems of a document."""

    def check(doc: dict[str, Any]) -> list[str]:
        problems = [e.message for e in cloudevents_validator.iter_errors(doc)]
        for name in doc.keys() - _CE_CONTEXT:
            if not _CE_EXTENSION.match(name) or not isinstance(doc[name], str | int | bool):
                problems.append(f"extension {name!r} is not a valid CloudEvents extension")
        return problems

    return check
