"""``auditmw query`` over a PostgreSQL table written by PostgresSink (a real server)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.cli import main
from auditmw.evidence._events import iter_records
from auditmw.sinks import PostgresSink
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.evidence.conftest import DemoLog

pytestmark = pytest.mark.service("postgres")
URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def table(demo_log: DemoLog) -> Iterator[str]:
    """The demo log stored by a PostgresSink in a fresh table (dropped afterwards)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"evidence_{uuid.uuid4().hex[:12]}"
    records = [(line, event) for _, line, event in iter_records([demo_log.log]) if event]
    sent = Batch([event for _, event in records], [line for line, _ in records])
    sink = PostgresSink(URL, table=name)

    async def store() -> None:
        try:
            await sink.aemit(sent)
        finally:
            await sink.aclose()

    asyncio.run(store())
    yield name
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


class TestPostgresSource:
    def test_filters_rows_like_files(
        self, demo_log: DemoLog, table: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The table gives the same matches, as the same stored bytes, as the file."""
        args = ["--kind", "http", "--status", "4xx", "--format", "jsonl"]
        assert main(["query", f"{URL}?table={table}", *args]) == 0
        from_table = capsys.readouterr().out
        assert main(["query", str(demo_log.log), *args]) == 0
        assert from_table == capsys.readouterr().out
        actors = [orjson.loads(line)["actor"]["id"] for line in from_table.splitlines()]
        assert actors == ["mallory", "anonymous"]

    def test_time_bounds_pushed_down(self, table: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--until in the past of every row returns nothing (exit 1)."""
        assert main(["query", f"{URL}?table={table}", "--until", "2000-01-01T00:00:00Z"]) == 1
        assert main(["query", f"{URL}?table={table}", "--since", "2000-01-01T00:00:00Z"]) == 0
        assert "orders.update" in capsys.readouterr().out

    def test_bad_table_names(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unsafe table name and a missing table are usage errors, without the DSN."""
        assert main(["query", f"{URL}?table=x;drop"]) == 2
        assert "?table=" in capsys.readouterr().err
        assert main(["query", "postgresql://postgres:hunter2@127.0.0.1:5432/test?table=nope"]) == 2
        err = capsys.readouterr().err
        assert "UndefinedTable" in err
        assert "hunter2" not in err


class TestPostgresEvidence:
    def test_report_and_audit_ready_from_a_table(
        self, demo_log: DemoLog, table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The table verifies like the file; the report never shows the password."""
        url = f"postgresql://postgres:pw-in-dsn@127.0.0.1:5432/test?table={table}"
        out = tmp_path / "r.html"
        assert main(["report", url, "-o", str(out), *demo_log.key_args]) == 0
        html = out.read_text()
        assert '<div class="banner good"' in html
        assert f"postgresql://127.0.0.1/test?table={table}" in html
        assert "pw-in-dsn" not in html
        assert "mallory" in html
        code = main(["audit-ready", url, *demo_log.key_args, "--min-traceability", "0.3"])
        assert "PASS  integrity     12 records in 1 chain(s) verified" in capsys.readouterr().out
        assert code == 1  # no --policy: retention unknown

    def test_rows_changed_in_the_table_are_detected(
        self, demo_log: DemoLog, table: str, tmp_path: Path
    ) -> None:
        """A row edited behind the triggers' back (as the table owner) is tampering."""
        psycopg = pytest.importorskip("psycopg")
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.execute(
                f"UPDATE {table} SET line = replace(line, '\"mallory\"', '\"ada\"') "  # noqa: S608
                "WHERE actor_id = 'mallory'"
            )
        out = tmp_path / "t.html"
        args = ["report", f"{URL}?table={table}", "-o", str(out), *demo_log.key_args]
        assert main(args) == 1
        assert "TAMPERING DETECTED" in out.read_text()

    def test_files_and_table_not_mixed(
        self, demo_log: DemoLog, table: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A table and files in one report are refused: they are separate stores."""
        args = ["report", f"{URL}?table={table}", str(demo_log.log), "-o", "/dev/null"]
        assert main(args) == 2
        assert "either log files" in capsys.readouterr().err
