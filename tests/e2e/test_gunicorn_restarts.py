"""gunicorn with four uvicorn workers, a SIGKILLed worker (inside emit) and a SIGHUP reload.

The production shape of issue 21: one rotating, gzipped, signed log with a digest file
and a shared ``state_dir``.  Driven by responses and marker files, never by elapsed time.
"""

from __future__ import annotations

import gzip
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from auditmw.integrity import KeyRegistry, generate_keypair, verify_files
from auditmw.sinks.file import rotated_files

from .conftest import free_port, run_server

pytestmark = pytest.mark.e2e

HANG_GUARD = 60.0  # seconds; reached only when something hangs
MAC_KEY = bytes(range(32))

APP = textwrap.dedent(
    """
    import os
    import threading
    from pathlib import Path

    from auditmw.asgi import AuditMiddleware
    from auditmw.config import AuditConfig
    from auditmw.integrity import IntegrityOptions
    from auditmw.sinks.file import FileSink

    MARKS = Path(os.environ["MARKS"])

    class HoldingSink:
        # Once armed, the first batch that carries a checkpoint of events after the
        # chain's first ones, and none of the chain's first event, blocks inside emit
        # (until killed): the worker's genesis and first events were stored by an earlier
        # batch, however the requests fell on the workers and however delivery grouped
        # them (one batch may hold the first event and the second range's checkpoint).
        format = "auditmw"

        def __init__(self, inner):
            self.inner, self.armed = inner, False

        def emit(self, batch):
            if self.armed:
                held = [
                    e["seal"]["hash"]
                    for e in batch.events
                    if e.get("kind") == "audit.checkpoint" and e["checkpoint"]["first_seq"] > 1
                ]
                seqs = [e["integrity"]["seq"] for e in batch.events if "integrity" in e]
                if held and seqs and min(seqs) > 1:
                    (MARKS / f"held-{os.getpid()}").write_text(",".join(held))
                    threading.Event().wait()
            self.inner.emit(batch)

        def close(self):
            self.inner.close()

    sink = HoldingSink(FileSink(os.environ["AUDIT_LOG"], rotate_bytes=8000, compress=True))
    options = IntegrityOptions(
        signing_key_file=os.environ["SIGNING_KEY"],
        mac_key_file=os.environ["MAC_KEY"],
        checkpoint_every=5,
        digest_path=os.environ["DIGEST"],
        state_dir=os.environ["STATE_DIR"],
    )

    async def endpoint(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.startup":
                    (MARKS / f"started-{os.getpid()}").touch()
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["path"] == "/hold":
            sink.armed = True
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

    app = AuditMiddleware(endpoint, AuditConfig("gunicorn-restarts", sinks=[sink], integrity=options))
    """
)


def wait_until(
    condition: Callable[[], object], what: str, poke: Callable[[], object] | None = None
) -> None:
    """Poll ``condition`` (calling ``poke`` between polls) until true; fail at the hang guard."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: {what}")
        if poke is not None:
            poke()
        else:
            time.sleep(0.02)


def stored_lines(log: Path) -> list[bytes]:
    lines: list[bytes] = []
    for part in [*rotated_files(log), log]:
        data = part.read_bytes()
        lines.extend((gzip.decompress(data) if part.name.endswith(".gz") else data).splitlines())
    return lines


def chain_of(lines: list[bytes], pid: int) -> str:
    """Return the chain id of the worker with process id ``pid``."""
    for line in lines:
        event = orjson.loads(line)
        mine = event.get("service", {}).get("instance", "").endswith(f"/{pid}")
        if mine and "integrity" in event:
            return str(event["integrity"]["chain_id"])
    raise AssertionError(f"no chained event of worker {pid}")


class TestGunicornRestarts:
    def test_sigkill_inside_emit_and_sighup_reload_verify_without_tamper(
        self, tmp_path: Path
    ) -> None:
        """The killed worker's chain is unclean_stop; the reload is clean; no tamper finding."""
        private, public, _ = generate_keypair()
        (tmp_path / "signing.pem").write_bytes(private)
        (tmp_path / "mac.key").write_text(MAC_KEY.hex())
        for name in ("logs", "state", "marks"):
            (tmp_path / name).mkdir()
        (tmp_path / "gunapp.py").write_text(APP)
        log, marks = tmp_path / "logs" / "audit.jsonl", tmp_path / "marks"
        env = {
            "AUDIT_LOG": str(log),
            "MARKS": str(marks),
            "SIGNING_KEY": str(tmp_path / "signing.pem"),
            "MAC_KEY": str(tmp_path / "mac.key"),
            "DIGEST": str(tmp_path / "digest.jsonl"),
            "STATE_DIR": str(tmp_path / "state"),
        }
        port = free_port()
        args = ["gunicorn", "gunapp:app", "-w", "4", "-k", "uvicorn.workers.UvicornWorker"]
        args += ["-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "--graceful-timeout", "20"]

        def started() -> list[Path]:
            return sorted(marks.glob("started-*"))

        limits = httpx.Limits(max_keepalive_connections=0)  # spread requests over workers
        with (
            run_server(args, port, env=env, cwd=tmp_path) as server,
            httpx.Client(base_url=server.base_url, timeout=30, limits=limits) as client,
        ):
            wait_until(lambda: len(started()) == 4, "four workers started")
            for _ in range(40):
                client.get("/a").raise_for_status()
            victim = int(client.get("/hold").text)
            held_mark = marks / f"held-{victim}"
            wait_until(held_mark.exists, "a checkpoint held inside emit", lambda: client.get("/b"))
            held = set(held_mark.read_text().split(","))
            states = [orjson.loads(p.read_bytes()) for p in (tmp_path / "state").glob("*.json")]
            assert not held & {state["checkpoint"] for state in states}
            os.kill(victim, signal.SIGKILL)  # killed inside emit
            wait_until(lambda: len(started()) == 5, "a replacement worker started")
            for _ in range(20):
                client.get("/c").raise_for_status()
            server.process.send_signal(signal.SIGHUP)  # graceful reload: four new workers
            wait_until(lambda: len(started()) == 9, "the reloaded workers started")
            for _ in range(20):
                client.get("/d").raise_for_status()
            assert server.stop() == 0
        lines = stored_lines(log)
        whole = tmp_path / "whole.jsonl"
        whole.write_bytes(b"\n".join(lines) + b"\n")
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files(
            [whole], keys=registry, mac_key=MAC_KEY, digest_paths=[tmp_path / "digest.jsonl"]
        )
        tamper = [f for f in report.findings if f.category == "tamper"]
        assert tamper == []
        completeness = {
            (f.code, f.chain_id) for f in report.findings if f.category == "completeness"
        }
        assert completeness == {("unclean_stop", chain_of(lines, victim))}
