"""The light event validator agrees with the published JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.evidence import iter_events, validate_event

if TYPE_CHECKING:
    from tests.evidence.conftest import DemoLog

SCHEMA = json.loads(resources.files("auditmw").joinpath("schema/event.schema.json").read_text())
VALID: dict[str, Any] = {
    "schema_version": "1.0",
    "event_id": "0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6e",
    "time": "2026-11-30T03:59:00.123456Z",
    "kind": "http",
    "action": "orders.update",
    "operation": "update",
    "outcome": "success",
    "actor": {"id": "u", "type": "user", "auth": {"method": "jwt", "verified": True}},
    "response": {"status_code": 200},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    holder = event
    for part in parents:
        holder = holder.setdefault(part, {})
    if value is _DELETE:
        del holder[last]
    else:
        holder[last] = value
    return event


_DELETE = object()
BROKEN = [
    pytest.param(_with("kind", "bogus"), id="kind"),
    pytest.param(_with("outcome", "ok"), id="outcome"),
    pytest.param(_with("actor.type", "robot"), id="actor-type"),
    pytest.param(_with("actor.auth.verified", "yes"), id="verified-string"),
    pytest.param(_with("actor.id", _DELETE), id="actor-id-missing"),
    pytest.param(_with("action", _DELETE), id="action-missing"),
    pytest.param(_with("action", ""), id="action-empty"),
    pytest.param(_with("response.status_code", 99), id="status-range"),
    pytest.param(_with("response.status_code", "200"), id="status-string"),
    pytest.param(_with("source.port", 70000), id="port-range"),
    pytest.param(_with("time", "yesterday"), id="time"),
    pytest.param(_with("event_id", "42"), id="event-id"),
    pytest.param(_with("schema_version", "2.0"), id="schema-version"),
    pytest.param(_with("actor.roles", ["a", 1]), id="roles"),
    pytest.param(_with("request.headers", {"x": 1}), id="header-value"),
    pytest.param(_with("actor", "u1"), id="actor-not-object"),
]


class TestValidateEvent:
    def test_demo_events_conform_to_both(self, demo_log: DemoLog) -> None:
        """Every event of a real log is valid for the JSON Schema and the validator."""
        events = list(iter_events([demo_log.log], checkpoints=True))
        assert len(events) == 12
        for event in events:
            jsonschema.validate(event, SCHEMA)
            assert validate_event(event) == []

    def test_minimal_valid(self) -> None:
        """The reference event is valid for both."""
        jsonschema.validate(VALID, SCHEMA)
        assert validate_event(VALID) == []

    @pytest.mark.parametrize("event", BROKEN)
    def test_broken_events_rejected_by_both(self, event: dict[str, Any]) -> None:
        """Each broken event is rejected by the JSON Schema and by the validator."""
        assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(event)
        assert validate_event(event) != []


_PATHS = [
    "schema_version", "event_id", "time", "end_time", "duration_us", "kind", "action",
    "operation", "outcome", "severity", "actor", "actor.id", "actor.type", "actor.roles",
    "actor.auth", "actor.auth.method", "actor.auth.verified", "source.ip", "source.port",
    "request.headers", "request.bytes", "response.status_code", "resource.route_params",
    "redactions", "details", "integrity", "extension",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-10, max_value=70000)
    | st.floats(allow_nan=False).filter(lambda f: not f.is_integer())
    | st.sampled_from(["", "1.0", "http", "user", "jwt", "success", "2026-11-30T03:59:00Z"])
    | st.text(max_size=5)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)


class TestAgreement:
    @given(changes=st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), min_size=1, max_size=3))
    @settings(max_examples=300, deadline=None)
    def test_validator_agrees_with_json_schema(self, changes: list[tuple[str, Any]]) -> None:
        """On random edits of a valid event, both accept or both reject."""
        event: dict[str, Any] = json.loads(json.dumps(VALID))
        for path, value in changes:
            *parents, last = path.split(".")
            holder = event
            for part in parents:
                child = holder.get(part)
                if not isinstance(child, dict):
                    child = holder[part] = {}
                holder = child
            holder[last] = value
        schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(event)
        assert (validate_event(event) == []) is schema_ok


def test_every_kind_auditmw_writes_is_published() -> None:
    """The JSON Schema, the light validator and the writer's lifecycle kinds are one list."""
    from auditmw.event import LIFECYCLE_KINDS
    from auditmw.evidence.schema import KINDS

    published = set(SCHEMA["properties"]["kind"]["enum"])
    assert published == set(KINDS)
    assert set(LIFECYCLE_KINDS) <= published
    for kind in LIFECYCLE_KINDS:
        assert validate_event({**VALID, "kind": kind}) == [], kind
