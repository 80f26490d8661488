"""An untampered log of 1,000,000 events verifies clean (slow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files

if TYPE_CHECKING:
    from pathlib import Path

EVENTS = 1_000_000


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_million_events_verify_clean(tmp_path: Path) -> None:
    """A million chained, MACed and checkpointed events produce no finding."""
    private, public, _ = generate_keypair()
    registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
    mac_key = b"\x01" * 32
    encoder = IntegrityOptions(
        signing_key=private, mac_key=mac_key, checkpoint_every=1000
    ).encoder_for("auditmw", "app")
    template = {
        "schema_version": "1.0",
        "time": "2026-11-30T03:59:00.123456Z",
        "kind": "http",
        "action": "orders.read",
        "outcome": "success",
        "actor": {"id": "user-1", "type": "user"},
    }
    path = tmp_path / "audit.jsonl"
    with path.open("wb") as handle:
        for start in range(0, EVENTS, 10_000):
            events = [{**template, "event_id": str(i)} for i in range(start, start + 10_000)]
            handle.write(encoder.encode(events).payload())
        handle.write((encoder.finish() or encoder.encode([])).payload())
    report = verify_files([path], keys=registry, mac_key=mac_key)
    assert report.findings == []
    assert report.chains[0].events == EVENTS
    assert report.chains[0].closed
