"""No audit hook raises into the application (issue 15.7): failures become events.

A processor (or resolver) that raises while a request's event is built must leave
the app's answer unchanged, in every framework and both delivery modes; the
failure is recorded as ``audit.internal_error`` with the exception's type, never
its message, and the log verifies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.security._apps import FRAMEWORKS, make_config, make_target

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.event import Actor, Exchange
    from auditmw.types import Event

SECRET = "card 4111111111111111 in the message"


def _raising_processor(event: Event) -> Event:
    if event.get("kind") == "http" and event["request"]["path"] == "/orders/13":
        raise ValueError(SECRET)
    return event


class RaisingResolver:
    """Breaks the contract (resolvers must never raise) on one path."""

    def resolve(self, exchange: Exchange) -> Actor | None:
        if exchange.path == "/orders/13":
            raise KeyError(SECRET)
        return None


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("mode", ["async", "durable"])
@pytest.mark.parametrize("broken", ["processor", "resolver"])
def test_a_raising_hook_becomes_an_internal_error_event(
    tmp_path: Path, framework: str, mode: str, broken: str
) -> None:
    """The app answers 200; audit.internal_error names the type and request; the log verifies."""
    path = tmp_path / "audit.jsonl"
    hooks = (
        {"processors": [_raising_processor]}
        if broken == "processor"
        else {"resolvers": [RaisingResolver()]}
    )
    config, registry = make_config(path, "metadata", mode=mode, **hooks)
    target = make_target(framework, config, path, registry)
    try:
        failed = target.call("PUT", "/orders/13", b"", {})
        ordinary = target.call("PUT", "/orders/1", b"", {})
    finally:
        report = target.close()
    assert (failed.status, ordinary.status) == (200, 200)
    assert report.clean, report.codes()
    events = target.events()
    assert SECRET not in path.read_text()
    http = {e["event_id"]: e for e in events if e["kind"] == "http"}
    errors = [e for e in events if e["kind"] == "audit.internal_error"]
    if broken == "resolver":
        # The identity layer already turns a raising resolver into data.
        assert errors == []
        assert http[failed.audit_id]["actor"]["auth"]["error"] == "resolver_error"
        return
    (error,) = errors
    assert error["details"] == {
        "stage": "pipeline",
        "error": "ValueError",
        "event_id": failed.audit_id,
        "version": error["details"]["version"],
        "pid": error["details"]["pid"],
    }
    assert list(http) == [ordinary.audit_id]
