"""The Django audit trail app on the real PostgreSQL: triggers, roles, ``auditmw verify``.

Each test migrates the app into a schema of its own (a Django database alias whose
``search_path`` is that schema) and drops it, with the roles it made, afterwards.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.frameworks import django_app

pytestmark = pytest.mark.service("postgres")
psycopg = pytest.importorskip("psycopg")
django_app.setup()

from django.core.management import call_command  # noqa: E402 - needs django.setup()
from django.db import DatabaseError, connections  # noqa: E402
from django.test import Client  # noqa: E402

from auditmw.canonical import dumps  # noqa: E402
from auditmw.cli import main  # noqa: E402
from auditmw.contrib.django_app.models import AuditRecord  # noqa: E402
from auditmw.contrib.django_app.sink import DjangoSink  # noqa: E402
from auditmw.evidence.sources import verify_sources  # noqa: E402
from auditmw.exceptions import SinkUnavailableError  # noqa: E402
from auditmw.integrity import KeyRegistry  # noqa: E402
from tests.frameworks._django_trail import extra_database, trail_settings  # noqa: E402
from tests.frameworks.test_django_admin import make_batch, visit  # noqa: E402
from tests.services.conftest import PG_DSN  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def postgres(
    schema: str, user: str = "postgres", migrate: bool = True
) -> contextlib.AbstractContextManager[str]:
    """A Django alias on the test database whose tables live in ``schema``."""
    return extra_database(
        migrate,
        ENGINE="django.db.backends.postgresql",
        HOST="127.0.0.1",
        PORT="5432",
        USER=user,
        PASSWORD="",
        NAME="test",
        OPTIONS={"options": f"-c search_path={schema}"},
    )


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema, dropped with everything in it (and the test's roles) afterwards."""
    name = f"auditmw_dj_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        for role in (f"{name}_w", f"{name}_r"):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def alias(schema: str) -> Iterator[str]:
    """The schema, migrated, as a Django alias logged in as the owner."""
    with postgres(schema) as name:
        yield name


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("UPDATE auditmw_events SET outcome = 'success'", id="update"),
        pytest.param("DELETE FROM auditmw_events", id="delete"),
        pytest.param("TRUNCATE auditmw_events", id="truncate"),
    ],
)
def test_migration_installs_the_refuse_change_triggers(alias: str, statement: str) -> None:
    """Raw SQL by the table's owner (a superuser here) cannot change or remove rows."""
    DjangoSink(using=alias).emit(make_batch(3))
    with pytest.raises(DatabaseError, match="append-only audit table"):  # noqa: SIM117
        with connections[alias].cursor() as cursor:
            cursor.execute(statement)
    assert AuditRecord.objects.using(alias).count() == 3


def test_writer_and_reader_roles_of_postgres_init(schema: str, alias: str, tmp_path: Path) -> None:
    """``auditmw postgres init`` on the app's table: the writer inserts (replays ignored)
    through Django and may not change rows; the reader verifies the table."""
    writer, reader = f"{schema}_w", f"{schema}_r"
    table = f"{schema}.auditmw_events"
    args = ["postgres", "init", PG_DSN, "--table", table]
    assert main([*args, "--writer-role", writer, "--reader-role", reader]) == 0
    with postgres(schema, user=writer, migrate=False) as as_writer:
        sink, batch = DjangoSink(using=as_writer), make_batch(4)
        sink.emit(batch)
        sink.emit(batch)  # a replay: ON CONFLICT DO NOTHING needs no more than INSERT
        with pytest.raises(DatabaseError, match="permission denied"):  # noqa: SIM117
            with connections[as_writer].cursor() as cursor:
                cursor.execute("UPDATE auditmw_events SET outcome = 'x'")
        sink.close()
    with postgres(schema, user=reader, migrate=False) as as_reader:
        lines = [r.line.encode() for r in AuditRecord.objects.using(as_reader).order_by("id")]
        assert lines == batch.lines
        with pytest.raises(SinkUnavailableError, match="permission denied"):
            DjangoSink(using=as_reader).emit(make_batch(1))


def test_requests_verify_with_auditmw_verify_and_the_command(
    schema: str, alias: str, tmp_path: Path
) -> None:
    """Requests stored through the middleware verify as a PostgreSQL table (``auditmw
    verify postgresql://…?table=``) and with ``manage.py auditmw_verify``."""
    with trail_settings(tmp_path, using=alias) as trail:
        visit(Client())
        trail.close()
        keys = trail.public_key
    url = f"postgresql://postgres@127.0.0.1:5432/test?table={schema}.auditmw_events"
    report = verify_sources([url], keys=KeyRegistry.from_file(keys))
    assert report.verdict == "clean", report.findings
    assert sum(r.kind == "http" for r in AuditRecord.objects.using(alias).all()) == 5
    out = io.StringIO()
    call_command("auditmw_verify", "--database", alias, "--keys", str(keys), stdout=out)
    assert "CLEAN" in out.getvalue()


def test_oversized_and_odd_fields_do_not_cost_the_batch(alias: str) -> None:
    """Column copies are cut to fit; the line, which the chain covers, is stored whole."""
    batch = make_batch(3)
    odd = dict(batch.events[1], action="a" * 300, outcome="o" * 40, kind="k" * 70,
               actor={"id": 12345}, response={"status_code": "200"})  # fmt: skip
    batch.events[1] = odd
    batch.lines[1] = dumps(odd)
    DjangoSink(using=alias).emit(batch)
    stored = list(AuditRecord.objects.using(alias).order_by("id"))
    assert [r.line.encode() for r in stored] == batch.lines
    assert (len(stored[1].action), stored[1].actor_id, stored[1].status) == (255, "12345", None)
