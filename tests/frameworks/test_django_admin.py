"""The Django audit trail app: DjangoSink, the append-only model, the admin, auditmw_verify.

Everything runs through the real thing: requests through Django's handler and the
auditmw middleware, records stored by the delivery thread through Django's ORM into
SQLite files, admin pages fetched with Django's test client, the management command
through ``call_command``.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import threading
import uuid
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
import pytest

from tests._waiting import wait_for
from tests.frameworks import django_app

django_app.setup()

from django.contrib.auth.models import User  # noqa: E402 - needs django.setup()
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402

from auditmw.canonical import dumps, new_event_id  # noqa: E402
from auditmw.config import AuditConfig  # noqa: E402
from auditmw.contrib.django_app.models import AppendOnlyError, AuditRecord  # noqa: E402
from auditmw.contrib.django_app.sink import DjangoSink  # noqa: E402
from auditmw.contrib.django_app.verification import verify_record, verify_table  # noqa: E402
from auditmw.evidence.sources import verify_sources  # noqa: E402
from auditmw.exceptions import SettingError, SinkUnavailableError  # noqa: E402
from auditmw.integrity import KeyRegistry  # noqa: E402
from auditmw.sinks import MemorySink  # noqa: E402
from auditmw.sinks.base import Batch  # noqa: E402
from tests._browser import chromium  # noqa: E402
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

    def test_durable_mode_answers_after_the_commit(self, tmp_path: Path, db: str) -> None:
        """In durable mode a response is only returned once its row is committed."""
        with trail_settings(tmp_path, using=db, mode="durable"):
            for n in range(3):
                response = Client().get(f"/orders/{n}", **HEADERS)  # type: ignore[arg-type]
                audit_id = uuid.UUID(response["Audit-Id"])
                assert AuditRecord.objects.using(db).filter(event_id=audit_id).exists()

    def test_unmigrated_table_is_reported_then_written(self, tmp_path: Path) -> None:
        """Before ``migrate``: ``audit.sink_failed`` naming it, events kept; after: all stored."""
        memory = MemorySink()
        with (
            sqlite_database(tmp_path, migrate=False) as alias,
            trail_settings(tmp_path, using=alias, extra_sinks=(memory,), retry_initial=0.01),
        ):
            with pytest.raises(SinkUnavailableError, match=r"manage\.py migrate"):
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
                lambda r, q: AuditRecord._base_manager.using(q.db).update(outcome="x"),
                id="base-manager-update",
            ),
            pytest.param(
                lambda r, q: AuditRecord._base_manager.using(q.db).all().delete(),
                id="base-manager-delete",
            ),
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


def tamper(using: str, row: AuditRecord) -> None:
    """Rewrite one stored line (SQLite has no triggers; PostgreSQL's are tested elsewhere)."""
    raw(using, "UPDATE auditmw_events SET line = %s WHERE id = %s",
        [row.line.replace('"success"', '"failure"', 1), row.id])  # fmt: skip


@pytest.fixture
def admin_client() -> Client:
    """A test client logged in as a fresh superuser."""
    user = User.objects.create_superuser(f"admin-{uuid.uuid4().hex[:8]}", "a@x.test", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def trail_rows(tmp_path: Path) -> Iterator[list[AuditRecord]]:
    """The closed, signed chain of a few requests, stored in the project's default database.

    ``AUDITMW_LOG`` names the chain's public key, so the admin checks its signatures.
    """
    from django.test.utils import override_settings

    before = last_id()
    with trail_settings(tmp_path) as trail:
        visit(Client())
        trail.close()
        keys = str(trail.public_key)
    with override_settings(AUDITMW_LOG={"keys": keys}):
        yield rows(after=before)


def listed(response: Any) -> list[int]:
    """The ids of the records a changelist page shows, in order."""
    return [int(i) for i in re.findall(rf'href="{URL}(\d+)/change/', response.content.decode())]


URL = "/admin/auditmw_log/auditrecord/"


class TestAdmin:
    def test_changelist_lists_the_trail(
        self, admin_client: Client, trail_rows: list[AuditRecord]
    ) -> None:
        """The list shows the records with their action, outcome and status, newest first."""
        page = admin_client.get(URL).content.decode()
        for row in trail_rows:
            if row.kind == "http":
                assert f"{URL}{row.id}/change/" in page
        assert "orders.read" in page or trail_rows[0].action in page

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            pytest.param({"outcome": "denied"}, "outcome", id="outcome"),
            pytest.param({"status": "204"}, "status", id="status"),
            pytest.param({"kind": "audit.checkpoint"}, "kind", id="kind"),
        ],
    )
    def test_filters(
        self, admin_client: Client, trail_rows: list[AuditRecord], query: dict[str, str],
        field: str,
    ) -> None:  # fmt: skip
        """Filtering by outcome, status, kind keeps exactly the matching records."""
        query = {**query, "chain_id": str(trail_rows[-1].chain_id)}  # this test's chain only
        value = query[field]
        shown = listed(admin_client.get(URL, query))
        expected = [r.pk for r in reversed(trail_rows) if str(getattr(r, field)) == value]
        assert shown == expected
        assert expected

    def test_filter_by_actor_action_and_time(
        self, admin_client: Client, trail_rows: list[AuditRecord]
    ) -> None:
        """Actor (the link in each row), action and a time range narrow the list."""
        row = next(r for r in trail_rows if r.kind == "http")
        query = {"actor_id": str(row.actor_id), "action": row.action, "chain_id": str(row.chain_id),
                 "time__gte": row.time.isoformat(), "time__lte": row.time.isoformat()}  # fmt: skip
        assert listed(admin_client.get(URL, query)) == [row.pk]

    def test_nobody_may_add_change_or_delete(
        self, admin_client: Client, trail_rows: list[AuditRecord]
    ) -> None:
        """Even a superuser gets 403 on add and delete, and a change POST changes nothing."""
        row = trail_rows[0]
        assert admin_client.get(f"{URL}add/").status_code == 403
        assert admin_client.post(f"{URL}{row.id}/delete/", {"post": "yes"}).status_code == 403
        admin_client.post(f"{URL}{row.id}/change/", {"outcome": "success", "line": "{}"})
        assert AuditRecord.objects.get(pk=row.pk).line == row.line
        page = admin_client.get(URL).content.decode()
        assert "delete_selected" not in page
        assert f"{URL}add/" not in page

    def test_detail_shows_the_record_and_a_clean_verdict(
        self, admin_client: Client, trail_rows: list[AuditRecord]
    ) -> None:
        """The detail page shows the stored event and that its chain segment verifies."""
        row = next(r for r in trail_rows if r.kind == "http")
        page = admin_client.get(f"{URL}{row.id}/change/").content.decode()
        assert 'data-verdict="clean"' in page
        assert str(row.event_id) in page
        assert "auditmw-record" in page

    def test_detail_shows_tampering(
        self, admin_client: Client, trail_rows: list[AuditRecord]
    ) -> None:
        """A stored line changed behind Django's back makes the verdict TAMPERED."""
        row = next(r for r in trail_rows if r.kind == "http" and r.outcome == "success")
        tamper("default", row)
        try:
            page = admin_client.get(f"{URL}{row.id}/change/").content.decode()
        finally:
            raw("default", "UPDATE auditmw_events SET line = %s WHERE id = %s", [row.line, row.id])
        assert 'data-verdict="tampered"' in page
        assert f"auditmw_events:{row.id}" in page

    def test_a_verification_error_does_not_break_the_page(
        self, admin_client: Client, trail_rows: list[AuditRecord], tmp_path: Path
    ) -> None:
        """Unreadable keys: the page renders and says the record could not be verified."""
        from django.test.utils import override_settings

        row = trail_rows[0]
        with override_settings(AUDITMW_LOG={"keys": str(tmp_path / "missing.pem")}):
            response = admin_client.get(f"{URL}{row.id}/change/")
        assert response.status_code == 200
        assert 'data-verdict="error"' in response.content.decode()


class TestVerifyRecord:
    def test_segments(self, tmp_path: Path, filled: str) -> None:
        """Every record's segment (checkpoint to checkpoint) verifies clean with the keys."""
        keys = keys_for(tmp_path)
        stored = rows(filled)
        assert sum(r.kind == "audit.checkpoint" for r in stored) >= 3
        assert {verify_record(r, keys=keys).verdict for r in stored} == {"clean"}

    @pytest.mark.parametrize("attack", ["modify", "delete", "forge-checkpoint"])
    def test_tampering_marks_its_segment_only(
        self, tmp_path: Path, filled: str, attack: str
    ) -> None:
        """Tampering shows on the records of the segment it touches; other segments stay clean."""
        keys = keys_for(tmp_path)
        stored = rows(filled)
        marks = [i for i, r in enumerate(stored) if r.kind == "audit.checkpoint"]
        start, cover = marks[1], marks[2]  # the second segment, with a checkpoint before it
        victim = next(r for r in stored[start + 1 : cover] if r.kind == "http")
        if attack == "modify":
            tamper(filled, victim)
        elif attack == "delete":
            raw(filled, "DELETE FROM auditmw_events WHERE id = %s", [victim.id])
        else:  # the checkpoint the segment starts from
            victim = stored[start]
            line = victim.line.replace('"last_seq":', '"last_seq":1', 1)
            raw(filled, "UPDATE auditmw_events SET line = %s WHERE id = %s", [line, victim.id])
        inside = [r for r in stored[start + 1 : cover + 1] if r.id != victim.id]
        verdicts = {verify_record(r, keys=keys).verdict for r in inside}
        assert verdicts == {"tampered"}
        before = list(stored[: marks[0] + 1])
        after = list(stored[cover + 1 : marks[3] + 1]) if len(marks) > 3 else []
        assert {verify_record(r, keys=keys).verdict for r in before + after} == {"clean"}

    def test_a_segment_too_long_is_not_verified_here(
        self, filled: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the size bound the page says so and points to auditmw_verify (bounded work)."""
        from auditmw.contrib.django_app import verification

        monkeypatch.setattr(verification, "MAX_SEGMENT", 2)
        row = next(r for r in rows(filled) if r.kind == "http")
        result = verify_record(row)
        assert result.verdict == "too_long"
        assert "auditmw_verify" in result.summary

    def test_uncovered_record_is_pending(self, db: str) -> None:
        """A chained record no checkpoint covers yet is reported pending, not clean."""
        with trail_settings_for_pending(db) as row:
            assert verify_record(row).verdict == "pending"

    def test_unchained_record_is_not_verified(self, db: str) -> None:
        """Without integrity there is nothing to verify, and the verdict says so."""
        DjangoSink(using=db).emit(make_batch(1))
        (row,) = rows(db)
        assert verify_record(row).verdict == "not_verified"


def trail_settings_for_pending(db: str) -> Any:
    """A chained record stored without the checkpoint that will cover it."""
    import contextlib

    @contextlib.contextmanager
    def stored() -> Iterator[AuditRecord]:
        event = orjson.loads(make_batch(1).lines[0])
        event["integrity"] = {"chain_id": "c-pending", "seq": 1, "prev": "0" * 64, "hash": "0" * 64}
        DjangoSink(using=db).emit(Batch([event], [dumps(event)]))
        yield rows(db)[-1]

    return stored()


def verify_command(*args: str) -> tuple[int, str]:
    """Run ``manage.py auditmw_verify``; return its exit status and output."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("auditmw_verify", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


class TestVerifyCommand:
    def test_clean_table(self, tmp_path: Path, filled: str) -> None:
        """A table as stored verifies clean (exit 0), with the same report as a file copy."""
        pem = str(next(tmp_path.glob("trail-*.pem")))
        code, out = verify_command("--database", filled, "--keys", pem)
        assert code == 0, out
        assert "CLEAN" in out
        code, out = verify_command("--database", filled, "--keys", pem, "--json")
        report = orjson.loads(out)
        path = tmp_path / "copy.jsonl"
        path.write_bytes(b"".join(r.line.encode() + b"\n" for r in rows(filled)))
        expected = verify_sources([path], keys=keys_for(tmp_path)).to_dict()
        assert report["verdict"] == expected["verdict"] == "clean"
        assert report["chains"] == expected["chains"]

    def test_output_is_auditmw_verifys(
        self, tmp_path: Path, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The human report is, line for line, what ``auditmw verify`` prints for the lines."""
        from auditmw.cli import main

        pem = str(next(tmp_path.glob("trail-*.pem")))
        path = tmp_path / "copy.jsonl"
        path.write_bytes(b"".join(r.line.encode() + b"\n" for r in rows(filled)))
        assert main(["verify", str(path), "--keys", pem]) == 0
        expected = capsys.readouterr().out
        code, out = verify_command("--database", filled, "--keys", pem)
        assert (code, out) == (0, expected)

    def test_unmigrated_database_is_an_error(self, tmp_path: Path) -> None:
        """A database without the table is exit 2, naming the fix."""
        with sqlite_database(tmp_path, migrate=False) as alias:
            code, out = verify_command("--database", alias)
        assert code == 2
        assert "manage.py migrate auditmw_log" in out

    @pytest.mark.parametrize("attack", ["modify", "delete", "insert"])
    def test_tampering_is_found(self, tmp_path: Path, filled: str, attack: str) -> None:
        """A modified, deleted or inserted row is a finding (exit 1) naming the row."""
        pem = str(next(tmp_path.glob("trail-*.pem")))
        row = next(r for r in rows(filled) if r.kind == "http" and r.outcome == "success")
        if attack == "modify":
            tamper(filled, row)
        elif attack == "delete":
            raw(filled, "DELETE FROM auditmw_events WHERE id = %s", [row.id])
        else:
            forged = row.line.replace(str(row.event_id), str(uuid.uuid4()))
            DjangoSink(using=filled).emit(Batch([orjson.loads(forged)], [forged.encode()]))
        code, out = verify_command("--database", filled, "--keys", pem)
        assert code == 1, out
        assert "FINDINGS" in out
        assert "auditmw_events:" in out

    def test_empty_table_is_not_verified(self, db: str) -> None:
        """An empty table is NOT VERIFIED (exit 3), or clean with --allow-empty."""
        assert verify_command("--database", db)[0] == 3
        assert verify_command("--database", db, "--allow-empty")[0] == 0

    def test_bad_keys_option(self, db: str, tmp_path: Path) -> None:
        """An unreadable key registry is a usage error (exit 2) naming the option."""
        code, out = verify_command("--database", db, "--keys", str(tmp_path / "missing.json"))
        assert code == 2
        assert "keys" in out

    def test_keys_from_settings(self, tmp_path: Path, filled: str) -> None:
        """Without --keys the command uses settings.AUDITMW_LOG['keys']."""
        from django.test.utils import override_settings

        pem = str(next(tmp_path.glob("trail-*.pem")))
        with override_settings(AUDITMW_LOG={"keys": pem}):
            code, out = verify_command("--database", filled)
        assert code == 0, out


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@contextlib.contextmanager
def live_admin(session: str) -> Iterator[str]:
    """Serve the project's WSGI app from a thread, as a browser logged in with ``session``."""
    application = get_wsgi_application()

    def logged_in(environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_COOKIE"] = f"sessionid={session}"  # the browser's session cookie
        return application(environ, start_response)

    server = make_server("127.0.0.1", 0, logged_in, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


def render(url: str, tmp_path: Path, name: str) -> str:
    """The DOM of ``url`` after headless Chromium loaded and ran it."""
    dumped = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / name}", "--dump-dom", url],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    return dumped.stdout


@pytest.mark.e2e
def test_admin_in_chromium(
    admin_client: Client, trail_rows: list[AuditRecord], tmp_path: Path
) -> None:
    """A real browser renders the changelist (this chain's records) and a record's verdict."""
    session = admin_client.cookies["sessionid"].value
    row = next(r for r in trail_rows if r.kind == "http")
    with live_admin(session) as base:
        listing = render(f"{base}{URL}?chain_id={row.chain_id}", tmp_path, "list")
        detail = render(f"{base}{URL}{row.id}/change/", tmp_path, "detail")
    assert 'id="result_list"' in listing
    shown = [int(i) for i in re.findall(rf'href="{URL}(\d+)/change/', listing)]
    assert shown == [r.id for r in reversed(trail_rows)]
    assert re.search(r'data-verdict="clean"><strong>CLEAN</strong>', detail)
    assert str(row.event_id) in detail
    assert "Change audit record" not in detail  # a view-only page, no form to save
    assert 'name="_save"' not in detail


def test_events_without_id_or_time_are_stored(db: str) -> None:
    """A record lacking ``event_id`` or a valid ``time`` is stored, not retried forever."""
    batch = make_batch(3)
    for index, broken in ((0, {"event_id": None}), (1, {"time": "not a time"})):
        event = {k: v for k, v in batch.events[index].items() if k not in broken}
        event.update({k: v for k, v in broken.items() if v is not None})
        batch.events[index], batch.lines[index] = event, dumps(event)
    sink = DjangoSink(using=db)
    sink.emit(batch)
    sink.emit(batch)  # a replay: the derived event ids are stable
    assert [r.line.encode() for r in rows(db)] == batch.lines


def test_keys_default_to_the_signing_key_of_auditmw(admin_client: Client, tmp_path: Path) -> None:
    """Without ``AUDITMW_LOG`` the admin checks signatures with AUDITMW's own signing key."""
    from django.test.utils import override_settings

    before = last_id()
    with trail_settings(tmp_path) as trail, override_settings(AUDITMW_LOG={}):
        visit(Client())
        trail.close()
        row = next(r for r in rows(after=before) if r.kind == "http")
        page = admin_client.get(f"{URL}{row.id}/change/").content.decode()
    assert 'data-verdict="clean"' in page


def test_the_app_registers_the_system_checks() -> None:
    """With only the trail app installed, ``manage.py check`` runs auditmw's checks."""
    from django.apps import apps
    from django.core import checks
    from django.test.utils import override_settings

    assert apps.get_app_config("auditmw_log").name == "auditmw.contrib.django_app"
    with override_settings(AUDITMW={"service": "x", "no_such_key": 1}):
        errors = checks.run_checks(tags=["auditmw"])
    assert [e.id for e in errors] == ["auditmw.E001"]


class TestSinkFromPlainSettings:
    def test_type_django_builds_the_sink(self, db: str) -> None:
        """``{"type": "django", "using": alias}`` in a settings document is a DjangoSink
        writing to that database, as the class given in code would."""
        config = AuditConfig.from_mapping(
            {"service": "trail", "sinks": [{"type": "django", "using": db}]}
        )
        (sink,) = config.sinks
        assert isinstance(sink, DjangoSink)
        assert sink.using == db
        before = last_id(db)
        sink.emit(make_batch(2))
        assert len(rows(db, after=before)) == 2

    def test_unknown_option_names_the_setting(self, db: str) -> None:
        """A misspelt option is refused at construction with the key path."""
        with pytest.raises(SettingError, match="/sinks/0"):
            AuditConfig.from_mapping(
                {"service": "trail", "sinks": [{"type": "django", "usin": db}]}
            )
