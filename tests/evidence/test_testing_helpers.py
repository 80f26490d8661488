"""Tests for the assertion helpers added to :mod:`auditmw.testing`."""

from __future__ import annotations

from typing import Any

import pytest

from auditmw.testing import assert_absent, assert_not_audited

EVENTS: list[dict[str, Any]] = [
    {"event_id": "e1", "action": "orders.read", "actor": {"id": "u1"}, "outcome": "success"},
    {"event_id": "e2", "action": "orders.delete", "actor": {"id": "u2"}, "outcome": "denied",
     "request": {"query": "note=hello"}},
]  # fmt: skip


class TestAssertNotAudited:
    def test_passes_when_nothing_matches(self) -> None:
        """No event has both fields: no error."""
        assert_not_audited(EVENTS, actor__id="u1", outcome="denied")

    def test_fails_on_a_match(self) -> None:
        """A matching event is named in the error."""
        with pytest.raises(AssertionError, match="'e2'"):
            assert_not_audited(EVENTS, actor__id="u2", outcome="denied")


class TestAssertAbsent:
    def test_passes_for_absent_secrets(self) -> None:
        """Secrets that appear nowhere pass."""
        assert_absent(EVENTS, "Bearer abc", b"s3cret")

    def test_finds_a_secret_anywhere_without_repeating_it(self) -> None:
        """A secret inside a nested value is found; the message does not quote it."""
        with pytest.raises(AssertionError) as info:
            assert_absent(EVENTS, "nothing", "note=hello")
        assert "secret #1" in str(info.value)
        assert "note=hello" not in str(info.value)
