"""Property: any single-byte change anywhere in any line of a chained log is detected."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw.integrity import (
    IntegrityOptions,
    KeyRegistry,
    Location,
    generate_keypair,
    verify_records,
)
from auditmw.sinks.base import Batch

MAC_KEY = b"\x07" * 32
_PRIVATE, _PUBLIC, _ = generate_keypair()
REGISTRY = KeyRegistry.from_mapping({"keys": [{"public_key": _PUBLIC.decode()}]})


def _event(i: int) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "event_id": f"0192f5b2-7c1e-7a3b-9d4e-{i:012x}",
        "time": "2026-11-30T03:59:00.123456Z",
        "kind": "http",
        "outcome": "success",
        "actor": {"id": "user-é", "type": "user", "roles": ["admin"]},
        "request": {"path": f"/orders/{i}", "query": "a=1&b=\u0001", "bytes": 12},
        "response": {"status_code": 200},
        "annotations": {"note": 'quote " and \\ backslash'},
    }


def _log() -> bytes:
    encoder = IntegrityOptions(
        signing_key=_PRIVATE, mac_key=MAC_KEY, checkpoint_every=4
    ).encoder_for("auditmw", "app")
    batch = encoder.encode([_event(i) for i in range(9)])
    batch.extend(encoder.finish() or Batch())
    return batch.payload()


LOG = _log()


def _verify(data: bytes) -> list[str]:
    records = [
        (Location("log", number), line) for number, line in enumerate(data.split(b"\n"), 1) if line
    ]
    report = verify_records(records, keys=REGISTRY, mac_key=MAC_KEY)
    return [f.code for f in report.findings if f.category != "info"]


class TestSingleByteChanges:
    def test_clean_log_is_clean(self) -> None:
        """The untouched log used by the property has no finding."""
        assert _verify(LOG) == []

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(position=st.integers(0, len(LOG) - 2), value=st.integers(0, 255))
    def test_any_byte_change_is_detected(self, position: int, value: int) -> None:
        """Replacing any byte (except the final newline) with another is reported."""
        if LOG[position] == value:
            value = (value + 1) % 256
        changed = LOG[:position] + bytes([value]) + LOG[position + 1 :]
        assert _verify(changed) != []
