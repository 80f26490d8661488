"""Properties: any single-byte change of a chained log is detected; hostile input never crashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
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


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["chain_id", "seq", "hash", "prev", "mac", "epoch", "n", "first_seq"])
_integrity = st.dictionaries(_keys, _json | st.just("00" * 32) | st.integers(0, 3), max_size=6)
_record = st.fixed_dictionaries(
    {},
    optional={
        "integrity": _integrity,
        "kind": st.sampled_from(["http", "audit.checkpoint", "audit.events_dropped"]),
        "checkpoint": st.dictionaries(
            _keys | st.sampled_from(["head", "previous_chain", "interval_s", "final"]),
            _json | st.integers(0, 3),
            max_size=6,
        ),
        "seal": st.dictionaries(st.sampled_from(["hash", "signature", "mac"]), _json, max_size=3),
        "details": _json,
    },
)


class TestFastPath:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(position=st.integers(0, len(LOG) - 2), value=st.integers(0, 255))
    def test_fast_path_never_changes_a_report(self, position: int, value: int) -> None:
        """With or without the verifier's fast path, a changed log gets the same findings."""
        changed = LOG[:position] + bytes([value]) + LOG[position + 1 :]
        fast = _verify_full(changed)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("auditmw.integrity.reader.verify.accept_fast", lambda *args: False)
            slow = _verify_full(changed)
        assert fast == slow


def _verify_full(data: bytes) -> list[dict[str, Any]]:
    records = [
        (Location("log", number), line) for number, line in enumerate(data.split(b"\n"), 1) if line
    ]
    report = verify_records(records, keys=REGISTRY, mac_key=MAC_KEY)
    return [f.to_dict() for f in report.findings]


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


class TestHostileInput:
    @settings(max_examples=300, deadline=None)
    @given(
        lines=st.lists(
            _record.map(lambda r: json.dumps(r).encode()) | st.binary(max_size=40), max_size=8
        )
    )
    def test_verifier_never_crashes(self, lines: list[bytes]) -> None:
        """Arbitrary records, however malformed, produce findings and never an exception."""
        records = [
            (Location("x", i), line) for i, line in enumerate(LOG.split(b"\n")[:3] + lines, 1)
        ]
        report = verify_records(records, keys=REGISTRY, mac_key=MAC_KEY)
        assert isinstance(report.clean, bool)
