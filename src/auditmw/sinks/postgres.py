"""Insert events into an append-only PostgreSQL table (``pip install 'auditmw[postgres]'``).

The table (created on first use unless ``create=False``) has one row per event:
``id`` (identity column: the insertion order), ``event_id`` (UUID primary key; a
replayed event is ignored by ``ON CONFLICT DO NOTHING``), indexed columns for
time, actor, action and outcome, the canonical event as JSONB, and ``line``, the
exact stored bytes the integrity chain covers.  Triggers refuse ``UPDATE``,
``DELETE`` and ``TRUNCATE`` (only ``DROP TABLE`` by the owner remains, which no
application role should hold).
Each batch is one transaction: when :meth:`PostgresSink.aemit` returns, the rows
are committed.

The sink is asynchronous (psycopg's ``AsyncConnection`` on the delivery thread's
loop) so that every statement is bounded by ``timeout``, even against a server
that stopped answering.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Literal

from auditmw.exceptions import ConfigurationError, SinkError, SinkTimeoutError, SinkUnavailableError
from auditmw.sinks.base import require

if TYPE_CHECKING:
    from auditmw.sinks.base import Batch

__all__ = ["PostgresSink"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {t} (
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    event_id   uuid        PRIMARY KEY,
    time       timestamptz NOT NULL,
    kind       text        NOT NULL,
    actor_id   text,
    action     text        NOT NULL,
    outcome    text        NOT NULL,
    chain_id   text,
    seq        bigint,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    event      jsonb       NOT NULL,
    line       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS {time_idx} ON {t} (time);
CREATE INDEX IF NOT EXISTS {actor_idx} ON {t} (actor_id, time);
CREATE INDEX IF NOT EXISTS {action_idx} ON {t} (action, time);
CREATE INDEX IF NOT EXISTS {outcome_idx} ON {t} (outcome, time);
CREATE OR REPLACE FUNCTION auditmw_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auditmw: % on append-only audit table % is refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE OR REPLACE TRIGGER {no_change} BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION auditmw_refuse_change();
CREATE OR REPLACE TRIGGER {no_truncate} BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION auditmw_refuse_change();
"""

_INSERT = (
    "INSERT INTO {t} (event_id, time, kind, actor_id, action, outcome, chain_id, seq, event, line)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)


def _row(event: dict[str, Any], line: bytes, jsonb: Any) -> tuple[Any, ...]:
    integrity = event.get("integrity") or {}
    return (
        event["event_id"],
        event["time"],
        event.get("kind", "http"),
        (event.get("actor") or {}).get("id"),
        event.get("action", ""),
        event.get("outcome", ""),
        integrity.get("chain_id"),
        integrity.get("seq"),
        jsonb(event),
        line.decode("utf-8"),
    )


class PostgresSink:
    """Stores each batch in one transaction.

    Args:
        dsn: a libpq connection string or URL (``postgresql://user@host/db``).
        table: the table name (optionally ``schema.table``).
        create: create the table, indexes and triggers when missing.
        format: the stored format of ``line``.
        timeout: seconds allowed for connecting and for each batch.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    Raises:
        ConfigurationError: the table name is not a plain identifier.
        MissingDependencyError: psycopg is not installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "audit_events",
        create: bool = True,
        format: str = "auditmw",
        timeout: float = 5.0,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        self._psycopg = require("psycopg", extra="postgres", feature="PostgresSink")
        parts = table.split(".")
        if len(parts) > 2 or not all(_NAME.match(p) for p in parts):
            raise ConfigurationError(
                f"PostgresSink table must be 'name' or 'schema.name' (letters, digits, _), "
                f"got {table!r}",
                setting="table",
            )
        self._dsn = dsn
        self.table = table
        self.format = format
        self.delivery_mode = delivery_mode
        self._create = create
        self._timeout = timeout
        self._conn: Any = None
        self._ready = False

    def _sql(self, template: str) -> Any:
        sql = self._psycopg.sql
        base = self.table.split(".")[-1]
        names = {
            key: sql.Identifier(f"{base}_{key}")
            for key in (
                "time_idx",
                "actor_idx",
                "action_idx",
                "outcome_idx",
                "no_change",
                "no_truncate",
            )
        }
        return sql.SQL(template).format(t=sql.Identifier(*self.table.split(".")), **names)

    async def aemit(self, batch: Batch) -> None:
        """Insert the batch in one transaction; returns once it is committed.

        Raises:
            SinkUnavailableError: the server cannot be reached or the connection broke.
            SinkTimeoutError: the batch did not commit within ``timeout``.
            SinkError: the server refused the rows (``retryable=False``).
        """
        if not batch:
            return
        try:
            await asyncio.wait_for(self._insert(batch), self._timeout)
        except TimeoutError as exc:
            await self._drop_connection()
            raise SinkTimeoutError(f"PostgresSink: no commit within {self._timeout}s") from exc
        except self._psycopg.OperationalError as exc:
            await self._drop_connection()
            raise SinkUnavailableError(f"PostgresSink: {type(exc).__name__}") from exc
        except self._psycopg.errors.UndefinedTable as exc:
            self._ready = False  # dropped under us: create it again on the retry
            raise SinkUnavailableError("PostgresSink: table missing") from exc
        except self._psycopg.Error as exc:
            await self._drop_connection()
            raise SinkError(f"PostgresSink: {type(exc).__name__}", retryable=False) from exc

    async def _insert(self, batch: Batch) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await self._psycopg.AsyncConnection.connect(
                self._dsn, connect_timeout=max(1, int(self._timeout))
            )
        conn = self._conn
        if self._create and not self._ready:
            async with conn.transaction():
                # Serialise creation across processes: CREATE ... IF NOT EXISTS can race.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                await conn.execute(self._sql(_SCHEMA))
            self._ready = True
        jsonb = self._psycopg.types.json.Jsonb
        rows = [_row(e, line, jsonb) for e, line in zip(batch.events, batch.lines, strict=True)]
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(self._sql(_INSERT), rows)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: S110 - the connection is being discarded anyway
                pass

    async def aclose(self) -> None:
        """Close the connection."""
        await self._drop_connection()

    def __repr__(self) -> str:
        return f"PostgresSink(table={self.table!r})"
