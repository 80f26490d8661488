"""The degraded form of values and events is deterministic, serializable and listed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditmw.canonical import MAX_DEPTH, MAX_KEY, TRUNCATED, dumps, sanitize
from auditmw.core.degrade import degrade, metadata_only


class TestSanitize:
    @pytest.mark.parametrize(
        ("value", "stored", "listed"),
        [
            pytest.param("a\ud800b", "a\\ud800b", False, id="lone-surrogate"),
            pytest.param(2**53, str(2**53), True, id="int-beyond-2-53"),
            pytest.param(-(2**70), str(-(2**70)), True, id="negative-big-int"),
            pytest.param(2**53 - 1, 2**53 - 1, False, id="int-in-range"),
            pytest.param(math.nan, "NaN", True, id="nan"),
            pytest.param(math.inf, "Infinity", True, id="inf"),
            pytest.param(-math.inf, "-Infinity", True, id="-inf"),
            pytest.param(1.5, 1.5, False, id="finite-float"),
            pytest.param(object(), TRUNCATED, True, id="object"),
            pytest.param(b"bytes", TRUNCATED, True, id="bytes"),
            pytest.param(None, None, False, id="null"),
            pytest.param(True, True, False, id="bool"),
        ],
    )
    def test_scalars(self, value: object, stored: object, listed: bool) -> None:
        """Each kind of value has one stored form; changes are listed by pointer."""
        truncated: list[str] = []
        assert sanitize(value, "/x", truncated) == stored
        assert truncated == (["/x"] if listed else [])

    def test_keys(self) -> None:
        """Non-string keys become strings, long keys are cut, a collision keeps the first."""
        truncated: list[str] = []
        out = sanitize({1: "a", "1": "b", "k" * 300: 2}, "", truncated)
        assert out == {"1": "a", "k" * MAX_KEY: 2}
        assert truncated == ["/1", "/1", "/" + "k" * MAX_KEY]

    def test_depth(self) -> None:
        """Nesting beyond MAX_DEPTH is cut at that depth."""
        deep: Any = 0
        for _ in range(1000):
            deep = [deep]
        truncated: list[str] = []
        out = sanitize(deep, "", truncated)
        assert truncated == ["/0" * MAX_DEPTH]
        dumps(out)

    @given(
        st.recursive(
            st.none() | st.integers() | st.floats() | st.text(),
            lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        )
    )
    def test_any_json_like_value_serializes(self, value: object) -> None:
        """Whatever goes in, the result serializes, and sanitizing twice changes nothing."""
        once = sanitize(value, "", [])
        dumps(once)
        again: list[str] = []
        assert sanitize(once, "", again) == once
        assert again == []


class TestDegrade:
    def test_degrade_keeps_existing_truncated_and_adds(self) -> None:
        """The event's own truncated pointers come first; the new ones follow."""
        event = {"kind": "http", "truncated": ["/request/path"], "x": 2**64}
        out = degrade(event)
        assert out["truncated"] == ["/request/path", "/x"]
        dumps(out)

    def test_metadata_only(self) -> None:
        """Only well-formed metadata survives, marked with the root pointer."""
        event = {
            "schema_version": "1.0",
            "event_id": "e",
            "kind": "http",
            "action": "a\ud800",
            "duration_us": 2**60,
            "actor": {"id": "u1", "type": "user", "extra": object()},
            "request": {"x": object()},
        }
        out = metadata_only(event)
        assert out == {
            "schema_version": "1.0",
            "event_id": "e",
            "kind": "http",
            "actor": {"id": "u1", "type": "user", "auth": {"method": "none", "verified": False}},
            "truncated": [""],
        }
        dumps(out)


class TestListChanges:
    def test_bounded(self) -> None:
        """More than MAX_LISTED changes: the first ones, then the value's own pointer."""
        from auditmw.canonical import MAX_LISTED, list_changes

        changed = [f"/b/{i}" for i in range(1000)]
        listed = list_changes(changed, "/b")
        assert len(listed) == MAX_LISTED
        assert listed[-1] == "/b"
        assert list_changes(changed[:3], "/b") == changed[:3]
