"""Many workers, restarts and crashes on one rotating log: verify tells kills from tampering.

Each worker is a real process (``multiworker_app.py``) writing through a real rotating,
gzipping :class:`~auditmw.sinks.file.FileSink` with signed, MACed checkpoints, a digest
file and a shared ``state_dir``, as gunicorn workers do.  The test drives them by
commands and replies (never by elapsed time), kills some with SIGKILL — one of them
while a batch carrying a checkpoint is inside the sink's ``emit`` — restarts them, and
verifies the log: no tamper finding, a completeness finding on each killed chain only.
Then it tampers with copies of the same log and expects tamper findings.
"""

from __future__ import annotations

import gzip
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditmw.integrity import KeyRegistry, Report, generate_keypair, verify_files
from auditmw.sinks.file import rotated_files

pytestmark = pytest.mark.e2e

APP = Path(__file__).with_name("multiworker_app.py")
HANG_GUARD = 60.0  # seconds; reached only when something hangs
MAC_KEY = bytes(range(32))


class Worker:
    """One worker process and its command pipe."""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(APP), name, orjson.dumps(config).decode()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=APP.parent,
        )
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self._buffer = b""
        self.expect("ready")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def expect(self, prefix: str) -> str:
        """Return the next reply line, which must start with ``prefix``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + HANG_GUARD
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                pytest.fail(f"worker {self.name}: no reply {prefix!r} (hang guard)")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                pytest.fail(f"worker {self.name} exited before replying {prefix!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        text = line.decode()
        assert text.startswith(prefix), f"worker {self.name}: {text!r}"
        return text

    def command(self, command: str, reply: str) -> str:
        self.send(command)
        return self.expect(reply)

    def stop(self) -> None:
        """Graceful stop: the closing checkpoint is written."""
        self.command("stop", "stopped")
        assert self.process.wait(HANG_GUARD) == 0
        self._close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(HANG_GUARD)
        self._close()

    def _close(self) -> None:
        self._selector.close()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class Deployment:
    """The shared files of one deployment, and its workers."""

    root: Path
    public_key: bytes = b""
    config: dict[str, Any] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        private, self.public_key, _ = generate_keypair()
        secrets = self.root / "secrets"
        secrets.mkdir()
        (secrets / "signing.pem").write_bytes(private)
        (secrets / "mac.key").write_text(MAC_KEY.hex())
        for name in ("logs", "state"):
            (self.root / name).mkdir()
        self.config = {
            "log": str(self.root / "logs" / "audit.jsonl"),
            "rotate_bytes": 6000,
            "checkpoint_every": 5,
            "digest": str(self.root / "digest.jsonl"),  # outside the log directory
            "state_dir": str(self.root / "state"),
            "signing_key_file": str(secrets / "signing.pem"),
            "mac_key_file": str(secrets / "mac.key"),
        }

    def start(self, name: str) -> Worker:
        worker = Worker(name, self.config)
        self.workers.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(HANG_GUARD)

    @property
    def log(self) -> Path:
        return Path(self.config["log"])

    def lines(self) -> list[bytes]:
        """Every stored line, in writing order (rotated files oldest first)."""
        lines: list[bytes] = []
        for part in [*rotated_files(self.log), self.log]:
            data = part.read_bytes()
            data = gzip.decompress(data) if part.name.endswith(".gz") else data
            lines.extend(data.splitlines())
        return lines

    def states(self) -> list[dict[str, Any]]:
        paths = sorted((self.root / "state").glob("*.chain.json"))
        return [orjson.loads(path.read_bytes()) for path in paths]

    def verify(self, *paths: Path, digest: bool = True) -> Report:
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": self.public_key.decode()}]})
        return verify_files(
            list(paths) or [self.root / "logs"],
            keys=registry,
            mac_key=MAC_KEY,
            digest_paths=[self.config["digest"]] if digest else [],
        )


@pytest.fixture
def deployment(tmp_path: Path) -> Any:
    deployment = Deployment(tmp_path)
    try:
        yield deployment
    finally:
        deployment.kill_all()


def chains_by_worker(lines: list[bytes]) -> dict[str, str]:
    """Map each worker name to its chain id (through its requests' paths)."""
    found: dict[str, str] = {}
    for line in lines:
        event = orjson.loads(line)
        if event.get("kind") == "http":
            found[event["request"]["path"].split("/")[1]] = event["integrity"]["chain_id"]
    return found


def genesis_links(lines: list[bytes]) -> dict[str, str | None]:
    """Map each chain id to the chain id its genesis checkpoint continues, if any."""
    links: dict[str, str | None] = {}
    for line in lines:
        body = orjson.loads(line).get("checkpoint")
        if body is not None and body["n"] == 0:
            previous = body.get("previous_chain")
            links[body["chain_id"]] = None if previous is None else previous["chain_id"]
    return links


def run_restarts(deployment: Deployment) -> dict[str, str]:
    """Three workers; one killed idle, one killed inside emit; replacements; a graceful reload."""
    w0, w1, w2 = (deployment.start(name) for name in ("w0", "w1", "w2"))
    for worker in (w0, w1, w2):
        worker.command("record 12", "ok")
    w1.kill()  # killed between batches
    w2.command("hold", "armed")
    w2.command("send 12", "sent")
    held = w2.expect("held ").split(" ", 1)[1].split(",")
    named = {state["checkpoint"] for state in deployment.states()}
    assert not named & set(held), "state names a checkpoint the sink has not stored"
    w2.kill()  # killed inside emit
    w3, w4 = deployment.start("w3"), deployment.start("w4")
    for worker in (w3, w4):  # their chains start now, while w0 lives: the dead slots
        worker.command("record 9", "ok")
    w0.command("record 7", "ok")
    w0.stop()  # graceful reload of w0
    w5 = deployment.start("w5")
    w5.command("record 9", "ok")
    for worker in (w3, w4, w5):
        worker.stop()
    return chains_by_worker(deployment.lines())


def write_order_copy(deployment: Deployment) -> Path:
    """The whole stream as one file, in the order it was written (rotation order)."""
    whole = deployment.root / "whole.jsonl"
    whole.write_bytes(b"\n".join(deployment.lines()) + b"\n")
    return whole


def findings_by_category(report: Report) -> dict[str, set[tuple[str, str | None]]]:
    found: dict[str, set[tuple[str, str | None]]] = {}
    for finding in report.findings:
        found.setdefault(finding.category, set()).add((finding.code, finding.chain_id))
    return found


class TestMultiWorker:
    def test_kills_and_restarts_verify_without_tamper(self, deployment: Deployment) -> None:
        """Every kill is a completeness finding on the killed chain; nothing reads as tamper."""
        chains = run_restarts(deployment)
        assert len(rotated_files(deployment.log)) >= 3
        links = genesis_links(deployment.lines())
        killed = {chains["w1"], chains["w2"]}
        # A chain started while w0 lived continues a dead chain, never w0; w5 continues w0.
        assert {links[chains["w3"]], links[chains["w4"]]} == killed
        assert links[chains["w5"]] == chains["w0"]
        assert links[chains["w0"]] is None
        found = findings_by_category(deployment.verify(write_order_copy(deployment)))
        assert "tamper" not in found, found
        assert found["completeness"] == {("unclean_stop", chain) for chain in killed}
        assert ("restart", chains["w0"]) in found["info"]

    def test_rotated_directory_verifies_like_its_write_order(self, deployment: Deployment) -> None:
        """Verifying the log directory (rotated, gzipped files) finds what the write order does."""
        run_restarts(deployment)
        whole = deployment.verify(write_order_copy(deployment))
        directory = deployment.verify()
        assert findings_by_category(directory) == findings_by_category(whole)

    def test_tampering_the_same_log_is_caught(self, deployment: Deployment) -> None:
        """Cutting a linked tail, deleting events, or cutting a closed chain's end is tamper."""
        chains = run_restarts(deployment)
        lines = deployment.lines()

        def cut(name: str, keep: Any) -> list[str]:
            path = deployment.root / f"{name}.jsonl"
            path.write_bytes(b"\n".join(line for line in lines if keep(line)) + b"\n")
            report = deployment.verify(path, digest=False)
            return [f.code for f in report.findings if f.category == "tamper"]

        def after_link(chain: str) -> Any:
            # The predecessor's lines from the checkpoint its successor names, on.
            named = next(
                orjson.loads(line)["checkpoint"]["previous_chain"]
                for line in lines
                if orjson.loads(line)
                .get("checkpoint", {})
                .get("previous_chain", {})
                .get("chain_id")
                == chain
            )
            seen = False

            def keep(line: bytes) -> bool:
                nonlocal seen
                event = orjson.loads(line)
                if event.get("seal", {}).get("hash") == named["checkpoint"]:
                    seen = True
                owner = event.get("integrity", event.get("checkpoint", {})).get("chain_id")
                return owner != chain or not seen

            return keep

        assert "truncated_tail" in cut("killed-tail", after_link(chains["w1"]))
        assert "truncated_tail" in cut("closed-tail", after_link(chains["w0"]))
        victim = chains["w4"]
        middle = {f"/w4/{i}" for i in range(2, 4)}

        def delete_events(line: bytes) -> bool:
            event = orjson.loads(line)
            return not (
                event.get("integrity", {}).get("chain_id") == victim
                and event.get("request", {}).get("path") in middle
            )

        assert "deleted_events" in cut("deleted", delete_events)


class TestRetention:
    def _run(self, deployment: Deployment, *, digest: bool) -> Report:
        deployment.config["max_files"] = 4  # retention deletes the oldest rotated files
        run_restarts(deployment)
        assert len(rotated_files(deployment.log)) == 4
        return deployment.verify(write_order_copy(deployment), digest=digest)

    def test_retention_is_missing_start_never_tamper(self, deployment: Deployment) -> None:
        """Files deleted by retention leave chains without their start: completeness only."""
        report = self._run(deployment, digest=False)
        found = findings_by_category(report)
        assert "tamper" not in found, found
        assert {code for code, _ in found.get("completeness", set())} <= {
            "missing_start",
            "unclean_stop",
        }

    def test_retention_with_a_digest_is_never_tamper(self, deployment: Deployment) -> None:
        """With a digest file kept elsewhere, retention is still not tampering."""
        report = self._run(deployment, digest=True)
        assert "tamper" not in findings_by_category(report)
