"""``auditmw verify`` and ``auditmw query`` read a chained log straight from its store.

A real PostgresSink and a real NATSSink write a chained, signed stream through an
Auditor; the CLI then verifies it from the table or the JetStream stream, and
catches tampering done inside the store.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw import AuditConfig, Auditor, DeliveryOptions, IntegrityOptions
from auditmw.cli import main
from auditmw.event import Headers
from auditmw.integrity import generate_keypair
from tests.services.conftest import NATS_URL, PG_DSN, NatsStream

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.types import AnySink

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def write_chain(sink: AnySink, tmp_path: Path, requests: int = 12) -> Path:
    """Record ``requests`` events through an Auditor with integrity on; return the public key."""
    private, public, _ = generate_keypair()
    key = tmp_path / "auditmw.pub"
    key.write_bytes(public)
    config = AuditConfig(
        service="orders-api",
        sinks=[sink],
        delivery=DeliveryOptions(max_wait_ms=5),
        integrity=IntegrityOptions(signing_key=private, checkpoint_every=5),
    )
    auditor = Auditor(config)
    for i in range(requests):
        exchange = auditor.new_exchange(
            "http", "GET", f"/orders/{i}", Headers([]), client=("10.0.0.1", 1)
        )
        exchange.status = 200 if i % 3 else 403
        auditor.record(exchange)
    auditor.close()
    return key


@pytest.mark.service("postgres")
class TestPostgresStore:
    def test_verify_and_query_a_table(
        self, pg_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A table written by PostgresSink verifies clean; an edited row is caught."""
        psycopg = pytest.importorskip("psycopg")
        from auditmw.sinks import PostgresSink

        key = write_chain(PostgresSink(PG_URL, table=pg_table), tmp_path)
        url = f"{PG_URL}?table={pg_table}"
        assert main(["verify", url, "--keys", str(key)]) == 0
        assert "CLEAN" in capsys.readouterr().out
        assert main(["query", url, "--outcome", "denied", "--format", "jsonl"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 4
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            # Only an owner who disables the append-only triggers can do this.
            conn.execute(f"ALTER TABLE {pg_table} DISABLE TRIGGER USER")
            edit = f"UPDATE {pg_table} SET line = replace(line, '/orders/4', '/orders/5') "  # noqa: S608
            conn.execute(edit + "WHERE line LIKE '%/orders/4%'")
        assert main(["verify", url, "--keys", str(key)]) == 1
        out = capsys.readouterr().out
        assert "modified_event" in out
        assert pg_table in out


def write_stream_chain(nats_stream: NatsStream, tmp_path: Path) -> Path:
    """Write the test chain to ``nats_stream`` through a real NATSSink; return the key file."""
    pytest.importorskip("nats")
    from auditmw.sinks import NATSSink

    sink = NATSSink(
        NATS_URL, subject=nats_stream.subject, stream=nats_stream.name, create_stream=True
    )
    return write_chain(sink, tmp_path)


@pytest.mark.service("nats")
class TestJetStreamStore:
    def test_verify_and_query_a_stream(
        self, nats_stream: NatsStream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A stream written by NATSSink verifies clean; a deleted message is caught."""
        key = write_stream_chain(nats_stream, tmp_path)
        url = f"{NATS_URL}/{nats_stream.name}"
        assert main(["verify", url, "--keys", str(key)]) == 0
        assert "CLEAN" in capsys.readouterr().out
        assert main(["query", url, "--outcome", "denied", "--format", "jsonl"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 4

        async def delete_one() -> None:
            import nats

            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_msg(nats_stream.name, 6)
            finally:
                await nc.close()

        asyncio.run(delete_one())
        assert main(["verify", url, "--keys", str(key)]) == 1
        out = capsys.readouterr().out
        assert "deleted_events" in out or "broken_link" in out
        assert f"stream {nats_stream.name}" in out

    def test_unknown_stream_is_a_clear_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A stream that does not exist is a usage error naming it, not a crash."""
        pytest.importorskip("nats")
        assert main(["verify", f"{NATS_URL}/NO_SUCH_STREAM_X"]) == 2
        assert "NO_SUCH_STREAM_X" in capsys.readouterr().err


def _seq_of(line: bytes | str) -> int | None:
    """The seq of a stored event line, ``None`` for a checkpoint."""
    doc = orjson.loads(line)
    return None if doc.get("kind") == "audit.checkpoint" else int(doc["integrity"]["seq"])


def _deletions(seqs: list[int | None]) -> list[tuple[str, set[int], int, int]]:
    """Structural deletions over stored positions: (name, positions, first seq, last seq)."""
    events = [i for i, s in enumerate(seqs) if s is not None]
    top = max(s for s in seqs if s is not None)
    return [
        ("last-event", {events[-1]}, top, top),
        ("last-three", set(events[-3:]), top - 2, top),
        ("middle", set(events[3:5]), seqs[events[3]] or 0, seqs[events[4]] or 0),
        ("all-events", set(events), 1, top),
    ]


def _verify_json(url: str, key: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main(["verify", url, "--keys", str(key), "--json"])
    data: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    return data


@pytest.mark.service("postgres")
class TestPostgresStructuralTampering:
    @pytest.mark.parametrize("case", ["last-event", "last-three", "middle", "all-events"])
    def test_deleted_rows_are_reported_with_their_seqs(
        self, pg_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
    ) -> None:
        """Rows deleted anywhere in a table, the tail included, are deleted_events."""
        psycopg = pytest.importorskip("psycopg")
        from auditmw.sinks import PostgresSink

        key = write_chain(PostgresSink(PG_URL, table=pg_table), tmp_path)
        url = f"{PG_URL}?table={pg_table}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            rows = conn.execute(f"SELECT id, line FROM {pg_table} ORDER BY id").fetchall()  # noqa: S608
            name, positions, first, last = next(
                c for c in _deletions([_seq_of(line) for _, line in rows]) if c[0] == case
            )
            conn.execute(f"ALTER TABLE {pg_table} DISABLE TRIGGER USER")
            ids = [rows[i][0] for i in positions]
            conn.execute(f"DELETE FROM {pg_table} WHERE id = ANY(%s)", (ids,))  # noqa: S608
        data = _verify_json(url, key, capsys)
        deleted = [
            (f["seq"], f["seq_end"]) for f in data["findings"] if f["code"] == "deleted_events"
        ]
        assert deleted == [(first, last)], name
        assert data["verdict"] == "tampered"

    def test_swapped_rows_are_one_reordering(
        self, pg_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two events swapped in id order are one reordered_event naming both seqs."""
        psycopg = pytest.importorskip("psycopg")
        from auditmw.sinks import PostgresSink

        key = write_chain(PostgresSink(PG_URL, table=pg_table), tmp_path)
        url = f"{PG_URL}?table={pg_table}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            rows = conn.execute(f"SELECT id, line FROM {pg_table} ORDER BY id").fetchall()  # noqa: S608
            events = [(i, line) for i, line in rows if _seq_of(line) is not None]
            (a, line_a), (b, line_b) = events[2], events[3]
            conn.execute(f"ALTER TABLE {pg_table} DISABLE TRIGGER USER")
            update = f"UPDATE {pg_table} SET line = %s WHERE id = %s"  # noqa: S608
            conn.execute(update, (line_b, a))
            conn.execute(update, (line_a, b))
        data = _verify_json(url, key, capsys)
        tamper = [
            (f["code"], f["seq"], f["seq_end"])
            for f in data["findings"]
            if f["category"] == "tamper"
        ]
        assert tamper == [("reordered_event", _seq_of(line_a), _seq_of(line_b))]

    def test_empty_table_is_not_verified(
        self, pg_table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A table emptied of every row exits 3, NOT VERIFIED."""
        psycopg = pytest.importorskip("psycopg")
        from auditmw.sinks import PostgresSink

        key = write_chain(PostgresSink(PG_URL, table=pg_table), tmp_path)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {pg_table} DISABLE TRIGGER USER")
            conn.execute(f"DELETE FROM {pg_table}")  # noqa: S608
        assert main(["verify", f"{PG_URL}?table={pg_table}", "--keys", str(key)]) == 3
        assert "NOT VERIFIED" in capsys.readouterr().out


@pytest.mark.service("nats")
class TestJetStreamStructuralTampering:
    @pytest.mark.parametrize("case", ["last-event", "last-three", "middle", "all-events"])
    def test_deleted_messages_are_reported_with_their_seqs(
        self,
        nats_stream: NatsStream,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        case: str,
    ) -> None:
        """Messages deleted anywhere in a stream, the tail included, are deleted_events."""
        key = write_stream_chain(nats_stream, tmp_path)
        url = f"{NATS_URL}/{nats_stream.name}"
        stored = [orjson.dumps(m) for m in nats_stream.messages()]
        name, positions, first, last = next(
            c for c in _deletions([_seq_of(line) for line in stored]) if c[0] == case
        )

        async def delete() -> None:
            import nats

            nc = await nats.connect(NATS_URL)
            try:
                for position in sorted(positions):
                    await nc.jetstream().delete_msg(nats_stream.name, position + 1)
            finally:
                await nc.close()

        asyncio.run(delete())
        data = _verify_json(url, key, capsys)
        deleted = [
            (f["seq"], f["seq_end"]) for f in data["findings"] if f["code"] == "deleted_events"
        ]
        assert deleted == [(first, last)], name
        assert data["verdict"] == "tampered"

    def test_purged_stream_is_not_verified(
        self, nats_stream: NatsStream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A stream purged of every message exits 3, NOT VERIFIED."""
        key = write_stream_chain(nats_stream, tmp_path)

        async def purge() -> None:
            import nats

            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().purge_stream(nats_stream.name)
            finally:
                await nc.close()

        asyncio.run(purge())
        assert main(["verify", f"{NATS_URL}/{nats_stream.name}", "--keys", str(key)]) == 3
        assert "NOT VERIFIED" in capsys.readouterr().out
