"""CloudEvents exporter: every corpus event validates against the CloudEvents 1.0 schema."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import cloudevents

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.types import Event

    Checker = Callable[[dict[str, Any]], list[str]]

_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")


class TestSchema:
    def test_validates(self, corpus_event: Event, cloudevents_check: Checker) -> None:
        """Every corpus event exports to a valid CloudEvent with well-formed extensions."""
        assert cloudevents_check(loads(dumps(cloudevents.export(corpus_event)))) == []

    def test_validator_checks_formats(self, make: Any, cloudevents_check: Checker) -> None:
        """The checker used above really checks: a bad source, time and extension fail."""
        doc = cloudevents.export(make())
        doc["source"] = "urn:auditmw:service:a b"
        doc["time"] = "yesterday"
        doc["auth_type"] = "user"
        assert len(cloudevents_check(doc)) == 3

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
