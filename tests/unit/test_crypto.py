"""Envelope encryption of audit files: round trip, key rotation, tampering, wrong keys, shredding."""

from __future__ import annotations

import base64
import gzip
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.cli import main
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.crypto import (
    AlteredLineError,
    DecryptionError,
    KeyProvider,
    Keyring,
    decrypt_lines,
    new_segment,
)
from auditmw.delivery import Delivery
from auditmw.exceptions import ConfigurationError
from auditmw.integrity import IntegrityOptions, verify_files
from auditmw.integrity.reader.sources import iter_file, use_keyring
from auditmw.pipeline import Pipeline
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink, rotated_files

if TYPE_CHECKING:
    from pathlib import Path


def batch(start: int, count: int) -> Batch:
    events = [{"n": i, "secret_path": f"/patients/{i}"} for i in range(start, start + count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def plain(path: Path, keyring: KeyProvider | None) -> list[dict[str, Any]]:
    with use_keyring(keyring):
        return [orjson.loads(line) for _, line in iter_file(path, strict=True)]


def stream(live: Path, keyring: KeyProvider | None) -> list[dict[str, Any]]:
    return [doc for part in [*rotated_files(live), live] for doc in plain(part, keyring)]


def write_chain(live: Path, keys: Path, keyring: Keyring, start: int, count: int) -> None:
    """Write ``count`` chained lifecycle events through the real delivery thread."""
    integrity = IntegrityOptions(
        signing_key_file=str(keys / "auditmw.key"),
        checkpoint_every=10,
        state_dir=str(keys),
    )
    sink = FileSink(live, rotate_bytes=3000, encryption=keyring)
    pipeline = Pipeline(AuditConfig("svc"))
    options = DeliveryOptions(max_wait_ms=5)
    delivery = Delivery([sink], options, integrity=integrity, lifecycle=pipeline.lifecycle)
    for n in range(start, start + count):
        delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": n}))
        if n % 7 == 0:
            delivery.flush(5)
    delivery.close(10)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out), "--registry", str(out / "registry.json")]) == 0
    return out


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    Keyring.generate("kek-2026").save(path)
    return path


class TestRoundTrip:
    def test_ciphertext_only_on_disk(self, tmp_path: Path) -> None:
        """Nothing of the plaintext reaches the disk; the reader gets every record back."""
        keyring = Keyring.generate("k1")
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, encryption=keyring)
        for i in range(0, 20, 5):
            sink.emit(batch(i, 5))
        sink.close()
        data = path.read_bytes()
        assert b"patients" not in data
        assert data.count(b"\n") == 5  # header + one line per batch: still line-framed
        assert [e["n"] for e in plain(path, keyring)] == list(range(20))

    def test_second_writer_appends_under_same_data_key(self, tmp_path: Path) -> None:
        """A second sink (another process) reuses the file's data key from its header."""
        keyring = Keyring.generate("k1")
        path = tmp_path / "audit.jsonl"
        for start in (0, 3):
            sink = FileSink(path, encryption=keyring)
            sink.emit(batch(start, 3))
            sink.close()
        assert raw(path).count(b"auditmw_encryption") == 1
        assert [e["n"] for e in plain(path, keyring)] == list(range(6))

    def test_keyring_repr_and_errors_hide_keys(self, tmp_path: Path) -> None:
        """Neither repr nor a parse error shows key material."""
        keyring = Keyring.generate("k1")
        secret = orjson.loads(keyring.to_json())["keys"]["k1"]
        assert secret not in repr(keyring)
        bad = keyring.to_json().replace(b'"k1":"', b'"k1":"zz')
        with pytest.raises(ConfigurationError) as caught:
            Keyring.from_json(bad)
        assert secret not in str(caught.value)


class TestRotationAndVerify:
    def test_rotate_keys_then_decrypt_and_verify(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Files written before and after a KEK rotation all decrypt and verify as one log."""
        logs = tmp_path / "logs"
        logs.mkdir()
        live = logs / "audit.jsonl"
        old = Keyring.generate("kek-old")
        write_chain(live, keys, old, 0, 40)
        new = old.rotate("kek-new")
        write_chain(live, keys, new, 40, 40)
        files = [*rotated_files(live), live]
        key_ids = [
            orjson.loads(raw(f).partition(b"\n")[0])["auditmw_encryption"]["key_id"] for f in files
        ]
        assert key_ids[0] == "kek-old"
        assert key_ids[-1] == "kek-new"
        numbers = [e["details"]["n"] for e in stream(live, new) if "n" in e.get("details", {})]
        assert numbers == list(range(80))
        with use_keyring(new):
            report = verify_files([logs], keys=None)
        assert not [f for f in report.findings if f.category == "tamper"]
        ring = tmp_path / "ring.json"
        new.save(ring)
        args = ["verify", str(logs), "--keys", str(keys / "registry.json"), "--keyring", str(ring)]
        code = main(args)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "CLEAN" in out

    def test_verify_without_keyring_names_key_id(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify on encrypted files without --keyring fails with exit 2, naming the key id."""
        logs = tmp_path / "logs"
        logs.mkdir()
        write_chain(logs / "audit.jsonl", keys, Keyring.generate("kek-x"), 0, 5)
        assert main(["verify", str(logs)]) == 2
        assert "'kek-x'" in capsys.readouterr().err


class TestTamper:
    def flip(self, path: Path, line_no: int) -> None:
        lines = raw(path).split(b"\n")
        path.chmod(0o600)
        blob = bytearray(base64.b64decode(lines[line_no]))
        blob[20] ^= 0x01
        lines[line_no] = base64.b64encode(bytes(blob))
        path.write_bytes(b"\n".join(lines))

    def test_flipped_byte_detected_by_gcm_and_verify(
        self, tmp_path: Path, keys: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One flipped ciphertext bit: cat refuses the line, verify reports tampering."""
        logs = tmp_path / "logs"
        logs.mkdir()
        live = logs / "audit.jsonl"
        write_chain(live, keys, Keyring.from_file(keyring_file), 0, 30)
        target = rotated_files(live)[0]
        self.flip(target, 1)
        assert main(["cat", str(target), "--keyring", str(keyring_file)]) == 1
        assert "fails authentication" in capsys.readouterr().err
        args = [
            "verify",
            str(logs),
            "--keyring",
            str(keyring_file),
            "--keys",
            str(keys / "registry.json"),
        ]
        assert main(args) == 1
        assert "TAMPER" in capsys.readouterr().out

    @pytest.mark.parametrize("how", ["swap", "transplant"])
    def test_moved_lines_fail(self, tmp_path: Path, how: str) -> None:
        """Lines swapped within a file or copied from another file fail authentication."""
        keyring = Keyring.generate("k1")
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        for path in (a, b):
            sink = FileSink(path, encryption=keyring)
            for i in range(3):
                sink.emit(batch(i, 2))
            sink.close()
        lines = a.read_bytes().split(b"\n")
        if how == "swap":
            lines[1], lines[2] = lines[2], lines[1]
        else:
            lines[1] = b.read_bytes().split(b"\n")[1]
        with pytest.raises(AlteredLineError, match="fails authentication"):
            list(
                decrypt_lines(lines[0] + b"\n", [line + b"\n" for line in lines[1:]], keyring, "a")
            )


class TestKeys:
    def test_wrong_key_for_id(self, tmp_path: Path) -> None:
        """A different key under the same id is a clear error naming the key id."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, encryption=Keyring.generate("kek-1"))
        sink.emit(batch(0, 2))
        sink.close()
        with pytest.raises(DecryptionError, match="'kek-1' does not unwrap") as caught:
            plain(path, Keyring.generate("kek-1"))
        assert caught.value.key_id == "kek-1"

    def test_missing_key_id(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A keyring without the file's key id names it; cat exits 2."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, encryption=Keyring.generate("kek-1"))
        sink.emit(batch(0, 2))
        sink.close()
        ring = tmp_path / "other.json"
        Keyring.generate("kek-2").save(ring)
        assert main(["cat", str(path), "--keyring", str(ring)]) == 2
        assert "key id 'kek-1' is not in the keyring" in capsys.readouterr().err

    def test_keyring_file_must_be_private(self, tmp_path: Path) -> None:
        """A keyring file readable by group or others is refused with the chmod fix."""
        ring = tmp_path / "ring.json"
        Keyring.generate().save(ring)
        assert ring.stat().st_mode & 0o777 == 0o600
        ring.chmod(0o640)
        with pytest.raises(ConfigurationError, match="chmod 600"):
            Keyring.from_file(ring)

    def test_from_env(self) -> None:
        """The keyring JSON can come from an environment variable."""
        keyring = Keyring.generate("k1").rotate("k2")
        loaded = Keyring.from_env("RING", {"RING": keyring.to_json().decode()})
        assert (loaded.current, loaded.key_ids) == ("k2", ["k1", "k2"])
        with pytest.raises(ConfigurationError, match="RING is not set"):
            Keyring.from_env("RING", {})


class TestShred:
    def test_shred_one_segment_only(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Shredding one rotated file makes exactly that file unreadable."""
        keyring = Keyring.generate("k1")
        live = tmp_path / "audit.jsonl"
        sink = FileSink(live, rotate_bytes=700, encryption=keyring)
        for i in range(0, 40, 4):
            sink.emit(batch(i, 4))
        sink.close()
        first, second, *_ = rotated_files(live)
        ring = tmp_path / "ring.json"
        keyring.save(ring)
        assert main(["retention", "shred", str(first)]) == 0
        assert "shredded" in capsys.readouterr().out
        with pytest.raises(DecryptionError, match="shredded"):
            plain(first, keyring)
        assert plain(second, keyring)
        assert main(["cat", str(first), "--keyring", str(ring)]) == 2

    def test_destroyed_kek(self, tmp_path: Path) -> None:
        """Destroying a KEK makes the files it wrapped unreadable, and not the others."""
        ring = Keyring.generate("old")
        rotated = ring.rotate("new")
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        for path, keyring in ((a, ring), (b, rotated)):
            sink = FileSink(path, encryption=keyring)
            sink.emit(batch(0, 1))
            sink.close()
        remaining = rotated.destroy("old")
        with pytest.raises(DecryptionError, match="'old'"):
            plain(a, remaining)
        assert plain(b, remaining) == batch(0, 1).events
        with pytest.raises(ConfigurationError, match="rotate"):
            remaining.destroy("new")


class TestReaders:
    def test_cat_prints_plaintext(
        self, tmp_path: Path, keyring_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        """auditmw cat prints exactly the plaintext lines, in writing order."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=900, encryption=Keyring.from_file(keyring_file))
        sent = [batch(i, 3) for i in range(0, 30, 3)]
        for one in sent:
            sink.emit(one)
        sink.close()
        assert len(rotated_files(path)) >= 2
        files = [str(p) for p in [*rotated_files(path), path]]  # unchained: give the order
        assert main(["cat", *files, "--keyring", str(keyring_file)]) == 0
        assert capsysbinary.readouterr().out == b"".join(one.payload() for one in sent)

    def test_rotated_encrypted_files_respect_rotate_bytes(self, tmp_path: Path) -> None:
        """Rotation accounts for the encrypted size, not the plaintext size."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=2000, compress=False, encryption=Keyring.generate())
        for i in range(40):
            sink.emit(batch(i, 2))
        sink.close()
        assert all(p.stat().st_size <= 2000 for p in rotated_files(path))

    def test_verify_jobs_with_keyring(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify --jobs 2 decrypts in its worker processes too."""
        ring = tmp_path / "ring.json"
        keyring = Keyring.generate("k1")
        keyring.save(ring)
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            write_chain(tmp_path / name / "audit.jsonl", keys, keyring, 0, 15)
        args = ["verify", str(tmp_path / "a"), str(tmp_path / "b"), "--jobs", "2"]
        code = main([*args, "--keys", str(keys / "registry.json"), "--keyring", str(ring)])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "2 chain(s)" in out

    @settings(max_examples=50, deadline=None)
    @given(payloads=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8))
    def test_round_trip_property(self, payloads: list[bytes]) -> None:
        """Any sequence of JSON-line batches decrypts back to the same lines."""
        keyring = Keyring.generate("p")
        header, key = new_segment(keyring)
        stored, offset = [], len(header)
        lines = [b'{"b":"' + p.hex().encode() + b'"}\n' for p in payloads]
        for line in lines:
            stored.append(key.encrypt(line, offset))
            offset += len(stored[-1])
        assert list(decrypt_lines(header, stored, keyring, "mem")) == lines


WRITER = """
import os, sys, orjson
from auditmw.crypto import Keyring
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink
path, worker = sys.argv[1], int(sys.argv[2])
sink = FileSink(path, rotate_bytes=6_000, fsync="never", encryption=Keyring.from_env("RING"))
for i in range(60):
    events = [{"w": worker, "i": i, "k": k} for k in range(3)]
    sink.emit(Batch(events, [orjson.dumps(e) for e in events]))
"""


class TestMultiProcess:
    def test_concurrent_encrypted_writers(self, tmp_path: Path) -> None:
        """Three processes share and rotate one encrypted file: every line decrypts, none lost."""
        import os
        import subprocess
        import sys

        keyring = Keyring.generate("mp")
        env = {**os.environ, "RING": keyring.to_json().decode()}
        path = tmp_path / "audit.jsonl"
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)], env=env)
            for w in range(3)
        ]
        assert [p.wait(60) for p in procs] == [0, 0, 0]
        assert len(rotated_files(path)) >= 3
        seen = sorted((e["w"], e["i"], e["k"]) for e in stream(path, keyring))
        assert seen == sorted((w, i, k) for w in range(3) for i in range(60) for k in range(3))
