"""Validation of policy documents: messages, and agreement with the published JSON Schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from auditmw.core.policy_schema import validate_document
from auditmw.exceptions import PolicyError
from auditmw.policy import Policy, policy_schema

ERRORS = [
    pytest.param(
        {"rules": [{"level": "verbose"}]},
        "/rules/0/level",
        "policy /rules/0/level: 'verbose' is not allowed; "
        "use one of 'none', 'metadata', 'request', 'request_response'",
        id="level",
    ),
    pytest.param(
        {"default_level": "all"},
        "/default_level",
        "policy /default_level: 'all' is not allowed; "
        "use one of 'none', 'metadata', 'request', 'request_response'",
        id="default-level",
    ),
    pytest.param(
        {"rules": [{"level": "none", "method": ["GET"]}]},
        "/rules/0/method",
        "policy /rules/0/method: unknown key 'method' (did you mean 'methods'?); allowed keys: "
        "action, actor_types, actors, auth_methods, headers, id, level, max_body_bytes, methods, "
        "outcomes, paths, redact, resource, roles, routes, status",
        id="unknown-rule-key",
    ),
    pytest.param(
        {"rulez": []},
        "/rulez",
        "policy /rulez: unknown key 'rulez' (did you mean 'rules'?); allowed keys: "
        "default_level, delivery, headers, id, identity, integrity, limits, max_body_bytes, "
        "redaction, retention, rules, service, sinks, version",
        id="unknown-top-key",
    ),
    pytest.param(
        {"rules": [{"methods": ["GET"]}]},
        "/rules/0",
        "policy /rules/0: the key 'level' is required",
        id="missing-level",
    ),
    pytest.param(
        {"rules": [{"level": "none", "methods": ["get"]}]},
        "/rules/0/methods/0",
        "policy /rules/0/methods/0: 'get' is not allowed; use one of 'GET', 'HEAD', 'POST', "
        "'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'WEBSOCKET'",
        id="method-case",
    ),
    pytest.param(
        {"rules": [{"level": "none", "methods": "GET"}]},
        "/rules/0/methods",
        "policy /rules/0/methods: expected a list, got 'GET'",
        id="not-a-list",
    ),
    pytest.param(
        {"rules": [{"level": "none", "methods": []}]},
        "/rules/0/methods",
        "policy /rules/0/methods: must list at least one value "
        "(leave the key out to match anything)",
        id="empty-list",
    ),
    pytest.param(
        {"rules": [{"level": "none", "paths": ["orders"]}]},
        "/rules/0/paths/0",
        "policy /rules/0/paths/0: 'orders' does not match the pattern ^/",
        id="relative-path",
    ),
    pytest.param(
        {"rules": [{"level": "request", "status": ["6xx"]}]},
        "/rules/0/status/0",
        "policy /rules/0/status/0: '6xx' does not match the pattern "
        "^([1-5]xx|[1-5][0-9]{2}-[1-5][0-9]{2})$",
        id="status-class",
    ),
    pytest.param(
        {"rules": [{"level": "request", "status": [99]}]},
        "/rules/0/status/0",
        "policy /rules/0/status/0: 99 is below the minimum 100",
        id="status-low",
    ),
    pytest.param(
        {"rules": [{"level": "request", "status": [1.5]}]},
        "/rules/0/status/0",
        "policy /rules/0/status/0: expected an integer or a string, got 1.5",
        id="status-float",
    ),
    pytest.param(
        {"rules": [{"level": "request", "status": ["499-400"]}]},
        "/rules/0/status/0",
        "policy /rules/0/status/0: range '499-400' is empty; write it low-high, e.g. '400-499'",
        id="status-range-reversed",
    ),
    pytest.param(
        {"rules": [{"level": "request", "max_body_bytes": True}]},
        "/rules/0/max_body_bytes",
        "policy /rules/0/max_body_bytes: expected an integer, got True",
        id="bool-is-not-int",
    ),
    pytest.param(
        {"rules": [{"level": "request", "max_body_bytes": -1}]},
        "/rules/0/max_body_bytes",
        "policy /rules/0/max_body_bytes: -1 is below the minimum 0",
        id="negative-cap",
    ),
    pytest.param(
        {"rules": [{"level": "request", "resource": {"type": "order", "key": "x"}}]},
        "/rules/0/resource/key",
        "policy /rules/0/resource/key: unknown key 'key'; allowed keys: id, type",
        id="resource-key",
    ),
    pytest.param(
        {"redaction": {"action": "hash"}},
        "/redaction/action",
        "policy /redaction/action: 'hash' is not allowed; use one of 'drop', 'mask', 'hmac'",
        id="redaction-action",
    ),
    pytest.param(
        {"redaction": {"client_ip": "anonymize"}},
        "/redaction/client_ip",
        "policy /redaction/client_ip: 'anonymize' is not allowed; "
        "use one of 'keep', 'truncate', 'hmac'",
        id="client-ip",
    ),
    pytest.param(
        {"redaction": {"detectors": ["ssn"]}},
        "/redaction/detectors/0",
        "policy /redaction/detectors/0: 'ssn' is not allowed; "
        "use one of 'jwt', 'bearer', 'card', 'password_keys'",
        id="detector",
    ),
    pytest.param(
        {"redaction": {"fields": [{"name": "x"}]}},
        "/redaction/fields/0/name",
        "policy /redaction/fields/0/name: unknown key 'name'; allowed keys: action, field, keep",
        id="field-object",
    ),
    pytest.param(
        {"redaction": {"fields": [""]}},
        "/redaction/fields/0",
        "policy /redaction/fields/0: must not be empty",
        id="field-empty",
    ),
    pytest.param(
        {"redaction": {"fields": [{"field": "x", "action": "hmac"}]}},
        "/redaction/fields/0/action",
        "policy /redaction/fields/0/action: 'hmac' needs a key; set /redaction/hmac_key_id",
        id="hmac-without-key-id",
    ),
    pytest.param(
        {"redaction": {"hmac_key_id": "k1", "hmac_key_env": "MY_KEY"}},
        "/redaction/hmac_key_id",
        "policy /redaction/hmac_key_id: no key for key id 'k1'; set MY_KEY "
        "(read by load_policy(..., environ=os.environ)) or pass keys={'k1': b'...'}",
        id="hmac-key-missing",
    ),
    pytest.param(
        {"headers": ["x header"]},
        "/headers/0",
        "policy /headers/0: 'x header' does not match the pattern ^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        id="header-name",
    ),
    pytest.param(
        {"service": {"version": "1"}},
        "/service",
        "policy /service: the key 'name' is required",
        id="service-name",
    ),
    pytest.param(
        {"sinks": [{"type": "kafka"}]},
        "/sinks/0/type",
        "policy /sinks/0/type: 'kafka' is not allowed; use one of 'file', 'stdout', 'logging', "
        "'memory', 'http', 'otlp', 'syslog', 'postgres', 'nats', 'django'",
        id="sink-type",
    ),
    pytest.param(
        {"delivery": {"overflow": "drop"}},
        "/delivery/overflow",
        "policy /delivery/overflow: 'drop' is not allowed; use one of 'block', 'drop_and_record'",
        id="overflow",
    ),
    pytest.param(
        {"version": 2},
        "/version",
        "policy /version: 2 is not allowed; use one of 1",
        id="version",
    ),
    pytest.param(
        {"rules": {"level": "none"}},
        "/rules",
        "policy /rules: expected a list, got {'level': 'none'}",
        id="rules-table",
    ),
    pytest.param(
        {"rules": [{"id": "a", "level": "none"}, {"id": "a", "level": "request"}]},
        "/rules/1/id",
        "policy /rules/1/id: duplicate rule id 'a' (also /rules/0); "
        "each event names its rule, so ids must be unique",
        id="duplicate-id",
    ),
    pytest.param(
        {"rules": [{"id": "default", "level": "request"}]},
        "/rules/0/id",
        "policy /rules/0/id: 'default' is reserved (stamped when no rule matches, or on "
        "auditmw's own events); choose another id",
        id="reserved-id",
    ),
    pytest.param(
        {"rules": [{"level": "none", "status": [401]}]},
        "/rules/0/level",
        "policy /rules/0/level: rule 'rules[0]' sets level 'none' on traffic that is always "
        "recorded (401/403 denials, authentication failures); remove the rule or choose "
        "'metadata' or higher",
        id="floor",
    ),
]


class TestMessages:
    """Every error names the key path, the bad value and what is allowed."""

    @pytest.mark.parametrize(("document", "path", "message"), ERRORS)
    def test_message(self, document: dict[str, Any], path: str, message: str) -> None:
        """Loading fails with the exact message and path."""
        with pytest.raises(PolicyError) as info:
            Policy(document)
        assert str(info.value) == message
        assert info.value.path == path

    def test_long_values_are_shortened(self) -> None:
        """A huge bad value does not flood the message."""
        with pytest.raises(PolicyError) as info:
            Policy({"default_level": "x" * 500})
        assert len(str(info.value)) < 200


#: Errors found by checks beyond the schema (the document is schema-valid).
SEMANTIC = frozenset(
    {
        "status-range-reversed", "hmac-without-key-id", "hmac-key-missing", "floor",
        "duplicate-id", "reserved-id",
    }
)  # fmt: skip

AGREEMENT = [
    *(pytest.param(p.values[0], p.id in SEMANTIC, id=f"error-{p.id}") for p in ERRORS),
    pytest.param({}, True, id="empty"),
    pytest.param({"version": 1, "id": "p-1", "default_level": "none"}, True, id="top"),
    pytest.param(
        {
            "rules": [
                {
                    "id": "r1",
                    "level": "request_response",
                    "methods": ["GET", "POST"],
                    "routes": ["/orders/{order_id}"],
                    "paths": ["/orders/**"],
                    "actors": ["ada"],
                    "roles": ["admin"],
                    "actor_types": ["user"],
                    "auth_methods": ["jwt"],
                    "status": [200, "5xx", "400-499"],
                    "outcomes": ["success"],
                    "action": "orders.read",
                    "resource": {"type": "order", "id": "{order_id}"},
                    "max_body_bytes": 100,
                    "headers": ["content-type"],
                    "redact": ["ssn", "/a/b", {"field": "iban", "action": "mask", "keep": 4}],
                }
            ]
        },
        True,
        id="full-rule",
    ),
    pytest.param(
        {"sinks": [{"type": "file", "path": "/tmp/a.jsonl", "fsync": "never"}]},
        True,
        id="sink-options-pass-through",
    ),
    pytest.param({"sinks": [{"path": "x"}]}, False, id="sink-without-type"),
    pytest.param({"integrity": {"anything": 1}}, False, id="integrity-closed"),
    pytest.param({"integrity": {"mac_key_env": "MAC"}}, True, id="integrity-env-reference"),
    pytest.param(
        {"identity": {"jwt": {"algorithms": ["HS256"], "claims": {"roles": ["a", "b"]}}}},
        True,
        id="jwt-claims",
    ),
    pytest.param(
        {"identity": {"jwt": {"algorithms": ["HS256"], "claims": {"roles": 1}}}},
        False,
        id="jwt-claims-not-strings",
    ),
    pytest.param({"identity": {"jwt": {"secret_env": "S"}}}, False, id="jwt-needs-algorithms"),
    pytest.param({"identity": {"api_key": {"registry": 1}}}, False, id="api-key-registry-type"),
    pytest.param({"limits": {"path": 0}}, False, id="limits-minimum"),
    pytest.param(
        {"identity": {"jwt": {"algorithms": ["RS256"], "issuer": "x"}, "audit_id_header": False}},
        True,
        id="id",
    ),
    pytest.param({"delivery": {"block_timeout": 0.5}}, True, id="number"),
    pytest.param({"delivery": {"max_queue": 0}}, False, id="min-queue"),
    pytest.param({"retention": {"max_age_days": 30}}, True, id="retention"),
    pytest.param({"rules": [{"level": "none", "status": ["4xx"]}]}, True, id="status-class"),
    pytest.param({"redaction": {"keep": 9}}, False, id="keep-max"),
    pytest.param({"redaction": {"fields": [3]}}, False, id="field-int"),
    pytest.param({"rules": [{"level": "none", "id": "a b"}]}, False, id="rule-id-pattern"),
]


class TestSchemaAgreement:
    """The in-code validator and the published JSON Schema (via ``jsonschema``) agree."""

    def test_schema_is_valid_draft_2020_12(self) -> None:
        """The shipped schema is itself a valid draft 2020-12 schema."""
        jsonschema.Draft202012Validator.check_schema(policy_schema())

    @pytest.mark.parametrize(("document", "valid"), AGREEMENT)
    def test_agree(self, document: dict[str, Any], valid: bool) -> None:
        """Both accept or both reject the document."""
        reference = jsonschema.Draft202012Validator(policy_schema()).is_valid(document)
        try:
            validate_document(document)
        except PolicyError:
            ours = False
        else:
            ours = True
        assert (reference, ours) == (valid, valid)
