"""End to end: the Django example project under a real uvicorn (ASGI) process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from auditmw.types import Event

from .conftest import EXAMPLES, free_port, run_server

pytestmark = pytest.mark.e2e

PROJECT = EXAMPLES / "django_project"
PASSWORD = "correct horse battery staple"


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for(path: Path, responses: list[httpx.Response], auth: int) -> list[Event]:
    """Wait until the events of ``responses`` and ``auth`` auth events are in the log.

    Waits for these very events, not for a count of lines: a slow start can add
    readiness probes.
    """
    ids = {response.headers["Audit-Id"] for response in responses}
    deadline = time.monotonic() + 60  # a hang guard
    while True:
        lines = path.read_bytes().splitlines() if path.exists() else []
        events = [orjson.loads(line) for line in lines]
        audited = [e for e in events if e["kind"] in ("http", "auth")]
        logged = {e["event_id"] for e in audited}
        enough = sum(e["kind"] == "auth" for e in audited) >= auth
        if (ids <= logged and enough) or time.monotonic() > deadline:
            return audited
        time.sleep(0.05)


def test_django_project_under_uvicorn(tmp_path: Path) -> None:
    """Routes, async streams, 500s and login events from Django's ASGI handler."""
    log = tmp_path / "audit.jsonl"
    env = {
        # Other tests in this process may have set it to their own project.
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "AUDITMW_DJANGO_LOG": str(log),
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    manage("migrate", "--noinput", env=env)
    manage("createsuperuser", "--noinput", "--username", "ada", "--email", "a@x.test", env=env)
    port = free_port()
    args = [
        "uvicorn",
        "orders_project.asgi:application",
        "--app-dir",
        str(PROJECT),
        "--port",
        str(port),
        "--no-access-log",
    ]
    with (
        run_server(args, port, env=env, cwd=tmp_path) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        read = client.get("/orders/7")
        stream = client.get("/stream")
        failed = client.get("/orders/7/fail")
        bad_login = client.post("/login", data={"username": "ada", "password": "wrong-pw-9137"})
        login = client.post("/login", data={"username": "ada", "password": PASSWORD})
        after = client.get("/orders/8")
        responses = [read, stream, failed, bad_login, login, after]
        events = wait_for(log, responses, auth=2)
    assert [r.status_code for r in (read, stream, failed, bad_login, login, after)] == [
        200, 200, 500, 401, 200, 200,
    ]  # fmt: skip
    by_id = {e["event_id"]: e for e in events}
    first = by_id[read.headers["Audit-Id"]]
    assert first["request"]["route"] == "/orders/{order_id}"
    assert first["annotations"] == {"ticket": "T-1", "route_name": "order-detail"}
    assert first["source"]["ip"] == "127.0.0.1"
    assert by_id[stream.headers["Audit-Id"]]["response"]["bytes"] == len(stream.content)
    assert by_id[failed.headers["Audit-Id"]]["outcome_reason"] == "exception:RuntimeError"
    assert by_id[after.headers["Audit-Id"]]["actor"]["name"] == "ada"
    auth = [e for e in events if e["kind"] == "auth"]
    assert [(e["action"], e["outcome"]) for e in auth] == [
        ("auth.login", "denied"),
        ("auth.login", "success"),
    ]
    assert auth[0]["actor"]["claimed_id"].startswith("hmac-sha256:")
    assert PASSWORD not in log.read_text()
    assert "wrong-pw-9137" not in log.read_text()
