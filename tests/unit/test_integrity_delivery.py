"""End to end: the Auditor's delivery thread chains a file sink's stream that verifies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from auditmw import AuditConfig, Auditor
from auditmw.event import Headers
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks import FileSink

if TYPE_CHECKING:
    from pathlib import Path


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
