"""ECS exporter: every emitted field exists in ECS 9.4 with a compatible type and value."""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import re
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import ecs

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.types import Event

yaml = pytest.importorskip("yaml")

_TEXT_TYPES = {"keyword", "wildcard", "match_only_text", "constant_keyword", "text"}
_LABEL_KEY = re.compile(r"[a-z0-9_]+\Z")


@pytest.fixture(scope="session")
def ecs_fields(shared_schema_dir: Path) -> dict[str, Any]:
    """Return the ECS 9.4 flat field list, keyed by dotted field name."""
    with (shared_schema_dir / "ecs_flat-v9.4.0.yml").open() as stream:
        fields: dict[str, Any] = yaml.load(
            stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
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


def _scalar_ok(ecs_type: str, value: Any) -> bool:
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


def check_ecs(doc: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """Return every way ``doc`` departs from the ECS field list (empty when conformant)."""
    problems = []
    for name, value in _flatten(doc).items():
        spec = fields.get(name)
        if spec is None:
            problems.append(f"{name}: not an ECS field")
            continue
        if name == "labels":
            for key, label in value.items():
                if not _LABEL_KEY.match(key) or not isinstance(label, str):
                    problems.append(f"labels.{key}: bad key or non-string value {label!r}")
            continue
        is_array = "array" in spec.get("normalize", [])
        values = value if isinstance(value, list) else [value]
        if is_array and not isinstance(value, list):
            problems.append(f"{name}: ECS expects an array")
        for item in values:
            if not _scalar_ok(spec["type"], item):
                problems.append(f"{name}: {item!r} is not an ECS {spec['type']}")
        allowed = {a["name"] for a in spec.get("allowed_values", [])}
        if allowed and not set(values) <= allowed:
            problems.append(f"{name}: {set(values) - allowed} not among the allowed values")
    problems.extend(_check_categorization(doc, fields))
    return problems


def _check_categorization(doc: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    expected = {
        a["name"]: set(a.get("expected_event_types", []))
        for a in fields["event.category"]["allowed_values"]
    }
    event = doc["event"]
    fitting = set().union(*(expected.get(c, set()) for c in event["category"]))
    return [
        f"event.type {t!r} fits none of {event['category']}"
        for t in event["type"]
        if t not in fitting
    ]


class TestSchema:
    def test_fields_exist(self, corpus_event: Event, ecs_fields: dict[str, Any]) -> None:
        """Every emitted field is an ECS 9.4 field (or a label) with a compatible value."""
        doc = loads(dumps(ecs.export(corpus_event)))
        assert check_ecs(doc, ecs_fields) == []

    def test_required_fields(self, corpus_event: Event) -> None:
        """@timestamp, ecs.version and the categorization fields are always set."""
        doc = ecs.export(corpus_event)
        assert doc["@timestamp"] == corpus_event["time"]
        assert doc["ecs"]["version"] == "9.4.0"
        assert {"kind", "category", "type", "outcome", "action", "id"} <= doc["event"].keys()

    def test_does_not_mutate(self, corpus_event: Event) -> None:
        """Exporting leaves the canonical event unchanged."""
        before = copy.deepcopy(corpus_event)
        ecs.export(corpus_event)
        assert corpus_event == before

    def test_checker_rejects_unknown_field(self, make: Any, ecs_fields: dict[str, Any]) -> None:
        """The checker used above really checks: an invented field and a bad outcome fail."""
        doc = ecs.export(make())
        doc["event"]["outcome"] = "denied"
        doc["user"]["tenant"] = "t1"
        assert len(check_ecs(doc, ecs_fields)) == 2


class TestMapping:
    @pytest.mark.parametrize(
        ("outcome", "expected"),
        [
            pytest.param("success", "success", id="success"),
            pytest.param("denied", "failure", id="denied"),
            pytest.param("failure", "failure", id="failure"),
            pytest.param("error", "failure", id="error"),
            pytest.param("aborted", "unknown", id="aborted"),
        ],
    )
    def test_outcome(self, make: Any, outcome: str, expected: str) -> None:
        """ECS outcome is success/failure/unknown; the original stays in labels.outcome."""
        doc = ecs.export(make(outcome=outcome))
        assert doc["event"]["outcome"] == expected
        assert doc["labels"]["outcome"] == outcome

    def test_duration_in_nanoseconds(self, make: Any) -> None:
        """event.duration is nanoseconds."""
        assert ecs.export(make())["event"]["duration"] == 2_000_000

    def test_integrity(self, make: Any) -> None:
        """The chain hash and sequence land in event.hash and event.sequence."""
        doc = ecs.export(make(integrity=True))
        assert doc["event"]["hash"] == "cd" * 32
        assert doc["event"]["sequence"] == 7
        assert doc["labels"]["integrity_chain_id"] == "c-1"

    def test_login_category(self, make: Any) -> None:
        """Login is an authentication start event."""
        event = ecs.export(make(operation="login"))["event"]
        assert event["category"] == ["authentication", "session"]
        assert event["type"] == ["start"]

    def test_annotation_keys_sanitized(self, make: Any) -> None:
        """Annotation keys become label keys of [a-z0-9_]."""
        labels = ecs.export(make())["labels"]
        assert labels["annotation_reviewed_by"] == "ops team"
