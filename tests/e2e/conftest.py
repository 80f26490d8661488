"""Real servers for end-to-end tests: started as subprocesses on loopback, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Stop the server with ``sig`` and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@contextmanager
def run_server(
    args: Sequence[str], port: int, *, env: dict[str, str], cwd: Path, ready_path: str = "/health"
) -> Iterator[Server]:
    """Start ``python -m <args>``, wait until ``ready_path`` answers, stop it afterwards."""
    log = cwd / f"server-{port}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60  # a hang guard; a ready server answers at once
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(server.base_url + ready_path, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """The demo app under a real uvicorn process, auditing to a JSONL file."""
    port = free_port()
    audit_log = tmp_path / "audit.jsonl"
    args = [
        "uvicorn",
        "app:app",
        "--app-dir",
        str(EXAMPLES),
        "--port",
        str(port),
        "--no-access-log",
    ]
    with run_server(args, port, env={"AUDITMW_DEMO_LOG": str(audit_log)}, cwd=tmp_path) as server:
        yield server, audit_log
