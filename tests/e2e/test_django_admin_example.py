"""End to end: the Django example's audit trail in its database, under gunicorn workers.

Two gunicorn workers (a chain for each that serves a request) write through
``DjangoSink`` into one SQLite file; a superuser logs in to the admin with its real
login form and reads the trail; after a graceful stop ``manage.py auditmw_verify``
finds every chain closed and clean.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from auditmw.cli import main
from tests._waiting import wait_for

from .conftest import EXAMPLES, free_port, run_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

PROJECT = EXAMPLES / "django_project"
PASSWORD = "correct horse battery staple"
LIST = "/admin/auditmw_log/auditrecord/"


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stored_ids(db: Path) -> set[str]:
    """The event ids in the trail table (read-only; the app may be writing)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20) as conn:
        rows = conn.execute("SELECT event_id FROM auditmw_events").fetchall()
    return {str(row[0]).replace("-", "") for row in rows}


def stored_chains(db: Path) -> set[str]:
    """The chain ids in the trail table: one per worker process that stored records."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20) as conn:
        rows = conn.execute("SELECT DISTINCT chain_id FROM auditmw_events").fetchall()
    return {str(row[0]) for row in rows if row[0] is not None}


def admin_login(client: httpx.Client) -> None:
    """Log in through the admin's own form (CSRF token and all)."""
    form = client.get("/admin/login/", params={"next": LIST})
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None, form.text[:2000]
    data = {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    response = client.post("/admin/login/", params={"next": LIST}, data=data)
    assert response.status_code == 302, response.text[:2000]


def test_admin_shows_the_trail_and_it_verifies(tmp_path: Path) -> None:
    """Requests are stored by two workers, browsed in the admin, and verify after stop."""
    assert main(["keygen", "--out", str(tmp_path), "--name", "trail"]) == 0
    db = tmp_path / "db.sqlite3"
    env = {
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_DB": str(db),
        "AUDITMW_DJANGO_LOG": str(tmp_path / "audit.jsonl"),
        "AUDITMW_SIGNING_KEY_FILE": str(tmp_path / "trail.key"),
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    assert manage("migrate", "--noinput", env=env).returncode == 0
    created = manage("createsuperuser", "--noinput", "--username", "ada", "--email", "a@x.test",
                     env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    port = free_port()
    args = ["gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "--chdir", str(PROJECT), "orders_project.wsgi"]  # fmt: skip
    with (
        run_server(args, port, env=env, cwd=tmp_path) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        reads = [client.get(f"/orders/{n}") for n in range(6)]
        ids = {r.headers["Audit-Id"].replace("-", "") for r in reads}
        wait_for(lambda: ids <= stored_ids(db), "the requests' records in the table", 60)
        admin_login(client)
        listing = client.get(LIST, params={"kind": "http", "status": "200"})
        assert listing.status_code == 200
        links = re.findall(rf'href="{LIST}(\d+)/change/', listing.text)
        assert len(links) >= 6, listing.text[-3000:]
        detail = client.get(f"{LIST}{links[-1]}/change/")
        assert 'class="auditmw-verdict"' in detail.text
        assert client.get(f"{LIST}add/").status_code == 403
        assert server.stop() == 0
    verified = manage("auditmw_verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert re.search(r"^CLEAN", verified.stdout, re.M)
    # Each worker that served a request wrote its own chain; which of the two workers
    # took the connections is gunicorn's choice, so the count comes from the table.
    chains = stored_chains(db)
    assert 1 <= len(chains) <= 2, chains
    assert re.search(rf"(\d+) records, {len(chains)} chain\(s\)", verified.stdout), verified.stdout
