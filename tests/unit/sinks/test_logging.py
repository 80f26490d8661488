"""The structlog bridge with a real structlog configuration."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import orjson
import pytest
import structlog

from auditmw.sinks.base import Batch
from auditmw.sinks.logging import StructlogSink

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """structlog configured as an app would: level, timestamp, JSON renderer to a stream."""
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", key="logged_at"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    yield out
    structlog.reset_defaults()


class TestStructlogSink:
    def test_events_rendered_by_the_app_configuration(self, json_logs: io.StringIO) -> None:
        """Each event is one structlog call whose fields and level follow the event."""
        events = [
            {"event_id": "e1", "kind": "http", "severity": "info", "outcome": "success"},
            {"event_id": "e2", "kind": "http", "severity": "medium", "outcome": "denied"},
            {"event_id": "e3", "kind": "audit.sink_failed", "severity": "high", "event": "x"},
        ]
        sink = StructlogSink()
        sink.emit(Batch(events, [orjson.dumps(e) for e in events]))
        sink.close()
        lines = [orjson.loads(line) for line in json_logs.getvalue().splitlines()]
        assert [line["level"] for line in lines] == ["info", "warning", "error"]
        assert [line["event_id"] for line in lines] == ["e1", "e2", "e3"]
        assert all(line["event"] == "audit" and "logged_at" in line for line in lines)
        assert lines[2]["event_kind"] == "x"  # a field named "event" cannot shadow the message
        assert lines[1]["outcome"] == "denied"

    def test_bound_logger(self, json_logs: io.StringIO) -> None:
        """A given bound logger keeps its context and the event name is configurable."""
        logger = structlog.get_logger().bind(app="orders")
        sink = StructlogSink(logger, event_name="audit.event")
        sink.emit(Batch([{"event_id": "e1", "severity": "low"}], [b"{}"]))
        line = orjson.loads(json_logs.getvalue())
        assert line["app"] == "orders"
        assert line["event"] == "audit.event"
        assert line["level"] == "info"
