"""The spool under faults: short writes on a full disk, torn records, racing processes."""

from __future__ import annotations

import fcntl
import os
import threading
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.canonical import new_event_id
from auditmw.delivery import Delivery
from auditmw.delivery.spool import Spool, read_records
from auditmw.exceptions import SinkUnavailableError
from auditmw.sinks.base import Batch
from tests._waiting import wait_for
from tests.conftest import delivery_factory
from tests.unit._mounts import fill, tmpfs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from auditmw.types import Event


def batch(*ids: int, pad: int = 0) -> Batch:
    events = [{"event_id": str(i), "kind": "http", "n": i, "pad": "x" * pad} for i in ids]
    return Batch(events, [orjson.dumps(e) for e in events])


def drain(spool: Spool) -> list[list[int]]:
    out = []
    while (record := spool.peek()) is not None:
        out.append([e["n"] for e in record.events])
        spool.advance()
    return out


class Outage:
    """A durable sink that is down until ``up()`` is called."""

    format = "auditmw"
    delivery_mode = "durable"

    def __init__(self) -> None:
        self.down = True
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def emit(self, batch: Batch) -> None:
        with self._lock:
            if self.down:
                raise SinkUnavailableError("down")
            self.lines.extend(batch.lines)

    def close(self) -> None:
        """Nothing to release."""

    def events(self) -> list[Event]:
        with self._lock:
            return [orjson.loads(line) for line in self.lines]


@pytest.fixture
def make_delivery() -> Iterator[Callable[..., Delivery]]:
    """Delivery instances whose failing sinks are retried soon; closed after the test."""
    yield from delivery_factory(retry_initial=0.02, retry_max=0.1, close_timeout=5)


class TestShortWrite:
    def test_short_write_is_taken_back_and_held(self, tmp_path: Path) -> None:
        """Issue 21.5: a record cut short by a full disk leaves no torn bytes and is not lost."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            spool = Spool(fs, "HTTPSink:0", 1 << 20)
            assert spool.append(batch(1))
            size = spool.path.stat().st_size
            filler = fill(fs)
            assert spool.append(batch(2, 3, pad=3000))  # short write, then ENOSPC
            assert spool.path.stat().st_size == size  # the fragment was taken back
            assert spool.append(batch(4))  # held behind it, in order
            filler.unlink()
            assert spool.append(batch(5))  # the disk takes the held records first
            assert drain(spool) == [[1], [2, 3], [4], [5]]
            spool.close()

    def test_held_records_replay_in_order_while_the_disk_is_full(self, tmp_path: Path) -> None:
        """Records held in memory are replayed after those in the file, in order."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            spool = Spool(fs, "s", 1 << 20)
            spool.append(batch(1))
            filler = fill(fs)
            spool.append(batch(2, pad=5000))
            spool.append(batch(3))
            assert drain(spool) == [[1], [2], [3]]
            assert not spool.pending
            filler.unlink()
            spool.close()

    def test_held_records_count_against_the_bound(self, tmp_path: Path) -> None:
        """Memory held for a full disk stays within max_bytes: beyond it, append says full."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            spool = Spool(fs, "s", 25_000)  # a record of this batch is ~10 kB
            filler = fill(fs)
            assert spool.append(batch(1, pad=5000))
            assert spool.append(batch(2, pad=5000))
            assert not spool.append(batch(3, pad=5000))
            filler.unlink()
            spool.close()

    def test_full_disk_under_the_spool_loses_nothing_and_is_not_tampering(
        self, tmp_path: Path
    ) -> None:
        """Log and spool on one full disk: every event arrives, the log verifies, no TAMPER."""
        from auditmw import AuditConfig, Auditor
        from auditmw.config import DeliveryOptions
        from auditmw.event import Headers
        from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
        from auditmw.sinks.file import FileSink

        private, public, _ = generate_keypair()
        with tmpfs(tmp_path / "fs", "1m") as fs:
            path = fs / "audit.jsonl"
            auditor = Auditor(
                AuditConfig(
                    service="svc",
                    sinks=[FileSink(path)],
                    integrity=IntegrityOptions(signing_key=private, checkpoint_every=5),
                    delivery=DeliveryOptions(
                        retry_initial=0.01, retry_max=0.05, spool_dir=str(fs / "spool")
                    ),
                )
            )
            for i in range(13):
                pad = b"u" * 1000 if i >= 3 else b""
                exchange = auditor.new_exchange(
                    "http",
                    "GET",
                    f"/o/{i}",
                    Headers([(b"user-agent", pad)]),
                    client=("10.1.1.1", 1),
                )
                exchange.status = 200
                auditor.record(exchange)
                if i == 2:
                    assert auditor.flush(30)
                    filler = fill(fs)
            assert auditor.flush(30)
            filler.unlink()
            wait_for(lambda: b"audit.sink_recovered" in path.read_bytes(), "the sink to recover")
            auditor.close()
            registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
            report = verify_files([path], keys=registry)
            assert [f.code for f in report.findings if f.category == "tamper"] == []
            kinds = [orjson.loads(line)["kind"] for line in path.read_bytes().splitlines()]
            assert kinds.count("http") == 13
            assert "audit.events_dropped" not in kinds

    def test_durable_request_waits_for_the_sink_not_for_a_torn_spool_record(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery]
    ) -> None:
        """A durable event whose spool write was cut short is delivered, then its waiter says so."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            sink = Outage()
            delivery = make_delivery([sink], mode="durable", spool_dir=fs)
            delivery.submit({"event_id": new_event_id(), "kind": "http", "n": 0})
            assert delivery.flush(30)
            filler = fill(fs)
            big = {"event_id": new_event_id(), "kind": "http", "n": 1, "pad": "x" * 6000}
            waiter = delivery.submit_durable(big)
            assert delivery.flush(30)
            assert not waiter.done  # spooled (held) is not stored
            filler.unlink()
            sink.down = False
            assert waiter.wait(30) is True
            delivery.submit({"event_id": new_event_id(), "kind": "http", "n": 2})
            assert delivery.flush(30)
            wait_for(
                lambda: [e.get("n") for e in sink.events() if e["kind"] == "http"] == [0, 1, 2],
                "every event to arrive in order",
            )
            assert not any(e["kind"] == "audit.events_dropped" for e in sink.events())


class TestTornRecord:
    def test_replay_skips_a_torn_record_and_reads_what_follows(self, tmp_path: Path) -> None:
        """A record torn in the middle of the file costs that record only, and is counted."""
        donor = Spool(tmp_path / "donor", "s", 1 << 20)
        for i in (1, 2, 3):
            donor.append(batch(i))
        data = donor.path.read_bytes()
        donor.close()
        ends = [end for end, _ in read_records(data)]
        torn = data[: ends[0]] + data[ends[0] : ends[1] - 5] + data[ends[1] :]
        assert [[e["n"] for e in b.events] for _, b in read_records(torn)] == [[1], [3]]
        orphan = tmp_path / "s.999999.spool"
        orphan.write_bytes(torn)
        spool = Spool(tmp_path, "s", 1 << 20)
        assert drain(spool) == [[1], [3]]
        assert spool.take_damage() == 1
        assert spool.take_damage() == 0
        spool.close()

    def test_damage_is_recorded_in_the_stream(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery]
    ) -> None:
        """Replaying a damaged spool writes audit.events_dropped (reason spool_damaged)."""
        donor = Spool(tmp_path / "donor", "Outage:0", 1 << 20)
        for i in (1, 2, 3):
            donor.append(batch(i))
        data = donor.path.read_bytes()
        donor.close()
        ends = [end for end, _ in read_records(data)]
        (tmp_path / "Outage-0.999999.spool").write_bytes(data[: ends[1] - 5] + data[ends[1] :])
        sink = Outage()
        sink.down = False
        delivery = make_delivery([sink], spool_dir=tmp_path)
        delivery.submit({"event_id": new_event_id(), "kind": "http", "n": 4})
        wait_for(
            lambda: any(e["kind"] == "audit.events_dropped" for e in sink.events()),
            "the damage to be recorded",
        )
        events = sink.events()
        assert [e["n"] for e in events if e["kind"] == "http"] == [1, 3, 4]
        dropped = next(e for e in events if e["kind"] == "audit.events_dropped")
        assert dropped["details"]["reason"] == "spool_damaged"


def _child_creates_spool(
    monkeypatch: pytest.MonkeyPatch, directory: str, created: int, go: int, report: int
) -> None:
    """In a forked child: create a spool, pausing between creating and locking its file."""
    real = fcntl.flock
    paused: list[bool] = []

    def flock(fd: int, operation: int) -> Any:
        if not paused:
            paused.append(True)
            os.write(created, b"1")  # the file exists now (under whatever name)
            os.read(go, 1)  # until the other process has run its adoption
        return real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    spool = Spool(directory, "s", 1 << 20)
    spool.append(Batch([{"event_id": "1", "n": 1}], [b'{"event_id":"1","n":1}']))
    os.write(report, b"1" if spool.path.exists() else b"0")
    os.read(go, 1)  # keep the lock until the parent has looked
    spool.close()


class TestRace:
    def test_a_starting_spool_is_never_adopted_by_another_process(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Issue 21.8: a spool file is locked before any other process can see it."""
        created_r, created_w = os.pipe()
        go_r, go_w = os.pipe()
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                _child_creates_spool(monkeypatch, str(tmp_path), created_w, go_r, report_w)
                code = 0
            finally:
                os._exit(code)
        for fd in (created_w, go_r, report_w):  # the child's ends: its death reads as EOF
            os.close(fd)
        try:
            assert os.read(created_r, 1) == b"1"
            other = Spool(tmp_path, "s", 1 << 20)  # adopts every unlocked spool it sees
            os.write(go_w, b"1")
            assert os.read(report_r, 1) == b"1", "the child's spool file was adopted and removed"
            assert not other.pending
            other.close()
        finally:
            os.write(go_w, b"1")
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for fd in (created_r, go_w, report_r):
            os.close(fd)
