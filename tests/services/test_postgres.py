"""PostgresSink against the real PostgreSQL server, directly and through a fault proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from auditmw.exceptions import ConfigurationError, SinkUnavailableError
from tests.services.conftest import (
    PG_DSN,
    assert_complete_in_order,
    emit_all,
    fault_scenario,
    numbered_batch,
    pg_rows,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from auditmw.delivery import Delivery
    from tests.services.conftest import FaultProxy

pytestmark = pytest.mark.service("postgres")
psycopg = pytest.importorskip("psycopg")

from auditmw.sinks.postgres import PostgresSink  # noqa: E402 - after the driver check


class TestPostgresSink:
    def test_rows_columns_and_dedup(self, pg_table: str) -> None:
        """Rows carry indexed columns and the stored line; a replayed batch adds nothing."""
        sent = numbered_batch(0, 5)
        emit_all(PostgresSink(PG_DSN, table=pg_table), sent, sent)
        assert pg_rows(pg_table) == sent.events
        with psycopg.connect(PG_DSN) as conn:
            query = f"SELECT actor_id, action, outcome, event->>'kind', line FROM {pg_table}"  # noqa: S608
            row = conn.execute(query + " ORDER BY id").fetchone()
        assert row == ("user-0", "orders.read", "success", "http", sent.lines[0].decode())

    @pytest.mark.parametrize(
        "statement",
        [
            pytest.param("UPDATE {t} SET outcome = 'denied'", id="update"),
            pytest.param("DELETE FROM {t}", id="delete"),
            pytest.param("TRUNCATE {t}", id="truncate"),
        ],
    )
    def test_table_is_append_only(self, pg_table: str, statement: str) -> None:
        """Triggers refuse UPDATE, DELETE and TRUNCATE."""
        emit_all(PostgresSink(PG_DSN, table=pg_table), numbered_batch(0, 2))
        with (
            psycopg.connect(PG_DSN) as conn,
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute(statement.format(t=pg_table))
        assert len(pg_rows(pg_table)) == 2

    def test_indexes_exist(self, pg_table: str) -> None:
        """Time, actor, action and outcome are indexed."""
        emit_all(PostgresSink(PG_DSN, table=pg_table), numbered_batch(0, 1))
        with psycopg.connect(PG_DSN) as conn:
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = %s", (pg_table,)
                )
            }
        assert {
            f"{pg_table}_{k}" for k in ("time_idx", "actor_idx", "action_idx", "outcome_idx")
        } <= names

    def test_bad_table_name(self) -> None:
        """A table name that is not an identifier is refused up front."""
        with pytest.raises(ConfigurationError) as info:
            PostgresSink(PG_DSN, table="audit; DROP TABLE x")
        assert info.value.setting == "table"

    def test_unreachable_server(self) -> None:
        """No server: SinkUnavailableError, without the DSN's password in the message."""
        from tests.services.conftest import free_port

        sink = PostgresSink(f"postgresql://u:pw-s3cret@127.0.0.1:{free_port()}/x", timeout=1)
        with pytest.raises(SinkUnavailableError) as info:
            emit_all(sink, numbered_batch(0, 1))
        assert "s3cret" not in str(info.value)

    def test_faults_through_a_proxy(
        self,
        pg_table: str,
        fault_proxy: Callable[[tuple[str, int]], FaultProxy],
        make_delivery: Callable[..., Delivery],
        tmp_path: Path,
    ) -> None:
        """Cut mid-batch, blackholed, slowed, refused: each event stored exactly once, in order."""
        proxy = fault_proxy(("127.0.0.1", 5432))
        dsn = f"host=127.0.0.1 port={proxy.port} user=postgres dbname=test"
        delivery = make_delivery(
            [PostgresSink(dsn, table=pg_table, timeout=1)],
            spool_dir=tmp_path / "spool",
            max_batch=10,
        )
        total = fault_scenario(delivery, proxy)
        wait_for(
            lambda: (
                "audit.sink_recovered" in [e["kind"] for e in pg_rows(pg_table)]
                and sum(e["kind"] == "http" for e in pg_rows(pg_table)) >= total
            ),
            what="every event in the table",
        )
        rows = pg_rows(pg_table)
        assert_complete_in_order(rows, total)
        assert sum(e["kind"] == "http" for e in rows) == total  # exactly once
