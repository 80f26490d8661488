"""OCSF exporter: every corpus event validates against the OCSF 1.8.0 JSON Schema."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import ocsf

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.types import Event

    Checker = Callable[[dict[str, Any]], list[str]]


class TestSchema:
    def test_validates(self, corpus_event: Event, ocsf_check: Checker) -> None:
        """Every corpus event exports to a document valid against OCSF 1.8.0."""
        assert ocsf_check(loads(dumps(ocsf.export(corpus_event)))) == []

    def test_type_uid(self, corpus_event: Event) -> None:
        """type_uid is class_uid * 100 + activity_id, and the category matches the class."""
        doc = ocsf.export(corpus_event)
        assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
        assert doc["category_uid"] == doc["class_uid"] // 1000

    def test_does_not_mutate(self, corpus_event: Event) -> None:
        """Exporting leaves the canonical event unchanged."""
        before = copy.deepcopy(corpus_event)
        ocsf.export(corpus_event)
        assert corpus_event == before

    def test_version_and_uid(self, corpus_event: Event) -> None:
        """metadata carries OCSF 1.8.0, the event id and the product."""
        metadata = ocsf.export(corpus_event)["metadata"]
        assert metadata["version"] == "1.8.0"
        assert metadata["uid"] == corpus_event["event_id"]
        assert metadata["product"]["name"] == "auditmw"


class TestClassification:
    @pytest.mark.parametrize(
        ("operation", "class_uid", "activity_id"),
        [
            pytest.param("create", 6003, 1, id="create"),
            pytest.param("read", 6003, 2, id="read"),
            pytest.param("update", 6003, 3, id="update"),
            pytest.param("delete", 6003, 4, id="delete"),
            pytest.param("other", 6003, 99, id="other"),
            pytest.param("login", 3002, 1, id="login"),
            pytest.param("logout", 3002, 2, id="logout"),
        ],
    )
    def test_operation(self, make: Any, operation: str, class_uid: int, activity_id: int) -> None:
        """The operation selects the class and activity."""
        doc = ocsf.export(make(operation=operation))
        assert (doc["class_uid"], doc["activity_id"]) == (class_uid, activity_id)

    @pytest.mark.parametrize(
        ("outcome", "status_id"),
        [
            pytest.param("success", 1, id="success"),
            pytest.param("denied", 2, id="denied"),
            pytest.param("failure", 2, id="failure"),
            pytest.param("error", 2, id="error"),
            pytest.param("aborted", 99, id="aborted"),
        ],
    )
    def test_outcome(self, make: Any, outcome: str, status_id: int) -> None:
        """The outcome maps to status_id and is kept verbatim in status_code."""
        doc = ocsf.export(make(outcome=outcome))
        assert doc["status_id"] == status_id
        assert doc["status_code"] == outcome

    def test_login_user(self, make: Any) -> None:
        """Authentication events carry the user, protocol and session."""
        doc = ocsf.export(make(operation="login"))
        assert doc["user"]["uid"] == "user-42"
        assert doc["auth_protocol"] == "JWT"
        assert doc["session"]["uid"] == "jti-1"

    def test_times(self, make: Any) -> None:
        """time is epoch milliseconds; the microsecond string stays in original_time."""
        doc = ocsf.export(make())
        assert doc["time"] == 1796011140123
        assert doc["end_time"] == 1796011140125
        assert doc["metadata"]["original_time"] == "2026-11-30T03:59:00.123456Z"

    def test_unmapped_integrity(self, make: Any) -> None:
        """integrity is kept whole under unmapped and its seq becomes metadata.sequence."""
        event = make(integrity=True)
        doc = ocsf.export(event)
        assert doc["unmapped"]["integrity"] == event["integrity"]
        assert doc["metadata"]["sequence"] == event["integrity"]["seq"]

    def test_forwarded_for_filters_non_ips(self, make: Any) -> None:
        """x_forwarded_for keeps only IP hops; the raw header stays in unmapped."""
        doc = ocsf.export(make())
        assert doc["http_request"]["x_forwarded_for"] == ["203.0.113.7", "10.0.0.1"]
        assert doc["unmapped"]["source_forwarded_for"] == "203.0.113.7, unknown, 10.0.0.1"

    def test_schema_rejects_bad_type_uid(self, make: Any, ocsf_check: Checker) -> None:
        """The validator used above really checks: a wrong type_uid and a bad IP fail."""
        doc = ocsf.export(make())
        doc["type_uid"] = 600398
        doc["src_endpoint"]["ip"] = "not-an-ip"
        assert len(ocsf_check(doc)) == 3
