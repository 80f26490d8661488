"""Unit tests of the integrity encoder, Merkle trees, keys and the verifier's plumbing."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditmw.canonical import dumps, format_time
from auditmw.exceptions import ConfigurationError
from auditmw.integrity import (
    CHECKPOINT_KIND,
    ChainEncoder,
    ExpectedHead,
    IntegrityOptions,
    KeyRegistry,
    Location,
    generate_keypair,
    verify_files,
    verify_records,
)
from auditmw.integrity.merkle import inclusion_proof, merkle_root, verify_inclusion
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from pathlib import Path


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 §2.1 (reference implementation)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


def event(i: int, **extra: Any) -> dict[str, Any]:
    stamp = format_time(time.time_ns())
    return {
        "kind": "http",
        "event_id": f"id-{i}",
        "time": stamp,
        "request": {"path": f"/x/{i}"},
        **extra,
    }


def records(batch: Batch, source: str = "log") -> list[tuple[Location, bytes]]:
    return [(Location(source, i), line) for i, line in enumerate(batch.lines, 1)]


def encode_all(encoder: ChainEncoder, events: list[dict[str, Any]]) -> Batch:
    batch = encoder.encode(events)
    batch.extend(encoder.finish() or Batch())
    batch.stored()  # as the delivery thread does once the sink stored it
    return batch


@pytest.fixture
def keypair() -> tuple[bytes, KeyRegistry]:
    private, public, _ = generate_keypair()
    return private, KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})


class TestMerkle:
    @pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
    def test_root_matches_rfc6962_definition(self, size: int) -> None:
        """The bottom-up root equals the recursive RFC 6962 tree hash."""
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(size)]
        assert merkle_root(leaves) == rfc6962_root(leaves)

    @pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
    def test_every_inclusion_proof_verifies(self, size: int) -> None:
        """An audit path proves each leaf against the root, and not another leaf."""
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(size)]
        root = merkle_root(leaves)
        for index, leaf in enumerate(leaves):
            path = inclusion_proof(leaves, index)
            assert verify_inclusion(leaf, index, size, path, root)
            assert not verify_inclusion(hashlib.sha256(b"x").digest(), index, size, path, root)

    def test_proof_index_out_of_range(self) -> None:
        """Asking for a leaf outside the tree raises IndexError."""
        with pytest.raises(IndexError):
            inclusion_proof([b"a" * 32], 1)


class TestChainEncoder:
    def test_lines_are_canonical_and_events_untouched(self) -> None:
        """Stored lines are canonical JSON; the shared input events are not mutated."""
        encoder = IntegrityOptions(mac_key=b"m" * 32).encoder_for("auditmw", "s")
        inputs = [event(i) for i in range(3)]
        snapshot = json.dumps(inputs)
        batch = encoder.encode(inputs)
        assert json.dumps(inputs) == snapshot
        for line, stored in zip(batch.lines, batch.events, strict=True):
            assert dumps(orjson.loads(line)) == line
            assert orjson.loads(line) == stored

    def test_seq_and_links(self) -> None:
        """Seq increases by one and prev names the previous event's hash."""
        encoder = IntegrityOptions().encoder_for("auditmw", "s")
        batch = encoder.encode([event(i) for i in range(4)])
        chained = [e["integrity"] for e in batch.events if e.get("kind") != CHECKPOINT_KIND]
        assert [c["seq"] for c in chained] == [1, 2, 3, 4]
        assert chained[0]["prev"] == "00" * 32
        assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(chained))

    def test_hash_layout(self) -> None:
        """The hash is SHA-256 of the domain, raw prev and the line without hash/mac."""
        encoder = IntegrityOptions().encoder_for("auditmw", "s")
        line = encoder.encode([event(1)]).lines[-1]
        doc = orjson.loads(line)
        stored = doc["integrity"].pop("hash")
        expected = hashlib.sha256(b"auditmw/v1/event" + bytes(32) + dumps(doc)).hexdigest()
        assert stored == expected

    def test_checkpoint_every_n_events(self) -> None:
        """A checkpoint follows every N events; genesis comes first."""
        encoder = IntegrityOptions(checkpoint_every=2).encoder_for("auditmw", "s")
        kinds = [e["kind"] for e in encoder.encode([event(i) for i in range(5)]).events]
        cp, ev = CHECKPOINT_KIND, "http"
        assert kinds == [cp, ev, ev, cp, ev, ev, cp, ev]

    def test_policy_load_cuts_a_checkpoint(self) -> None:
        """An audit.policy_loaded event is immediately followed by a checkpoint."""
        encoder = IntegrityOptions().encoder_for("auditmw", "s")
        batch = encoder.encode([event(1, kind="audit.policy_loaded"), event(2)])
        assert batch.events[2]["checkpoint"]["reason"] == "policy_loaded"

    def test_tick_writes_heartbeats_when_idle(self) -> None:
        """tick writes nothing before the interval and a heartbeat after it."""
        encoder = IntegrityOptions(checkpoint_interval_s=5).encoder_for("auditmw", "s")
        now = time.time_ns()
        first = encoder.tick(now)
        assert first is not None
        assert len(first) == 1
        assert encoder.tick(now + 10**9) is None
        beat = encoder.tick(now + 6 * 10**9)
        assert beat is not None
        assert beat.events[0]["checkpoint"]["reason"] == "heartbeat"

    def test_finish_closes_once(self) -> None:
        """finish writes one final checkpoint; a second call writes nothing."""
        encoder = IntegrityOptions().encoder_for("auditmw", "s")
        closing = encoder.finish()
        assert closing is not None
        assert closing.events[-1]["checkpoint"]["final"] is True
        assert encoder.finish() is None
        with pytest.raises(RuntimeError):
            encoder.encode([event(1)])

    def test_mac_key_evolves_and_old_key_is_gone(self) -> None:
        """After a checkpoint the encoder holds only the next epoch's key."""
        encoder = IntegrityOptions(mac_key=b"m" * 32, checkpoint_every=1).encoder_for(
            "auditmw", "s"
        )
        encoder.encode([event(1)])
        first = encoder._mac
        encoder.encode([event(2)])
        assert encoder._mac != first
        assert encoder.encode([event(3)]).events[0]["integrity"]["epoch"] == 2

    def test_each_chain_takes_a_ratcheted_master_key(self) -> None:
        """Chains created from one options object use successive master keys; all verify."""
        mac_key = b"r" * 32
        options = IntegrityOptions(mac_key=mac_key)
        batches = [encode_all(options.encoder_for("auditmw", "s"), [event(i)]) for i in range(3)]
        assert mac_key not in vars(options).values()
        assert options._ratchet is not None
        assert options._ratchet._key != mac_key
        assert [b.events[0]["checkpoint"]["mac_index"] for b in batches] == [0, 1, 2]
        lines = [line for b in batches for line in b.lines]
        # Checkpoint MACs authenticate the chains: no signing key is needed.
        assert verify_records(records(Batch([], lines)), mac_key=mac_key).codes() == []

    def test_mac_index_found_without_genesis(self) -> None:
        """Without its genesis checkpoint, a chain's master key index is found from its events."""
        options = IntegrityOptions(mac_key=b"r" * 32)
        options.encoder_for("auditmw", "s")  # takes index 0
        batch = encode_all(options.encoder_for("auditmw", "s"), [event(1), event(2)])
        report = verify_records(records(Batch([], batch.lines[1:])), mac_key=b"r" * 32)
        assert "forged_event" not in report.codes()
        assert "missing_start" in report.codes()

    def test_key_rotation(self, keypair: tuple[bytes, KeyRegistry]) -> None:
        """Rotating the signing key writes a checkpoint naming the next key; both verify."""
        private, registry = keypair
        new_private, new_public, new_id = generate_keypair()
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": new_public.decode()}]})
        encoder = IntegrityOptions(signing_key=private).encoder_for("auditmw", "s")
        batch = encoder.encode([event(1)])
        from auditmw.integrity.keys import load_signing_key

        batch.extend(encoder.rotate_signing_key(load_signing_key(new_private)))
        batch.extend(encode_all(encoder, [event(2)]))
        rotation = [
            e for e in batch.events if e.get("checkpoint", {}).get("reason") == "key_rotation"
        ]
        assert rotation[0]["checkpoint"]["next_key_id"] == new_id
        assert batch.events[-1]["checkpoint"]["key_id"] == new_id
        # With only the new key known, checkpoints signed by the old key are unknown_key.
        report = verify_records(records(batch), keys=registry)
        assert {f.code for f in report.findings} == {"unknown_key"}

    def test_other_format_keeps_integrity_in_exported_document(self) -> None:
        """For exported formats the integrity object sits under auditmw_integrity."""

        def export(e: dict[str, Any]) -> dict[str, Any]:
            return {"ocsf_like": True, "uid": e["event_id"], "http": {"path": e["request"]["path"]}}

        encoder = ChainEncoder(IntegrityOptions(mac_key=b"m" * 32), format="ocsf", exporter=export)
        batch = encode_all(encoder, [event(i) for i in range(3)])
        stored = orjson.loads(batch.lines[1])
        assert set(stored) == {"ocsf_like", "uid", "http", "auditmw_integrity"}
        assert batch.events[1]["integrity"] == stored["auditmw_integrity"]
        report = verify_records(records(batch), mac_key=b"m" * 32)
        assert report.codes() == []
        tampered = batch.lines[1].replace(b"/x/0", b"/x/9")
        report = verify_records(records(Batch([], [batch.lines[0], tampered, *batch.lines[2:]])))
        assert "modified_event" in report.codes()

    @pytest.mark.parametrize("fmt", ["ocsf", "ecs", "otel", "cloudevents"])
    def test_real_exporters_verify_and_detect_tampering(self, fmt: str) -> None:
        """Every exported format chains, verifies clean, and reports an edited byte."""
        from auditmw.formats import get_exporter

        full = {
            **event(1),
            "schema_version": "1.0",
            "end_time": "2026-11-30T03:59:00.125456Z",
            "duration_us": 2000,
            "action": "orders.read",
            "operation": "read",
            "outcome": "success",
            "severity": "info",
            "actor": {"id": "u1", "type": "user", "auth": {"method": "jwt", "verified": True}},
            "source": {"ip": "203.0.113.7"},
            "request": {
                "id": "r1",
                "method": "GET",
                "path": "/orders/1",
                "scheme": "https",
                "host": "api.example.com",
                "protocol": "HTTP/1.1",
                "bytes": 0,
            },
            "response": {"status_code": 200, "bytes": 10},
            "resource": {"type": "orders", "id": "1"},
            "service": {"name": "orders-api", "instance": "h/1"},
            "policy": {"id": "default", "hash": "sha256:" + "ab" * 32, "rule": "default"},
        }
        encoder = IntegrityOptions(mac_key=b"m" * 32).encoder_for(fmt, "s")
        batch = encode_all(encoder, [full, {**full, "event_id": "id-2"}])
        stored = orjson.loads(batch.lines[1])
        exported = get_exporter(fmt)(full)
        if fmt == "cloudevents":  # extension attributes may only be flat: it goes in data
            assert set(stored) == set(exported)
            assert stored["data"]["integrity"] == batch.events[1]["integrity"]
        else:
            assert stored["auditmw_integrity"] == batch.events[1]["integrity"]
        assert verify_records(records(batch), mac_key=b"m" * 32).codes() == []
        lines = list(batch.lines)
        lines[2] = lines[2].replace(b"id-2", b"id-3")
        report = verify_records(records(Batch([], lines)), mac_key=b"m" * 32)
        assert report.codes() == ["modified_event"]

    def test_repr_hides_keys(self) -> None:
        """Key material never appears in the options' repr."""
        private, _, _ = generate_keypair()
        options = IntegrityOptions(signing_key=private, mac_key=b"s" * 32)
        assert "s" * 32 not in repr(options)
        assert "PRIVATE" not in repr(options)

    @pytest.mark.parametrize(
        ("kwargs", "setting"),
        [
            pytest.param({"checkpoint_every": 0}, "checkpoint_every", id="every"),
            pytest.param({"checkpoint_interval_s": 0}, "checkpoint_interval_s", id="interval"),
            pytest.param({"mac_key": b"short"}, "mac_key", id="short-mac"),
            pytest.param({"signing_key": b"not a pem"}, "signing_key", id="bad-pem"),
            pytest.param({"signing_key_file": "/nonexistent/k"}, "signing_key_file", id="no-file"),
        ],
    )
    def test_bad_options_name_the_setting(self, kwargs: dict[str, Any], setting: str) -> None:
        """Invalid options raise ConfigurationError naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            IntegrityOptions(**kwargs)
        assert info.value.setting == setting

    def test_digest_file_and_state(self, tmp_path: Path) -> None:
        """Checkpoints go to the digest file; the state file names the last one."""
        digest = tmp_path / "digest.jsonl"
        options = IntegrityOptions(digest_path=str(digest), state_dir=str(tmp_path))
        batch = encode_all(options.encoder_for("auditmw", "a/b"), [event(1)])
        checkpoints = [line for line in batch.lines if b'"seal"' in line]
        assert digest.read_bytes() == b"".join(line + b"\n" for line in checkpoints)
        state = json.loads((tmp_path / "a_b.chain.json").read_text())
        assert state["checkpoint"] == batch.events[-1]["seal"]["hash"]


class TestKeys:
    def test_mac_key_file_is_hex_and_mac_key_is_raw(self, tmp_path: Path) -> None:
        """A key file's hex digits are decoded; bytes given in code are used as they are."""
        raw = bytes(range(32))
        (tmp_path / "k.mac").write_text(raw.hex() + "\n")
        from_file = IntegrityOptions(mac_key_file=str(tmp_path / "k.mac"))
        batch = encode_all(from_file.encoder_for("auditmw", "s"), [event(1)])
        assert verify_records(records(batch), mac_key=raw).codes() == []
        hexed = verify_records(records(batch), mac_key=raw.hex().encode())
        assert "forged_event" in hexed.codes()

    def test_key_id_mismatch_is_refused(self) -> None:
        """A registry entry whose key_id does not match its key is a configuration error."""
        _, public, _ = generate_keypair()
        with pytest.raises(ConfigurationError, match="key_id"):
            KeyRegistry.from_mapping({"keys": [{"public_key": public.decode(), "key_id": "x"}]})

    def test_toml_and_pem_registries(self, tmp_path: Path) -> None:
        """Registries load from TOML and from a bare PEM public key."""
        _, public, key_id = generate_keypair()
        (tmp_path / "k.pem").write_bytes(public)
        toml = (
            f'[[keys]]\npublic_key = """{public.decode()}"""\nrevoked_at = 2030-01-01T00:00:00Z\n'
        )
        (tmp_path / "k.toml").write_text(toml)
        assert KeyRegistry.from_file(tmp_path / "k.pem").get(key_id) is not None
        entry = KeyRegistry.from_file(tmp_path / "k.toml").get(key_id)
        assert entry is not None
        assert entry.revoked_at_ns is not None

    def test_wrong_key_type_is_refused(self) -> None:
        """Only Ed25519 keys are accepted for signing."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(ConfigurationError, match="Ed25519"):
            IntegrityOptions(signing_key=pem)
        assert isinstance(Ed25519PrivateKey.generate(), Ed25519PrivateKey)


class TestVerifyFiles:
    def test_rotated_gzipped_files_and_directory(self, tmp_path: Path, keypair: Any) -> None:
        """A directory of rotated files, one gzipped, verifies as one chain in order."""
        private, registry = keypair
        encoder = IntegrityOptions(signing_key=private, checkpoint_every=5).encoder_for(
            "auditmw", "s"
        )
        batch = encode_all(encoder, [event(i) for i in range(20)])
        half = len(batch.lines) // 2
        (tmp_path / "audit.jsonl.1.gz").write_bytes(
            gzip.compress(b"".join(line + b"\n" for line in batch.lines[:half]))
        )
        (tmp_path / "audit.jsonl").write_bytes(
            b"".join(line + b"\n" for line in batch.lines[half:])
        )
        report = verify_files([tmp_path], keys=registry)
        assert report.codes() == []
        assert report.chains[0].events == 20

    def test_interleaved_chains_of_several_workers(self, tmp_path: Path, keypair: Any) -> None:
        """Lines of several chains interleaved in one file verify as several chains."""
        private, registry = keypair
        options = IntegrityOptions(signing_key=private, checkpoint_every=3)
        batches = [encode_all(options.encoder_for("auditmw", "s"), [event(i) for i in range(10)])]
        batches.append(
            encode_all(options.encoder_for("auditmw", "s"), [event(i) for i in range(7)])
        )
        lines: list[bytes] = []
        for pair in zip(batches[0].lines, batches[1].lines, strict=False):
            lines.extend(pair)
        lines.extend(batches[0].lines[len(batches[1].lines) :])
        (tmp_path / "audit.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        report = verify_files([tmp_path / "audit.jsonl"], keys=registry)
        assert report.codes() == []
        assert sorted(c.events for c in report.chains) == [7, 10]

    def test_expected_head_parse(self) -> None:
        """Heads parse from CHAIN:N:HASH and reject malformed text."""
        head = ExpectedHead.parse("0192-abc:7:" + "ab" * 32)
        assert (head.chain_id, head.n) == ("0192-abc", 7)
        with pytest.raises(ValueError, match=r"hash|hex|not enough"):
            ExpectedHead.parse("nonsense")

    def test_report_json_shape(self, keypair: Any) -> None:
        """The JSON report lists chains and findings with locations."""
        private, registry = keypair
        batch = encode_all(
            IntegrityOptions(signing_key=private).encoder_for("auditmw", "s"), [event(1)]
        )
        lines = [*batch.lines[:1], batch.lines[1].replace(b"/x/1", b"/x/2"), *batch.lines[2:]]
        data = verify_records(records(Batch([], lines)), keys=registry).to_dict()
        assert data["clean"] is False
        assert data["findings"][0] | {"chain_id": None} == {
            "code": "modified_event",
            "category": "tamper",
            "message": data["findings"][0]["message"],
            "source": "log",
            "line": 2,
            "seq": 1,
            "chain_id": None,
        }


class TestParallel:
    def _workers_dir(self, tmp_path: Path, keypair: Any, interleave: bool = False) -> Path:
        private, _ = keypair
        options = IntegrityOptions(signing_key=private, mac_key=b"p" * 32, checkpoint_every=4)
        logs = tmp_path / "logs"
        logs.mkdir()
        for worker in range(3):
            batch = encode_all(options.encoder_for("auditmw", "s"), [event(i) for i in range(9)])
            lines = list(batch.lines)
            if interleave and worker == 1:  # a stray line of this chain in worker 0's file
                with (logs / "w0.jsonl").open("ab") as handle:
                    handle.write(lines.pop(3) + b"\n")
            with (logs / f"w{worker}.jsonl").open("ab") as handle:
                handle.write(b"".join(x + b"\n" for x in lines))
        return logs

    @pytest.mark.parametrize("interleave", [False, True], ids=["per-file", "interleaved"])
    def test_jobs_give_the_sequential_result(
        self, tmp_path: Path, keypair: Any, interleave: bool
    ) -> None:
        """Reading chains in worker processes reports exactly what one process reports."""
        logs = self._workers_dir(tmp_path, keypair, interleave)
        w2 = logs / "w2.jsonl"
        w2.write_bytes(w2.read_bytes().replace(b"/x/5", b"/x/6"))
        kwargs: dict[str, Any] = {"keys": keypair[1], "mac_key": b"p" * 32}
        one = verify_files([logs], **kwargs)
        two = verify_files([logs], jobs=2, **kwargs)
        assert [f.to_dict() for f in two.findings] == [f.to_dict() for f in one.findings]
        assert ("modified_event", str(w2)) in [
            (f.code, f.location.source if f.location else "") for f in one.findings
        ]
        assert sorted(c.chain_id for c in two.chains) == sorted(c.chain_id for c in one.chains)
        assert two.records == one.records


class TestWriterFailures:
    def test_unwritable_digest_and_state_never_stop_the_chain(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A digest file or state directory that cannot be written only logs an error."""
        options = IntegrityOptions(
            digest_path=str(tmp_path / "missing-dir" / "digest.jsonl"),
            state_dir=str(tmp_path / "missing-dir"),
        )
        with caplog.at_level("ERROR", logger="auditmw.integrity"):
            batch = encode_all(options.encoder_for("auditmw", "s"), [event(1)])
        assert verify_records(records(batch)).codes() == [
            "unchecked_signatures",
            "unverified_events",
        ]
        assert "digest file" in caplog.text
        assert "chain state" in caplog.text

    def test_corrupt_state_file_is_ignored(self, tmp_path: Path) -> None:
        """A state file that is not a chain state starts a chain without a previous link."""
        (tmp_path / "s.chain.json").write_text("[1, 2]")
        batch = IntegrityOptions(state_dir=str(tmp_path)).encoder_for("auditmw", "s").encode([])
        assert "previous_chain" not in batch.events[0]["checkpoint"]


class TestLayering:
    def test_integrity_and_verify_load_no_framework(self) -> None:
        """The writer, the verifier and the verify command import no framework or driver."""
        import subprocess
        import sys

        code = (
            "import sys, auditmw.integrity, auditmw.cli.verify, auditmw.cli.keygen\n"
            "bad = {'starlette', 'fastapi', 'flask', 'django', 'psycopg', 'nats', 'httpx'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"


class TestProcessLife:
    def test_tick_after_finish_writes_nothing(self) -> None:
        """Once closed, a chain writes no more heartbeats."""
        encoder = IntegrityOptions(checkpoint_interval_s=1).encoder_for("auditmw", "s")
        encoder.finish()
        assert encoder.tick(time.time_ns() + 10**10) is None

    def test_fork_while_the_ratchet_is_locked(self) -> None:
        """A child forked while another thread held the MAC ratchet can still create chains."""
        import os
        import signal

        options = IntegrityOptions(mac_key=b"f" * 32)
        assert options._ratchet is not None
        with options._ratchet._lock:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                signal.alarm(5)  # a deadlock kills the child instead of hanging the test
                code = 0 if options.encoder_for("auditmw", "s").encode([]) else 1
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
