"""Chain state across processes: per-lineage slots, state written only once stored, 0600."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw import AuditConfig, Auditor
from auditmw.event import Headers
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HANG_GUARD = 30  # seconds; only ever reached when the code under test hangs


class GateSink:
    """A sink that stores lines in a file, and can hold one ``emit`` until released."""

    format = "auditmw"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hold = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.held_batch: Batch | None = None

    def emit(self, batch: Batch) -> None:
        if self.hold.is_set():
            self.hold.clear()
            self.held_batch = batch
            self.entered.set()
            assert self.release.wait(HANG_GUARD)
        with self.path.open("ab") as out:
            out.write(batch.payload())

    def close(self) -> None:
        pass


def _record(auditor: Auditor, path: str) -> None:
    exchange = auditor.new_exchange("http", "GET", path, Headers([]), client=("10.0.0.1", 1))
    exchange.status = 200
    auditor.record(exchange)


def _checkpoint_hashes(batch: Batch) -> list[str]:
    return [e["seal"]["hash"] for e in batch.events if e.get("kind") == "audit.checkpoint"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


class TestStateFollowsTheSink:
    def test_state_and_digest_wait_until_the_sink_stored_the_checkpoint(
        self, tmp_path: Path
    ) -> None:
        """While a checkpoint's batch is inside ``emit``, neither state nor digest names it."""
        state_dir = tmp_path / "state"
        state_dir.mkdir()
        digest = tmp_path / "digest.jsonl"
        sink = GateSink(tmp_path / "audit.jsonl")
        options = IntegrityOptions(
            state_dir=str(state_dir), digest_path=str(digest), checkpoint_every=2
        )
        auditor = Auditor(AuditConfig(service="svc", sinks=[sink], integrity=options))
        sink.hold.set()
        _record(auditor, "/a")
        assert sink.entered.wait(HANG_GUARD)
        assert sink.held_batch is not None
        held = _checkpoint_hashes(sink.held_batch)
        assert held  # the genesis checkpoint at least
        state_files = list(state_dir.glob("*.chain.json"))
        named = [orjson.loads(p.read_bytes())["checkpoint"] for p in state_files]
        assert not set(named) & set(held)
        assert not digest.exists() or digest.read_bytes() == b""
        sink.release.set()
        assert auditor.flush(HANG_GUARD)
        (state_file,) = state_dir.glob("*.chain.json")
        assert orjson.loads(state_file.read_bytes())["checkpoint"] == held[-1]
        digested = [orjson.loads(line)["seal"]["hash"] for line in digest.read_bytes().split()]
        assert digested[: len(held)] == held
        auditor.close()

    def test_state_digest_and_lock_files_are_private(self, tmp_path: Path, umask_022: None) -> None:
        """State, lock and digest files are created 0600 whatever the umask."""
        options = IntegrityOptions(
            state_dir=str(tmp_path), digest_path=str(tmp_path / "digest.jsonl")
        )
        encoder = options.encoder_for("auditmw", "app")
        batch = encoder.encode([{"kind": "http", "event_id": "e1"}])
        batch.extend(encoder.finish() or Batch())
        batch.stored()
        files = [tmp_path / "digest.jsonl", *tmp_path.glob("app*.chain.*")]
        assert len(files) == 3
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name

    def test_state_is_replaced_atomically(self, tmp_path: Path) -> None:
        """Each state write leaves exactly the state file: no temporary file behind."""
        encoder = IntegrityOptions(state_dir=str(tmp_path)).encoder_for("auditmw", "app")
        for i in range(3):
            encoder.encode([{"kind": "http", "event_id": f"e{i}"}]).stored()
        batch = encoder.finish()
        assert batch is not None
        batch.stored()
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["app.chain.json", "app.chain.lock"]

    def test_state_file_and_directory_are_fsynced_before_and_after_the_rename(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The new state is on disk before it replaces the old, and the rename is too."""
        synced: list[str] = []
        real_fsync = os.fsync

        def spy(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.startswith(str(tmp_path)):  # other tests' threads may fsync meanwhile
                synced.append(path)
            real_fsync(fd)

        encoder = IntegrityOptions(state_dir=str(tmp_path)).encoder_for("auditmw", "app")
        batch = encoder.encode([])
        monkeypatch.setattr(os, "fsync", spy)
        batch.stored()
        assert len(synced) == 2
        assert synced[0].endswith(".tmp")  # the new content, under its temporary name
        assert synced[1] == str(tmp_path)  # the directory entry of the rename


class TestLineages:
    def test_a_live_chain_is_never_named_as_predecessor(self, tmp_path: Path) -> None:
        """A second chain of the same stream, while the first lives, links to nothing."""
        options = IntegrityOptions(state_dir=str(tmp_path))
        first = options.encoder_for("auditmw", "app")
        first.encode([{"kind": "http", "event_id": "e1"}]).stored()
        second = options.encoder_for("auditmw", "app")
        genesis = second.encode([]).events[0]["checkpoint"]
        assert "previous_chain" not in genesis
        assert first.chain_id != second.chain_id

    def test_a_stopped_chain_is_continued_by_exactly_one_successor(self, tmp_path: Path) -> None:
        """Once a chain stopped, one new chain names its closing checkpoint; the next does not."""
        options = IntegrityOptions(state_dir=str(tmp_path))
        first = options.encoder_for("auditmw", "app")
        first.encode([{"kind": "http", "event_id": "e1"}]).stored()
        closing = first.finish()
        assert closing is not None
        closing.stored()
        second = options.encoder_for("auditmw", "app")
        third = options.encoder_for("auditmw", "app")
        link = second.encode([]).events[0]["checkpoint"]["previous_chain"]
        assert link == {
            "chain_id": first.chain_id,
            "n": 1,
            "checkpoint": closing.events[-1]["seal"]["hash"],
            "last_seq": 1,
            "head": closing.events[-1]["checkpoint"]["head"],
        }
        assert "previous_chain" not in third.encode([]).events[0]["checkpoint"]

    def test_a_forked_child_does_not_inherit_the_parents_lineage(self, tmp_path: Path) -> None:
        """A child forked while the parent holds a slot cannot free or write the parent's slot."""
        options = IntegrityOptions(state_dir=str(tmp_path))
        parent = options.encoder_for("auditmw", "app")
        parent.encode([{"kind": "http", "event_id": "e1"}]).stored()
        before = (tmp_path / "app.chain.json").read_bytes()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                parent.encode([{"kind": "http", "event_id": "e2"}]).stored()  # a stale copy
                child = IntegrityOptions(state_dir=str(tmp_path)).encoder_for("auditmw", "app")
                genesis = child.encode([]).events[0]["checkpoint"]
                code = 0 if "previous_chain" not in genesis else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert (tmp_path / "app.chain.json").read_bytes() == before


def _verify(path: Path, public: bytes, **kwargs: Any) -> list[str]:
    registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
    return verify_files([path], keys=registry, **kwargs).codes()


class TestVerifyLinks:
    def _two_chains(self, tmp_path: Path, *, close_first: bool) -> tuple[Path, bytes, Batch]:
        private, public, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, state_dir=str(tmp_path), checkpoint_every=2)
        first = options.encoder_for("auditmw", "app")
        batch = first.encode([{"kind": "http", "event_id": f"a{i}"} for i in range(5)])
        if close_first:
            batch.extend(first.finish() or Batch())
        batch.stored()
        del first  # its process is gone
        second = options.encoder_for("auditmw", "app")
        batch.extend(second.encode([{"kind": "http", "event_id": "b1"}]))
        batch.extend(second.finish() or Batch())
        path = tmp_path / "audit.jsonl"
        path.write_bytes(batch.payload())
        return path, public, batch

    def test_killed_chain_with_successor_is_completeness_only(self, tmp_path: Path) -> None:
        """A chain that died after its last stored checkpoint, then continued, is unclean_stop."""
        path, public, _ = self._two_chains(tmp_path, close_first=False)
        codes = _verify(path, public)
        assert "unclean_stop" in codes
        assert "truncated_tail" not in codes

    def test_cutting_the_linked_checkpoint_is_tamper(self, tmp_path: Path) -> None:
        """Deleting the predecessor's tail from the linked checkpoint on is truncated_tail."""
        path, public, batch = self._two_chains(tmp_path, close_first=True)
        lines = path.read_bytes().split(b"\n")
        closing = next(
            i for i, e in enumerate(batch.events) if e.get("checkpoint", {}).get("final")
        )
        del lines[closing - 1 : closing + 1]  # the predecessor's last event and its close
        path.write_bytes(b"\n".join(lines))
        assert "truncated_tail" in _verify(path, public)

    def test_lineage_chain_without_successor_is_unclean_stop_not_tamper(
        self, tmp_path: Path
    ) -> None:
        """A state-keeping chain that died with no successor (yet) is completeness, never tamper."""
        private, public, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, state_dir=str(tmp_path))
        encoder = options.encoder_for("auditmw", "app")
        batch = encoder.encode([{"kind": "http", "event_id": "a1"}])
        path = tmp_path / "audit.jsonl"
        path.write_bytes(batch.payload())
        later = batch.events[0]["checkpoint"]["interval_s"] * 10 * 10**9
        codes = _verify(path, public, as_of_ns=time.time_ns() + later)
        assert "unclean_stop" in codes
        assert "truncated_tail" not in codes


class TestFork:
    def test_auditor_lock_held_across_fork_does_not_deadlock_the_child(
        self, tmp_path: Path
    ) -> None:
        """A child forked while another thread held ``Auditor._lock`` can start and close."""
        sink = GateSink(tmp_path / "audit.jsonl")
        auditor = Auditor(AuditConfig(service="svc", sinks=[sink]))
        with auditor._lock:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                signal.alarm(20)  # a deadlock kills the child instead of hanging the test
                code = 1
                try:
                    _record(auditor, "/child")  # starts the auditor: takes the lock
                    auditor.close(HANG_GUARD)
                    code = 0
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
