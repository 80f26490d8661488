"""Tampering with a chained log is detected, with the exact finding and location."""

from __future__ import annotations

import base64
import json
import time
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditmw.canonical import dumps
from auditmw.integrity import (
    ExpectedHead,
    IntegrityOptions,
    KeyRegistry,
    Report,
    generate_keypair,
    verify_files,
)
from auditmw.integrity.layout import CHECKPOINT_DOMAIN, EVENT_DOMAIN, SIGNATURE_DOMAIN

if TYPE_CHECKING:
    from pathlib import Path

MAC_KEY = bytes(range(32))
EVENTS = 45
EVERY = 10


def make_event(i: int, kind: str = "http") -> dict[str, Any]:
    """Return a synthetic event shaped like the pipeline's canonical event."""
    return {
        "schema_version": "1.0",
        "event_id": f"0192f5b2-7c1e-7a3b-9d4e-{i:012x}",
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.125456Z",
        "duration_us": 2000,
        "kind": kind,
        "action": "orders.update",
        "operation": "update",
        "outcome": "success",
        "severity": "info",
        "actor": {
            "id": f"user-{i % 7}",
            "type": "user",
            "auth": {"method": "jwt", "verified": True, "issuer": "https://idp.example.com/"},
        },
        "source": {"ip": "203.0.113.7", "port": 51234, "user_agent": "curl/8"},
        "request": {
            "id": f"req-{i}",
            "method": "PUT",
            "path": f"/orders/{i}",
            "route": "/orders/{order_id}",
            "scheme": "https",
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "bytes": 128,
        },
        "response": {"status_code": 200, "bytes": 512},
        "resource": {"type": "orders", "id": str(i), "route_params": {"order_id": str(i)}},
        "service": {"name": "orders-api", "instance": "host-1/1234"},
        "policy": {"id": "default", "hash": "sha256:" + "ab" * 32, "rule": "default"},
    }


class Log:
    """A clean chained log as lines, with the keys that verify it."""

    def __init__(
        self, tmp_path: Path, *, mac: bool = True, events: int = EVENTS, finish: bool = True
    ) -> None:
        private, public, self.key_id = generate_keypair()
        self.tmp_path = tmp_path
        self.registry_path = tmp_path / "keys.json"
        self.registry_path.write_text(json.dumps({"keys": [{"public_key": public.decode()}]}))
        self.mac_key = MAC_KEY if mac else None
        options = IntegrityOptions(
            signing_key=private, mac_key=self.mac_key, checkpoint_every=EVERY
        )
        self.encoder = options.encoder_for("auditmw", "app")
        batch = self.encoder.encode([make_event(i) for i in range(events)])
        if finish:
            batch.extend(self.encoder.finish() or batch.__class__())
        self.lines = list(batch.lines)
        self.finished_ns = time.time_ns()

    def docs(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines]

    def index_of_seq(self, seq: int) -> int:
        """Return the 0-based index of the event with ``seq``."""
        return next(
            i for i, d in enumerate(self.docs()) if d.get("integrity", {}).get("seq") == seq
        )

    def checkpoint_indexes(self) -> list[int]:
        return [i for i, d in enumerate(self.docs()) if d.get("kind") == "audit.checkpoint"]

    def verify(self, lines: list[bytes] | None = None, **kwargs: Any) -> Report:
        path = self.tmp_path / "audit.jsonl"
        path.write_bytes(
            b"".join(line + b"\n" for line in (self.lines if lines is None else lines))
        )
        kwargs.setdefault("keys", KeyRegistry.from_file(self.registry_path))
        kwargs.setdefault("mac_key", self.mac_key)
        kwargs.setdefault("as_of_ns", self.finished_ns)
        return verify_files([path], **kwargs)


def rechain(doc: dict[str, Any], prev: str, *, mac: str | None = None) -> tuple[bytes, str]:
    """Return ``doc`` stored with a freshly computed hash (as an attacker would), and the hash."""
    integrity = {k: v for k, v in doc["integrity"].items() if k not in ("hash", "mac")}
    integrity["prev"] = prev
    body_doc = {**doc, "integrity": integrity}
    digest = sha256(EVENT_DOMAIN + bytes.fromhex(prev) + dumps(body_doc)).hexdigest()
    full = {**integrity, "hash": digest}
    if mac is not None:
        full["mac"] = mac
    return dumps({**doc, "integrity": full}), digest


def findings(report: Report) -> list[tuple[str, int | None, int | None]]:
    """Return (code, line, seq) of every non-info finding."""
    return [
        (f.code, f.location.line if f.location else None, f.seq)
        for f in report.findings
        if f.category != "info"
    ]


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path)


class TestCleanLog:
    def test_untampered_log_verifies_clean(self, log: Log) -> None:
        """A log straight from the encoder has no finding and exit status clean."""
        report = log.verify()
        assert report.findings == []
        assert report.clean
        assert report.chains[0].events == EVENTS
        assert report.chains[0].closed

    def test_without_keys_events_stay_unverified(self, log: Log) -> None:
        """Without keys the signatures are not checked and nothing is reported valid."""
        report = log.verify(keys=None, mac_key=None)
        codes = {f.code for f in report.findings}
        assert codes == {"unchecked_signatures", "unverified_events"}
        assert not report.clean


class TestEventTampering:
    def test_edited_value_is_a_modified_event(self, log: Log) -> None:
        """Changing one byte of a value reports modified_event at that line and seq."""
        lines = list(log.lines)
        i = log.index_of_seq(17)
        lines[i] = lines[i].replace(b'"path":"/orders/16"', b'"path":"/orders/99"')
        assert findings(log.verify(lines)) == [("modified_event", i + 1, 17)]

    def test_edited_hash_is_modified_metadata(self, log: Log) -> None:
        """Changing the stored hash reports modified_metadata, not a broken link."""
        lines = list(log.lines)
        i = log.index_of_seq(5)
        doc = orjson.loads(lines[i])
        old = doc["integrity"]["hash"]
        lines[i] = lines[i].replace(
            old.encode(), (("0" if old[0] != "0" else "1") + old[1:]).encode()
        )
        assert findings(log.verify(lines)) == [("modified_metadata", i + 1, 5)]

    def test_edited_prev_is_modified_metadata(self, log: Log) -> None:
        """Changing the prev link reports modified_metadata at that line."""
        lines = list(log.lines)
        i = log.index_of_seq(8)
        prev = orjson.loads(lines[i])["integrity"]["prev"]
        lines[i] = lines[i].replace(
            prev.encode(), (("f" if prev[0] != "f" else "e") + prev[1:]).encode()
        )
        assert findings(log.verify(lines)) == [("modified_metadata", i + 1, 8)]

    def test_edited_seq_is_modified_metadata(self, log: Log) -> None:
        """Changing an event's seq member reports modified_metadata there, not a gap."""
        lines = list(log.lines)
        i = log.index_of_seq(9)
        lines[i] = lines[i].replace(b'"seq":9}', b'"seq":90}')
        assert findings(log.verify(lines)) == [("modified_metadata", i + 1, 9)]

    def test_deleted_line_is_a_seq_gap(self, log: Log) -> None:
        """Deleting an event reports deleted_events at the following line."""
        lines = list(log.lines)
        i = log.index_of_seq(23)
        del lines[i]
        assert findings(log.verify(lines)) == [("deleted_events", i + 1, 23)]

    def test_swapped_lines_are_reordered(self, log: Log) -> None:
        """Swapping two events reports one reordered_event at the first displaced line."""
        lines = list(log.lines)
        i, j = log.index_of_seq(12), log.index_of_seq(13)
        lines[i], lines[j] = lines[j], lines[i]
        report = log.verify(lines)
        assert findings(report) == [("reordered_event", i + 1, 12)]
        assert report.findings[0].seq_end == 13

    def test_byte_identical_duplicate_is_benign(self, log: Log) -> None:
        """An at-least-once copy is reported as a benign duplicate; the log stays clean."""
        lines = list(log.lines)
        i = log.index_of_seq(30)
        lines.insert(i + 2, lines[i])
        report = log.verify(lines)
        assert [(f.code, f.location.line if f.location else 0, f.seq) for f in report.findings] == [
            ("duplicate", i + 3, 30)
        ]
        assert report.clean

    def test_forged_line_without_valid_mac(self, log: Log) -> None:
        """An inserted line with a recomputed hash but no valid MAC is a forged event."""
        lines = list(log.lines)
        i = log.index_of_seq(20)
        doc = orjson.loads(lines[i])
        forged = {
            **doc,
            "actor": {
                "id": "mallory",
                "type": "user",
                "auth": {"method": "none", "verified": False},
            },
        }
        line, _ = rechain(forged, doc["integrity"]["prev"], mac="00" * 32)
        lines.insert(i, line)
        assert findings(log.verify(lines)) == [("forged_event", i + 1, 20)]

    def test_conflicting_duplicate_without_mac(self, tmp_path: Path) -> None:
        """Without a MAC, a second different record for a seq is a conflicting duplicate."""
        log = Log(tmp_path, mac=False)
        lines = list(log.lines)
        i = log.index_of_seq(20)
        doc = orjson.loads(lines[i])
        line, _ = rechain({**doc, "outcome": "denied"}, doc["integrity"]["prev"])
        lines.insert(i + 1, line)
        assert findings(log.verify(lines)) == [("conflicting_duplicate", i + 2, 20)]

    def test_rewritten_history_fails_the_checkpoint(self, tmp_path: Path) -> None:
        """Rewriting an event and re-chaining its successors breaks the signed checkpoint."""
        log = Log(tmp_path, mac=False)
        lines, docs = list(log.lines), log.docs()
        start = log.index_of_seq(4)
        prev = docs[start]["integrity"]["prev"]
        for k in range(start, len(lines)):
            if docs[k].get("kind") == "audit.checkpoint":
                break
            doc = docs[k] if k != start else {**docs[k], "outcome": "failure"}
            lines[k], prev = rechain(doc, prev)
        assert findings(log.verify(lines)) == [
            ("broken_link", k + 2, 11),  # the first event after the re-chained range
            ("checkpoint_mismatch", k + 1, 1),
            ("unverified_events", len(lines) - 1, 1),  # the checkpoint cannot vouch for 1..10
        ]

    def test_event_appended_after_close(self, tmp_path: Path) -> None:
        """A re-chained event appended after the closing checkpoint is reported."""
        log = Log(tmp_path, mac=False)
        docs = log.docs()
        last = docs[log.index_of_seq(EVENTS)]
        extra = {**last, "integrity": {**last["integrity"], "seq": EVENTS + 1}}
        line, _ = rechain(extra, last["integrity"]["hash"])
        lines = [*log.lines, line]
        assert findings(log.verify(lines)) == [
            ("unverified_events", len(lines), EVENTS + 1),
            ("events_after_close", len(lines), EVENTS + 1),
        ]

    def test_spliced_event_from_another_chain(self, log: Log, tmp_path: Path) -> None:
        """An event copied from another chain's log is reported as foreign."""
        (tmp_path / "other").mkdir()
        other = Log(tmp_path / "other")
        lines = list(log.lines)
        stranger = other.lines[other.index_of_seq(3)]
        lines.insert(7, stranger)
        assert findings(log.verify(lines)) == [("foreign_event", 8, 3)]

    def test_record_without_integrity_is_reported(self, log: Log) -> None:
        """A plain event inserted into the chained log is a malformed (unchained) record."""
        lines = list(log.lines)
        lines.insert(3, dumps(make_event(99)))
        assert findings(log.verify(lines)) == [("malformed_record", 4, None)]


class TestTailAndCheckpoints:
    def test_truncated_tail(self, log: Log) -> None:
        """Cutting the last lines (closing checkpoint included) reports truncated_tail."""
        cps = log.checkpoint_indexes()
        lines = log.lines[: cps[-2] + 3]  # keep two events after the last kept checkpoint
        later = log.finished_ns + 3600 * 10**9
        assert findings(log.verify(lines, as_of_ns=later)) == [
            ("unverified_events", cps[-2] + 3, 41),
            ("truncated_tail", cps[-2] + 1, 41),
        ]

    def test_recent_unclosed_tail_is_only_unverified(self, log: Log) -> None:
        """A live log's tail after the last checkpoint is unverified, not truncated."""
        cps = log.checkpoint_indexes()
        lines = log.lines[: cps[-2] + 3]
        assert findings(log.verify(lines)) == [("unverified_events", cps[-2] + 3, 41)]

    def test_deleted_checkpoint(self, log: Log) -> None:
        """Deleting a checkpoint reports checkpoint_deleted at the next one."""
        lines = list(log.lines)
        cps = log.checkpoint_indexes()
        del lines[cps[2]]
        assert findings(log.verify(lines)) == [("checkpoint_deleted", cps[3], 11)]

    def test_modified_checkpoint(self, log: Log) -> None:
        """Editing a checkpoint's bytes reports checkpoint_modified there."""
        lines = list(log.lines)
        cps = log.checkpoint_indexes()
        lines[cps[1]] = lines[cps[1]].replace(b'"reason":"count"', b'"reason":"cound"')
        got = findings(log.verify(lines))
        assert got[0] == ("checkpoint_modified", cps[1] + 1, None)
        assert ("checkpoint_deleted", cps[2] + 1, 1) in got

    def test_resigned_with_unknown_key(self, log: Log) -> None:
        """A checkpoint re-signed with a key not in the registry reports unknown_key."""
        lines = list(log.lines)
        cps = log.checkpoint_indexes()
        doc = orjson.loads(lines[cps[2]])
        mallory = Ed25519PrivateKey.generate()
        from auditmw.integrity.keys import key_id_for

        doc["checkpoint"]["key_id"] = key_id_for(mallory.public_key())
        rest = {k: v for k, v in doc.items() if k != "seal"}
        digest = sha256(CHECKPOINT_DOMAIN + dumps(rest)).digest()
        doc["seal"] = {
            "hash": digest.hex(),
            "mac": doc["seal"]["mac"],
            "signature": base64.b64encode(mallory.sign(SIGNATURE_DOMAIN + digest)).decode(),
        }
        lines[cps[2]] = dumps(doc)
        got = findings(log.verify(lines))
        assert got[0] == ("unknown_key", cps[2] + 1, None)

    @pytest.mark.parametrize(
        ("window", "code"),
        [
            pytest.param({"revoked_at": "2000-01-01T00:00:00Z"}, "revoked_key", id="revoked"),
            pytest.param({"not_after": "2000-01-01T00:00:00Z"}, "expired_key", id="expired"),
            pytest.param({"not_before": "2999-01-01T00:00:00Z"}, "expired_key", id="not-yet"),
        ],
    )
    def test_key_validity_windows(self, log: Log, window: dict[str, str], code: str) -> None:
        """Checkpoints signed outside the key's window or after revocation are flagged."""
        entry = json.loads(log.registry_path.read_text())["keys"][0]
        log.registry_path.write_text(json.dumps({"keys": [{**entry, **window}]}))
        report = log.verify()
        assert {f.code for f in report.findings} >= {code}
        assert [f.location.line for f in report.findings if f.code == code and f.location] == [
            i + 1 for i in log.checkpoint_indexes()
        ]

    def test_rollback_to_older_state(self, log: Log) -> None:
        """A log older than a head kept elsewhere reports rollback."""
        head = log.verify().chains[0].head
        assert head is not None
        cps = log.checkpoint_indexes()
        older = log.lines[: cps[2] + 1]
        report = log.verify(older, expected_heads=[ExpectedHead.parse(head)])
        assert "rollback" in [f.code for f in report.findings]

    def test_digest_file_reveals_deleted_checkpoint_at_tail(self, tmp_path: Path) -> None:
        """A digest file kept elsewhere proves the tail (and its checkpoint) was cut."""
        private, public, _ = generate_keypair()
        digest = tmp_path / "digest.jsonl"
        options = IntegrityOptions(
            signing_key=private, checkpoint_every=EVERY, digest_path=str(digest)
        )
        encoder = options.encoder_for("auditmw", "app")
        batch = encoder.encode([make_event(i) for i in range(25)])
        batch.extend(encoder.finish() or batch.__class__())
        batch.stored()  # the digest copies only checkpoints the log has stored
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in batch.lines[:-6]))
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files([path], keys=registry, digest_paths=[digest], as_of_ns=time.time_ns())
        assert "rollback" in report.codes()


class TestDigestAndRetention:
    """A digest outlives retention: what retention removes is incomplete, never tampering."""

    KEYS = generate_keypair()

    def _chain(self, tmp_path: Path, name: str) -> tuple[list[bytes], Path, KeyRegistry]:
        private, public, _ = self.KEYS
        digest = tmp_path / "digest.jsonl"
        options = IntegrityOptions(
            signing_key=private, checkpoint_every=EVERY, digest_path=str(digest)
        )
        encoder = options.encoder_for("auditmw", name)
        batch = encoder.encode([make_event(i) for i in range(40)])
        batch.extend(encoder.finish() or batch.__class__())
        batch.stored()
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        return batch.lines, digest, registry

    def _verify(self, tmp_path: Path, lines: list[bytes], digest: Path, keys: KeyRegistry) -> Any:
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return verify_files([path], keys=keys, digest_paths=[digest], as_of_ns=time.time_ns())

    def test_removed_prefix_is_incomplete(self, tmp_path: Path) -> None:
        """The oldest records gone (first checkpoints included): missing_start, no tamper."""
        lines, digest, keys = self._chain(tmp_path, "app")
        cut = [i for i, line in enumerate(lines) if b'"audit.checkpoint"' in line][2]
        report = self._verify(tmp_path, lines[cut:], digest, keys)
        assert "tamper" not in {f.category for f in report.findings}, report.codes()
        assert "missing_start" in report.codes()

    def test_absent_chain_is_incomplete(self, tmp_path: Path) -> None:
        """A chain the log no longer holds at all is missing_chain (completeness)."""
        _, digest, keys = self._chain(tmp_path, "gone")
        lines, _, _ = self._chain(tmp_path, "kept")
        report = self._verify(tmp_path, lines, digest, keys)
        assert [f.code for f in report.findings if f.category != "info"] == ["missing_chain"]

    def test_deleted_checkpoint_after_the_first_present_is_tamper(self, tmp_path: Path) -> None:
        """A checkpoint the log should hold, after one it holds, stays checkpoint_deleted."""
        lines, digest, keys = self._chain(tmp_path, "app")
        second = [i for i, line in enumerate(lines) if b'"audit.checkpoint"' in line][1]
        report = self._verify(tmp_path, lines[:second] + lines[second + 1 :], digest, keys)
        assert "checkpoint_deleted" in report.codes()
        assert report.verdict == "tampered"


class TestCompleteness:
    def test_recorded_drop_is_an_explained_gap(self, tmp_path: Path) -> None:
        """An audit.events_dropped event is a completeness finding, not tampering."""
        private, public, _ = generate_keypair()
        encoder = IntegrityOptions(signing_key=private).encoder_for("auditmw", "app")
        dropped = {**make_event(2, kind="audit.events_dropped"), "details": {"count": 12}}
        batch = encoder.encode([make_event(1), dropped, make_event(3)])
        batch.extend(encoder.finish() or batch.__class__())
        path = tmp_path / "audit.jsonl"
        path.write_bytes(batch.payload())
        report = verify_files(
            [path], keys=KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        )
        assert [(f.code, f.category, f.seq) for f in report.findings] == [
            ("recorded_drop", "completeness", 2)
        ]

    def test_missing_heartbeat(self, tmp_path: Path) -> None:
        """A silence longer than the checkpoint interval is a missing heartbeat."""
        private, public, _ = generate_keypair()
        encoder = IntegrityOptions(signing_key=private, checkpoint_interval_s=60).encoder_for(
            "auditmw", "app"
        )
        t0 = time.time_ns() + 10**9  # a second after the genesis checkpoint
        batch = encoder.encode([])
        for offset in (60, 120, 400):
            batch.extend(encoder.tick(t0 + offset * 10**9) or batch.__class__())
        path = tmp_path / "audit.jsonl"
        path.write_bytes(batch.payload())
        report = verify_files(
            [path],
            keys=KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]}),
            as_of_ns=t0 + 401 * 10**9,
        )
        assert [(f.code, f.location.line if f.location else 0) for f in report.findings] == [
            ("missing_heartbeat", 4)
        ]

    @pytest.mark.parametrize(
        ("closed", "code"),
        [
            pytest.param(True, "restart", id="clean-restart"),
            pytest.param(False, "unclean_stop", id="crash"),
        ],
    )
    def test_restart_links_chains(self, tmp_path: Path, closed: bool, code: str) -> None:
        """A new chain names the previous chain's last checkpoint from the state file."""
        private, public, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, state_dir=str(tmp_path))
        first = options.encoder_for("auditmw", "app")
        batch = first.encode([make_event(1)])
        if closed:
            batch.extend(first.finish() or batch.__class__())
        batch.stored()  # state names only checkpoints the log has stored
        del first  # the first process is gone: its state slot is free
        second = options.encoder_for("auditmw", "app")
        batch.extend(second.encode([make_event(2)]))
        batch.extend(second.finish() or batch.__class__())
        path = tmp_path / "audit.jsonl"
        path.write_bytes(batch.payload())
        report = verify_files(
            [path], keys=KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        )
        assert code in report.codes()
        assert report.clean is closed
