"""The Django audit trail app: DjangoSink, the append-only model, the admin, auditmw_verify.

Everything runs through the real thing: requests through Django's handler and the
auditmw middleware, records stored by the delivery thread through Django's ORM into
SQLite files, admin pages fetched with Django's test client, the management command
through ``call_command``.
"""

from __future__ import annotations

import io
import threading
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from tests._waiting import wait_for
from tests.frameworks import django_app

django_app.setup()

from django.contrib.auth.models import User  # noqa: E402 - needs django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402

from auditmw.canonical import dumps, new_event_id  # noqa: E402
from auditmw.contrib.django_app.models import AppendOnlyError, AuditRecord  # noqa: E402
from auditmw.contrib.django_app.sink import DjangoSink  # noqa: E402
from auditmw.contrib.django_app.verification import verify_record, verify_table  # noqa: E402
from auditmw.evidence.sources import verify_sources  # noqa: E402
from auditmw.exceptions import SinkUnavailableError  # noqa: E402
from auditmw.integrity import KeyRegistry  # noqa: E402
from auditmw.sinks import MemorySink  # noqa: E402
from auditmw.sinks.base import Batch  # noqa: E402
from tests.frameworks._django_trail import sqlite_database, trail_settings  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HEADERS = {"HTTP_HOST": "api.example.com"}


def visit(client: Client) -> None:
    """A few requests with different outcomes and statuses."""
    for path in ("/orders/1", "/orders/2", "/forbidden", "/keys/k1", "/orders/3"):
        client.get(path, **HEADERS)  # type: ignore[arg-type]


def rows(using: str = "default", after: int = 0) -> list[AuditRecord]:
    return list(AuditRecord.objects.using(using).filter(id__gt=after).order_by("id"))


def last_id(using: str = "default") -> int:
    row = AuditRecord.objects.using(using).order_by("-id").first()
    return 0 if row is None else row.id


def raw(using: str, sql: str, params: list[Any]) -> None:
    """Change the table behind the model's back, as an attacker with SQL access would."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def make_batch(count: int) -> Batch:
    events = [
        {"event_id": new_event_id(), "time": "2026-12-03T10:00:00.000000Z", "kind": "http",
         "action": "orders.read", "outcome": "success", "actor": {"id": "u1"},
         "response": {"status_code": 200}}
        for _ in range(count)
    ]  # fmt: skip
    return Batch(list(events), [dumps(e) for e in events])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database of the test's own."""
    with sqlite_database(tmp_path) as alias:
        yield alias


@pytest.fixture
def filled(tmp_path: Path, db: str) -> Iterator[str]:
    """The test's own database, holding the closed, signed chain of a few requests."""
    with trail_settings(tmp_path, using=db) as trail:
        visit(Client())
        trail.close()
        yield db


def keys_for(tmp_path: Path) -> KeyRegistry:
    (pem,) = tmp_path.glob("trail-*.pem")
    return KeyRegistry.from_file(pem)


class TestDjangoSink:
    def test_requests_are_stored_as_chained(self, tmp_path: Path, filled: str) -> None:
        """Each request's line is stored byte for byte (the chain verifies) with its columns."""
        stored = rows(filled)
        http = [r for r in stored if r.kind == "http"]
        assert len(http) == 5
        assert sum(r.kind == "audit.checkpoint" for r in stored) >= 2
        for row in http:
            event = orjson.loads(row.line)
            assert (row.action, row.outcome) == (event["action"], event["outcome"])
            assert row.status == event["response"]["status_code"]
            assert str(row.event_id) == event["event_id"]
            assert (row.chain_id, row.seq) == (
                event["integrity"]["chain_id"],
                event["integrity"]["seq"],
            )
        assert {r.status for r in http} == {200, 403, 204}
        report = verify_table(using=filled, keys=keys_for(tmp_path))
        assert report.verdict == "clean", report.findings

    def test_stored_bytes_equal_what_a_file_sink_verifies(
        self, tmp_path: Path, filled: str
    ) -> None:
        """The table's lines, written to a file, verify identically with ``auditmw verify``."""
        path = tmp_path / "copy.jsonl"
        path.write_bytes(b"".join(r.line.encode() + b"\n" for r in rows(filled)))
        from_file = verify_sources([path], keys=keys_for(tmp_path))
        from_table = verify_table(using=filled, keys=keys_for(tmp_path))
        assert from_file.verdict == from_table.verdict == "clean"
        assert [c.head for c in from_file.chains] == [c.head for c in from_table.chains]

    def test_replayed_batch_is_ignored(self, db: str) -> None:
        """A batch delivered twice (a retry after a lost ack) is stored once."""
        sink, batch = DjangoSink(using=db), make_batch(3)
        sink.emit(batch)
        sink.emit(batch)
        assert [r.line.encode() for r in rows(db)] == batch.lines

    def test_the_delivery_threads_connection_is_released(self, db: str) -> None:
        """After a batch, the writing thread holds no open connection (CONN_MAX_AGE = 0)."""
        held: list[object] = []

        def deliver() -> None:
            sink = DjangoSink(using=db)
            sink.emit(make_batch(2))
            held.append(connections[db].connection)
            sink.close()

        thread = threading.Thread(target=deliver)
        thread.start()
        thread.join(30)
        assert held == [None]
        assert len(rows(db)) == 2

    def test_unmigrated_table_is_reported_then_written(self, tmp_path: Path) -> None:
        """Before ``migrate``: ``audit.sink_failed`` naming it, events kept; after: all stored."""
        memory = MemorySink()
        with (
            sqlite_database(tmp_path, migrate=False) as alias,
            trail_settings(tmp_path, using=alias, extra_sinks=(memory,), retry_initial=0.01),
        ):
            with pytest.raises(SinkUnavailableError, match="manage.py migrate"):
                DjangoSink(using=alias).emit(make_batch(1))
            visit(Client())

            def failed() -> list[dict[str, Any]]:
                return [e for e in memory.events if e["kind"] == "audit.sink_failed"]

            wait_for(lambda: bool(failed()), "audit.sink_failed")
            assert "manage.py migrate auditmw_log" in failed()[0]["details"]["message"]
            assert failed()[0]["details"]["retryable"] is True
            call_command("migrate", "auditmw_log", database=alias, verbosity=0)
            wait_for(
                lambda: sum(r.kind == "http" for r in rows(alias)) == 5, "the kept events stored"
            )


class TestAppendOnly:
    @pytest.mark.parametrize(
        "change",
        [
            pytest.param(lambda r, q: r.save(), id="save-existing"),
            pytest.param(lambda r, q: r.delete(), id="delete"),
            pytest.param(lambda r, q: q.update(outcome="success"), id="queryset-update"),
            pytest.param(lambda r, q: q.delete(), id="queryset-delete"),
            pytest.param(lambda r, q: q.bulk_update([r], ["outcome"]), id="bulk-update"),
            pytest.param(
                lambda r, q: q.update_or_create(event_id=r.event_id, defaults={"outcome": "x"}),
                id="update-or-create",
            ),
        ],
    )
    def test_changes_are_refused(self, db: str, change: Any) -> None:
        """Every ORM path that changes or removes a record raises; the row stays as stored."""
        DjangoSink(using=db).emit(make_batch(1))
        (row,) = rows(db)
        row.outcome = "tampered"
        with pytest.raises(AppendOnlyError, match="append-only"):
            change(row, AuditRecord.objects.using(db).all())
        (after,) = rows(db)
        assert after.outcome == "success"
        assert after.line == row.line
