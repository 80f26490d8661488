"""End to end: the Auditor's delivery thread chains a file sink's stream that verifies."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import orjson

from auditmw import AuditConfig, Auditor
from auditmw.config import DeliveryOptions
from auditmw.event import Headers
from auditmw.exceptions import SinkUnavailableError
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks import FileSink

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.sinks.base import Batch

HANG_GUARD = 30  # seconds; reached only when delivery hangs


class DownThenUpSink:
    """Refuses batches (retryable) until ``up`` is set; stores them in memory afterwards."""

    format = "auditmw"

    def __init__(self) -> None:
        self.up = threading.Event()
        self.refused = threading.Event()
        self.stored_once = threading.Event()
        self.lines: list[bytes] = []

    def emit(self, batch: Batch) -> None:
        if not self.up.is_set():
            self.refused.set()
            raise SinkUnavailableError("down")
        self.lines.extend(batch.lines)
        self.stored_once.set()

    def close(self) -> None:
        pass


def _audit_requests(path: Path, options: IntegrityOptions, count: int) -> None:
    auditor = Auditor(AuditConfig(service="svc", sinks=[FileSink(path)], integrity=options))
    for i in range(count):
        exchange = auditor.new_exchange(
            "http", "GET", f"/orders/{i}", Headers([]), client=("10.1.1.1", 1)
        )
        exchange.status = 200
        auditor.record(exchange)
    auditor.close()


class TestDeliveryChain:
    def test_file_sink_stream_verifies_clean(self, tmp_path: Path) -> None:
        """Events written by the delivery thread, with lifecycle events, verify clean."""
        private, public, _ = generate_keypair()
        mac_key = b"\x05" * 32
        options = IntegrityOptions(signing_key=private, mac_key=mac_key, checkpoint_every=7)
        path = tmp_path / "audit.jsonl"
        _audit_requests(path, options, 20)
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files([path], keys=registry, mac_key=mac_key)
        assert report.findings == []
        kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
        assert kinds[0] == "audit.checkpoint"
        assert kinds[-1] == "audit.checkpoint"
        assert kinds.count("http") == 20
        # policy_loaded cuts a checkpoint right after itself
        at = kinds.index("audit.policy_loaded")
        assert kinds[at + 1] == "audit.checkpoint"

    def test_restart_with_state_dir_links_the_chains(self, tmp_path: Path) -> None:
        """Two runs of the app with a state directory verify as a clean restart."""
        private, public, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, state_dir=str(tmp_path))
        path = tmp_path / "audit.jsonl"
        _audit_requests(path, options, 3)
        _audit_requests(path, options, 3)
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files([path], keys=registry)
        assert report.codes() == ["restart"]
        assert report.clean
        assert len(report.chains) == 2


class TestStateAfterStorage:
    def test_a_retry_backlog_never_reaches_the_state_file(self, tmp_path: Path) -> None:
        """While the sink refuses batches, the state names none of their checkpoints."""
        sink = DownThenUpSink()
        options = IntegrityOptions(state_dir=str(tmp_path), checkpoint_every=2)
        delivery = DeliveryOptions(retry_initial=0.01, retry_max=0.05)
        auditor = Auditor(
            AuditConfig(service="svc", sinks=[sink], integrity=options, delivery=delivery)
        )
        for i in range(6):
            exchange = auditor.new_exchange("http", "GET", f"/o/{i}", Headers([]))
            exchange.status = 200
            auditor.record(exchange)
        assert sink.refused.wait(HANG_GUARD)
        assert auditor.flush(HANG_GUARD)
        assert list(tmp_path.glob("*.chain.json")) == []  # nothing stored: nothing named
        sink.up.set()
        assert sink.stored_once.wait(HANG_GUARD)
        # Closing stores the last checkpoint (after the recovery notice and its own);
        # once closed, nothing else is written, so state and sink can be compared.
        auditor.close()
        (state_file,) = tmp_path.glob("*.chain.json")
        state = orjson.loads(state_file.read_bytes())
        stored = [orjson.loads(line) for line in sink.lines]
        hashes = [e["seal"]["hash"] for e in stored if e["kind"] == "audit.checkpoint"]
        assert state["checkpoint"] == hashes[-1]


class TestFullSpool:
    def test_a_full_spool_never_cuts_a_hole_in_the_chain(self, tmp_path: Path) -> None:
        """A spool at its cap during an outage drops only never-chained events, and says so.

        The chain advances only for records handed to the sink stream: what does not fit
        in the spool waits in memory unencoded and is trimmed from there, so the log
        verifies with a recorded drop (completeness) and no tamper finding.
        """
        sink = DownThenUpSink()
        private, public, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, checkpoint_every=5)
        delivery = DeliveryOptions(
            spool_dir=str(tmp_path / "spool"),
            spool_max_bytes=8 * 1024,
            max_queue=10,
            retry_initial=0.01,
            retry_max=0.02,
        )
        auditor = Auditor(
            AuditConfig(service="svc", sinks=[sink], integrity=options, delivery=delivery)
        )
        for i in range(200):
            exchange = auditor.new_exchange("http", "GET", f"/o/{i}", Headers([]))
            exchange.status = 200
            auditor.record(exchange)
            if i == 0:
                assert sink.refused.wait(HANG_GUARD)
        assert auditor.flush(HANG_GUARD)
        sink.up.set()
        auditor.close()
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in sink.lines))
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files([path], keys=registry)
        assert [f.code for f in report.findings if f.category == "tamper"] == []
        drops = [orjson.loads(line) for line in sink.lines if b"audit.events_dropped" in line]
        served = sum(1 for line in sink.lines if b'"kind":"http"' in line)
        dropped = sum(d["details"]["count"] for d in drops)
        assert dropped > 0
        assert served + dropped == 200
        assert "recorded_drop" in report.codes()
