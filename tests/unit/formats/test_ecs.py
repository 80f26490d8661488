"""ECS exporter: every emitted field exists in ECS 9.4 with a compatible type and value."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import ecs

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.types import Event

    Checker = Callable[[dict[str, Any]], list[str]]


class TestSchema:
    def test_fields_exist(self, corpus_event: Event, ecs_check: Checker) -> None:
        """Every emitted field is an ECS 9.4 field (or a label) with a compatible value."""
        assert ecs_check(loads(dumps(ecs.export(corpus_event)))) == []

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

    def test_checker_rejects_unknown_field(self, make: Any, ecs_check: Checker) -> None:
        """The checker used above really checks: an invented field and a bad outcome fail."""
        doc = ecs.export(make())
        doc["event"]["outcome"] = "denied"
        doc["user"]["tenant"] = "t1"
        doc["event"]["type"] = ["installation"]
        doc["labels"]["Bad.Key"] = "x"
        assert len(ecs_check(doc)) == 4


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
        assert doc["labels"]["integrity_mac"] == "ef" * 32
        assert "integrity_hash" not in doc["labels"]

    def test_login_category(self, make: Any) -> None:
        """Login is an authentication start event."""
        event = ecs.export(make(operation="login"))["event"]
        assert event["category"] == ["authentication", "session"]
        assert event["type"] == ["start"]

    def test_annotation_keys_sanitized(self, make: Any) -> None:
        """Annotation keys become label keys of [a-z0-9_]."""
        labels = ecs.export(make())["labels"]
        assert labels["annotation_reviewed_by"] == "ops team"
