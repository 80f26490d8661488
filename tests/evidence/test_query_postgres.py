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
