"""CloudEvents exporter: every corpus event validates against the CloudEvents 1.0 schema."""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import cloudevents

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.types import Event

_CONTEXT = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
}
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}\Z")
_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")


@pytest.fixture(scope="session")
def validator(shared_schema_dir: Path) -> jsonschema.Draft7Validator:
    """Return a format-checking validator for the CloudEvents 1.0 JSON Schema."""
    schema = json.loads((shared_schema_dir / "cloudevents-1.0.json").read_text())
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    missing = {"uri-reference", "uri", "date-time"} - set(checker.checkers)
    if missing:
        pytest.fail(f"jsonschema cannot check formats {missing}: install rfc3986-validator")
    return jsonschema.Draft7Validator(schema, format_checker=checker)


class TestSchema:
    def test_validates(self, corpus_event: Event, validator: jsonschema.Draft7Validator) -> None:
        """Every corpus event exports to a valid CloudEvent with well-formed extensions."""
        doc = loads(dumps(cloudevents.export(corpus_event)))
        validator.validate(doc)
        for name in doc.keys() - _CONTEXT:
            assert _EXTENSION_NAME.match(name), name
            assert isinstance(doc[name], str | int | bool), name

    def test_validator_checks_formats(
        self, make: Any, validator: jsonschema.Draft7Validator
    ) -> None:
        """The validator used above really checks: a source that is no URI reference fails."""
        doc = cloudevents.export(make())
        doc["source"] = "urn:auditmw:service:a b"
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(doc)

    def test_does_not_mutate(self, corpus_event: Event) -> None:
        """Exporting leaves the canonical event unchanged and carries it as data."""
        before = copy.deepcopy(corpus_event)
        doc = cloudevents.export(corpus_event)
        assert corpus_event == before
        assert doc["data"] == before


class TestAttributes:
    def test_request_event(self, make: Any) -> None:
        """A request event has the audit type, the service source and resource subject."""
        doc = cloudevents.export(make(integrity=True))
        assert doc["type"] == "io.auditmw.audit.v1"
        assert doc["source"] == "urn:auditmw:service:orders-api"
        assert doc["subject"] == "orders/42"
        assert doc["authtype"] == "user"
        assert doc["authid"] == "user-42"
        assert doc["sequence"] == "00000000000000000007"
        assert _TRACEPARENT.match(doc["traceparent"])

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            pytest.param("audit.started", "io.auditmw.lifecycle.v1.started", id="started"),
            pytest.param("audit.sink_failed", "io.auditmw.lifecycle.v1.sink_failed", id="failed"),
        ],
    )
    def test_lifecycle_type(self, make: Any, kind: str, expected: str) -> None:
        """Lifecycle records get a type per kind and the system authtype."""
        event = make()
        event["kind"] = kind
        doc = cloudevents.export(event)
        assert doc["type"] == expected
        assert doc["authtype"] == "system"

    def test_source_is_encoded(self, make: Any) -> None:
        """Service names with spaces or slashes still give a URI reference."""
        event = make()
        event["service"]["name"] = "orders api/β"
        assert cloudevents.export(event)["source"] == "urn:auditmw:service:orders%20api%2F%CE%B2"
