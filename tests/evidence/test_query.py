"""Tests for ``auditmw query`` and :mod:`auditmw.evidence.query`."""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.cli import main
from auditmw.evidence import EventFilter, parse_time, query_events
from auditmw.evidence._events import format_bound, iter_events
from auditmw.evidence.query import write_csv, write_table
from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from tests.evidence.conftest import DemoLog

EVENT: dict[str, Any] = {
    "time": "2026-11-30T03:59:00.123456Z",
    "kind": "http",
    "action": "orders.update",
    "operation": "update",
    "outcome": "denied",
    "actor": {"id": "svc-billing", "type": "service"},
    "resource": {"type": "orders", "id": "42"},
    "request": {"id": "req-1", "route": "/orders/{order_id}", "path": "/orders/42"},
    "response": {"status_code": 403},
}


class TestEventFilter:
    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [
            pytest.param({}, True, id="no-criteria"),
            pytest.param({"actor": "svc-*"}, True, id="actor-glob"),
            pytest.param({"actor": "ada"}, False, id="actor-other"),
            pytest.param({"action": "orders.*"}, True, id="action-glob"),
            pytest.param({"operation": "read"}, False, id="operation-other"),
            pytest.param({"resource_type": "orders", "resource_id": "42"}, True, id="resource"),
            pytest.param({"resource_id": "4"}, False, id="resource-id-exact"),
            pytest.param({"outcome": "denied"}, True, id="outcome"),
            pytest.param({"status": "4xx"}, True, id="status-class"),
            pytest.param({"status": "5xx"}, False, id="status-class-other"),
            pytest.param({"status": "403"}, True, id="status-exact"),
            pytest.param({"route": "/orders/*"}, True, id="route-glob"),
            pytest.param({"request_id": "req-2"}, False, id="request-id-other"),
            pytest.param({"kind": "audit.*"}, False, id="kind-glob-other"),
            pytest.param({"since": "2026-11-30T03:59:00.123456Z"}, True, id="since-inclusive"),
            pytest.param({"until": "2026-11-30T03:59:00.123456Z"}, False, id="until-exclusive"),
            pytest.param({"since": "2026-11-30T04:00:00.000000Z"}, False, id="since-later"),
        ],
    )
    def test_criteria(self, criteria: dict[str, Any], expected: bool) -> None:
        """Each criterion keeps or drops the event as documented."""
        assert EventFilter(**criteria).matches(EVENT) is expected

    def test_checkpoints_skipped_unless_asked(self) -> None:
        """Checkpoint records are dropped by default and kept with checkpoints=True."""
        checkpoint = {**EVENT, "kind": "audit.checkpoint"}
        assert not EventFilter().matches(checkpoint)
        assert EventFilter(checkpoints=True).matches(checkpoint)


class TestParseTime:
    NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("1h", "2026-11-30T03:00:00.000000Z", id="hours"),
            pytest.param("90s", "2026-11-30T03:58:30.000000Z", id="seconds"),
            pytest.param("2d", "2026-11-28T04:00:00.000000Z", id="days"),
            pytest.param("2026-11-30T03:00:00Z", "2026-11-30T03:00:00.000000Z", id="rfc3339-z"),
            pytest.param("2026-11-30T05:00:00+02:00", "2026-11-30T03:00:00.000000Z", id="offset"),
        ],
    )
    def test_values(self, text: str, expected: str) -> None:
        """Relative durations count back from now; absolute times are converted to UTC."""
        assert format_bound(parse_time(text, now=self.NOW)) == expected

    def test_invalid_names_setting(self) -> None:
        """A bad value raises ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError, match="--until") as info:
            parse_time("yesterday", setting="--until")
        assert info.value.setting == "--until"


class TestOutput:
    def test_csv_defuses_formulas(self) -> None:
        """Cells that a spreadsheet would evaluate are prefixed with a quote."""
        out = io.StringIO()
        write_csv([{**EVENT, "actor": {"id": "=HYPERLINK(1)"}}], out)
        rows = list(csv.reader(io.StringIO(out.getvalue())))
        assert rows[1][2] == "'=HYPERLINK(1)"

    def test_table_strips_control_characters(self) -> None:
        """Escape sequences stored in events cannot reach the terminal; they are shown."""
        out = io.StringIO()
        write_table([{**EVENT, "actor": {"id": "evil\x1b[2Jx"}}], out)
        assert "\x1b" not in out.getvalue()
        assert "evil\\u001b[2Jx" in out.getvalue()


class TestQueryCommand:
    def test_filters_the_demo_log(
        self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--outcome denied finds exactly mallory's delete, as stored bytes."""
        code = main(["query", str(demo_log.log), "--outcome", "denied", "--format", "jsonl"])
        lines = capsys.readouterr().out.splitlines()
        assert code == 0
        assert len(lines) == 1
        event = orjson.loads(lines[0])
        assert (event["actor"]["id"], event["action"]) == ("mallory", "orders.delete")
        assert lines[0].encode() in demo_log.log.read_bytes()

    def test_table_and_no_match(
        self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The table lists the requests; a filter matching nothing exits 1."""
        assert main(["query", str(demo_log.log), "--kind", "http"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:4] == ["time", "kind", "actor", "action"]
        assert len(table) == 1 + 6
        assert main(["query", str(demo_log.log), "--actor", "nobody"]) == 1

    def test_checkpoints_flag(self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]) -> None:
        """Checkpoints appear only with --checkpoints."""
        main(["query", str(demo_log.log), "--format", "jsonl"])
        without = capsys.readouterr().out
        main(["query", str(demo_log.log), "--format", "jsonl", "--checkpoints"])
        with_them = capsys.readouterr().out
        assert "audit.checkpoint" not in without
        assert with_them.count('"kind":"audit.checkpoint"') == 3

    def test_bad_time_exits_2(self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]) -> None:
        """An invalid --since is a usage error that names the option."""
        assert main(["query", str(demo_log.log), "--since", "soon"]) == 2
        assert "--since" in capsys.readouterr().err

    def test_rotated_gzipped_files_in_order(self, demo_log: DemoLog, tmp_path: Path) -> None:
        """A directory of a gzipped rotated file and the live file reads in write order."""
        lines = demo_log.log.read_bytes().splitlines(keepends=True)
        old = tmp_path / "audit.jsonl.20261130T034500Z.000001.gz"
        old.write_bytes(gzip.compress(b"".join(lines[:6])))
        (tmp_path / "audit.jsonl").write_bytes(b"".join(lines[6:]))
        got = [e["event_id"] for e in iter_events([tmp_path])]
        expected = [e["event_id"] for e in iter_events([demo_log.log])]
        assert got == expected

    def test_follow_reads_appended_lines(self, tmp_path: Path) -> None:
        """With follow, lines appended after the start are yielded, then it stops in time."""
        log = tmp_path / "audit.jsonl"
        log.write_bytes(orjson.dumps({**EVENT, "event_id": "a"}) + b"\n")

        def append() -> None:
            time.sleep(0.4)
            with log.open("ab") as handle:
                handle.write(orjson.dumps({**EVENT, "event_id": "b"}) + b"\n")
                handle.write(orjson.dumps({**EVENT, "event_id": "c", "outcome": "success"}))
                handle.flush()
                time.sleep(0.3)
                handle.write(b"\n")

        writer = threading.Thread(target=append)
        writer.start()
        started = time.monotonic()
        got = [
            e["event_id"]
            for _, e in query_events([log], EventFilter(), follow_seconds=1.5, poll_s=0.05)
        ]
        writer.join()
        assert got == ["a", "b", "c"]
        assert time.monotonic() - started < 5


class TestFollowCommand:
    def test_follow_seconds_bounds_the_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--follow --follow-seconds prints stored lines, new ones, then returns."""
        log = tmp_path / "audit.jsonl"
        log.write_bytes(orjson.dumps({**EVENT, "event_id": "first"}) + b"\n")

        def append() -> None:
            with log.open("ab") as handle:
                handle.write(orjson.dumps({**EVENT, "event_id": "later"}) + b"\n")

        timer = threading.Timer(0.3, append)
        timer.start()
        args = ["query", str(log), "--format", "jsonl", "--follow", "--follow-seconds", "1"]
        assert main(args) == 0
        timer.join()
        ids = [orjson.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()]
        assert ids == ["first", "later"]
