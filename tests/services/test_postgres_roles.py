"""``auditmw postgres init`` against the real PostgreSQL: the roles are least-privilege."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.cli import main
from auditmw.sinks.base import Batch
from tests.services.conftest import PG_DSN, numbered, pg_rows

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.service("postgres")
psycopg = pytest.importorskip("psycopg")

from auditmw.sinks.postgres import PostgresSink  # noqa: E402 - after the driver check

DSN_AS = "host=127.0.0.1 port=5432 dbname=test user={}"


@pytest.fixture
def roles(pg_table: str) -> Iterator[tuple[str, str]]:
    """Unique writer and reader role names, dropped with their grants after the test."""
    suffix = uuid.uuid4().hex[:10]
    writer, reader = f"auditw_{suffix}", f"auditr_{suffix}"
    yield writer, reader
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {pg_table}")
        for role in (writer, reader):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


def init(table: str, writer: str, reader: str) -> int:
    return main(
        [
            "postgres",
            "init",
            PG_DSN,
            "--table",
            table,
            "--writer-role",
            writer,
            "--reader-role",
            reader,
        ]
    )


def write_as(role: str, table: str, count: int) -> list[Any]:
    events = [numbered(i) for i in range(count)]
    sink = PostgresSink(DSN_AS.format(role), table=table, create=False)

    async def run() -> None:
        try:
            await sink.aemit(Batch(events, [orjson.dumps(e) for e in events]))
        finally:
            await sink.aclose()

    asyncio.run(run())
    return events


REFUSED = [
    pytest.param("UPDATE {t} SET action = 'x'", id="update"),
    pytest.param("DELETE FROM {t}", id="delete"),
    pytest.param("TRUNCATE {t}", id="truncate"),
    pytest.param("DROP TABLE {t}", id="drop"),
]


class TestPostgresInit:
    def test_writer_inserts_through_the_sink(
        self, pg_table: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The sink, logged in as the writer with create=False, stores events."""
        assert init(pg_table, *roles) == 0
        assert "INSERT only" in capsys.readouterr().out
        events = write_as(roles[0], pg_table, 3)
        assert pg_rows(pg_table) == events

    @pytest.mark.parametrize("statement", REFUSED)
    def test_writer_cannot_change_rows(
        self, pg_table: str, roles: tuple[str, str], statement: str
    ) -> None:
        """The writer role is refused UPDATE, DELETE, TRUNCATE and DROP."""
        assert init(pg_table, *roles) == 0
        write_as(roles[0], pg_table, 2)
        with (
            psycopg.connect(DSN_AS.format(roles[0])) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement.format(t=pg_table))
        assert len(pg_rows(pg_table)) == 2

    def test_writer_cannot_read(self, pg_table: str, roles: tuple[str, str]) -> None:
        """The writer cannot SELECT what it wrote (a compromised app cannot mine the log)."""
        assert init(pg_table, *roles) == 0
        with (
            psycopg.connect(DSN_AS.format(roles[0])) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(f"SELECT line FROM {pg_table}")  # noqa: S608

    @pytest.mark.parametrize(
        "statement",
        [
            *REFUSED,
            pytest.param(
                "INSERT INTO {t} (event_id, time, kind, action, outcome, event, line) VALUES "
                "(gen_random_uuid(), now(), 'http', 'a', 'success', '{{}}', '{{}}')",
                id="insert",
            ),
        ],
    )
    def test_reader_cannot_write(
        self, pg_table: str, roles: tuple[str, str], statement: str
    ) -> None:
        """The reader may SELECT but is refused every change."""
        assert init(pg_table, *roles) == 0
        events = write_as(roles[0], pg_table, 2)
        with psycopg.connect(DSN_AS.format(roles[1])) as conn:
            rows = conn.execute(f"SELECT line FROM {pg_table} ORDER BY id").fetchall()  # noqa: S608
            assert [orjson.loads(r[0]) for r in rows] == events
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(t=pg_table))

    @pytest.mark.parametrize("statement", REFUSED[:3])
    def test_owner_refused_by_trigger(
        self, pg_table: str, roles: tuple[str, str], statement: str
    ) -> None:
        """Even the owner's UPDATE/DELETE/TRUNCATE hit the refuse-change trigger."""
        assert init(pg_table, *roles) == 0
        write_as(roles[0], pg_table, 1)
        with (
            psycopg.connect(PG_DSN) as conn,
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute(statement.format(t=pg_table))

    def test_rerun_revokes_hand_grants(self, pg_table: str, roles: tuple[str, str]) -> None:
        """Running init again is idempotent and removes a DELETE granted by hand."""
        assert init(pg_table, *roles) == 0
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"GRANT DELETE ON {pg_table} TO {roles[0]}")
        assert init(pg_table, *roles) == 0
        with psycopg.connect(PG_DSN) as conn:
            query = "SELECT has_table_privilege(%s, %s, 'DELETE')"
            assert conn.execute(query, (roles[0], pg_table)).fetchone() == (False,)

    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["--writer-role", "bad;role"], id="bad-role"),
            pytest.param(["--table", "a.b.c"], id="bad-table"),
            pytest.param(["--writer-role", "same", "--reader-role", "same"], id="same-role"),
        ],
    )
    def test_bad_names(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """Bad identifiers are refused before anything is created."""
        assert main(["postgres", "init", PG_DSN, *argv]) == 2
        assert "error:" in capsys.readouterr().err
