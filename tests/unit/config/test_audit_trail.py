"""The ``audit_trail`` fixture captures an app's events and keeps them out of its real sinks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditmw.contrib.flask import Audit
from auditmw.testing import AuditTrail, MemorySink

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from flask import Flask


def test_real_sinks_replaced(
    audit_trail: AuditTrail, flask_app: Callable[[Any], Flask], tmp_path: Path
) -> None:
    """An app configured with a file sink writes nothing to it; the test sees its events."""
    log = tmp_path / "audit.jsonl"
    app = flask_app({"service": "orders", "sinks": [{"type": "file", "path": str(log)}]})
    app.test_client().get("/orders/1")
    auditor = Audit.auditor(app)
    auditor.close()
    (event,) = audit_trail.http()
    assert event["request"]["route"] == "/orders/{order_id}"
    assert list(auditor.config.sinks) == [audit_trail.sink]
    assert isinstance(audit_trail.sink, MemorySink)
    assert [e["event_id"] for e in audit_trail.sink.events if e["kind"] == "http"] == [
        event["event_id"]
    ]
    assert not log.exists()
