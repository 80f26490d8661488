"""End to end: the Flask example under real gunicorn sync workers, over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from auditmw.types import Event

from .conftest import EXAMPLES, free_port, run_server

pytestmark = pytest.mark.e2e


def gunicorn_args(port: int, workers: int, *extra: str) -> list[str]:
    return [
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(EXAMPLES),
        "--graceful-timeout",
        "10",
        *extra,
        "flask_app:app",
    ]


def read_all(path: Path) -> list[Event]:
    """Every line must be one complete JSON event (no torn or interleaved lines)."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def wait_for(path: Path, responses: list[httpx.Response], auth: int = 0) -> list[Event]:
    """Wait until the events of ``responses`` (and ``auth`` auth events) are in the log.

    Waits for these very events, not for a count of lines: a slow start can add
    readiness probes, and another worker may still hold a response's event.
    """
    ids = {response.headers["Audit-Id"] for response in responses}
    deadline = time.monotonic() + 60  # a hang guard
    while True:
        events = read_all(path) if path.exists() else []
        logged = {e["event_id"] for e in events}
        enough = sum(e["kind"] == "auth" for e in events) >= auth
        if (ids <= logged and enough) or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


class TestGunicorn:
    def test_flask_example_under_a_sync_worker(self, tmp_path: Path) -> None:
        """Routes, file responses (wsgi.file_wrapper), streams and 500s each give one event."""
        log = tmp_path / "audit.jsonl"
        port = free_port()
        args = gunicorn_args(port, 1)
        with (
            run_server(args, port, env={"AUDITMW_FLASK_LOG": str(log)}, cwd=tmp_path) as server,
            httpx.Client(base_url=server.base_url) as client,
        ):
            read = client.get("/orders/7", headers={"X-Demo-User": "ada"})
            report = client.get("/report")
            stream = client.get("/stream")
            failed = client.post("/orders/7/fail")
            events = wait_for(log, [read, report, stream, failed])
        assert report.content == (EXAMPLES / "flask_app.py").read_bytes()
        assert stream.text == "".join(f"line {i}\n" for i in range(5))
        by_id = {e["event_id"]: e for e in events}
        assert by_id[read.headers["Audit-Id"]]["request"]["route"] == "/orders/{order_id}"
        assert by_id[read.headers["Audit-Id"]]["actor"]["id"] == "ada"
        assert by_id[read.headers["Audit-Id"]]["annotations"] == {"ticket": "T-1"}
        sent_file = by_id[report.headers["Audit-Id"]]
        assert sent_file["response"]["bytes"] == len(report.content)
        assert by_id[stream.headers["Audit-Id"]]["response"]["bytes"] == len(stream.content)
        error = by_id[failed.headers["Audit-Id"]]
        assert error["outcome_reason"] == "exception:RuntimeError"
        assert error["response"]["status_code"] == 500

    def test_four_workers_share_one_file_under_load(self, tmp_path: Path) -> None:
        """Four preloaded workers share one JSONL file: whole lines, one event per request, stops."""
        log = tmp_path / "audit.jsonl"
        port = free_port()
        args = gunicorn_args(port, 4, "--preload")
        total = 400
        with run_server(args, port, env={"AUDITMW_FLASK_LOG": str(log)}, cwd=tmp_path) as server:
            with httpx.Client(base_url=server.base_url) as client:

                def get(i: int) -> str:
                    response = client.get(f"/orders/{i}")
                    response.raise_for_status()
                    return response.headers["Audit-Id"]

                with ThreadPoolExecutor(max_workers=8) as pool:
                    audit_ids = list(pool.map(get, range(total)))
            assert server.stop() == 0
        events = [e for e in read_all(log) if e["kind"] == "http"]
        orders = [e for e in events if e["request"]["path"].startswith("/orders/")]
        assert len(orders) == total
        assert sorted(e["event_id"] for e in orders) == sorted(audit_ids)
        assert {e["request"]["path"] for e in orders} == {f"/orders/{i}" for i in range(total)}
        instances = {e["service"]["instance"] for e in orders}
        assert len(instances) >= 2, "the load should have been spread over several workers"
        lifecycle = [e for e in read_all(log) if e["kind"] in ("audit.started", "audit.stopped")]
        stopped = {e["service"]["instance"] for e in lifecycle if e["kind"] == "audit.stopped"}
        started = {e["service"]["instance"] for e in lifecycle if e["kind"] == "audit.started"}
        assert instances <= started
        assert stopped == started, "every worker that started auditing records its stop"


def test_django_example_under_gunicorn(tmp_path: Path) -> None:
    """The Django example's WSGI entry point under gunicorn: routes and login events."""
    log = tmp_path / "audit.jsonl"
    project = EXAMPLES / "django_project"
    env = {
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "AUDITMW_DJANGO_LOG": str(log),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    args = [
        "gunicorn",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(project),
        "orders_project.wsgi",
    ]
    with (
        run_server(args, port, env=env, cwd=tmp_path) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        read = client.get("/orders/7")
        failed_login = client.post("/login", data={"username": "nobody", "password": "pw-x"})
        events = wait_for(log, [read, failed_login], auth=1)
    by_id = {e["event_id"]: e for e in events}
    assert by_id[read.headers["Audit-Id"]]["request"]["route"] == "/orders/{order_id}"
    assert by_id[read.headers["Audit-Id"]]["request"]["protocol"] == "HTTP/1.1"
    assert by_id[failed_login.headers["Audit-Id"]]["response"]["status_code"] == 401
    auth = [e for e in read_all(log) if e["kind"] == "auth"]
    assert [e["outcome"] for e in auth] == ["denied"]
    assert auth[0]["actor"]["claimed_id"].startswith("hmac-sha256:")
