"""The file sink under storage faults: a full disk, a read-only directory, a crash's torn tail.

These run against a real small tmpfs (see ``tests/unit/_mounts.py``): a full disk makes
``write`` store part of a batch and fail, exactly as in production.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw import AuditConfig, Auditor
from auditmw.config import DeliveryOptions
from auditmw.event import Headers
from auditmw.exceptions import ConfigurationError, SinkUnavailableError
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.integrity.layout import TORN_FENCE
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink, rotated_files
from tests._waiting import wait_for
from tests.unit._mounts import fill, remount, tmpfs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from auditmw.integrity.reader.report import Report


def batch(start: int, count: int = 1, pad: int = 0) -> Batch:
    events = [{"n": i, "pad": "x" * pad} for i in range(start, start + count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def numbers(*paths: Path) -> list[int]:
    out: list[int] = []
    for part in paths:
        data = part.read_bytes()
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        out.extend(orjson.loads(line)["n"] for line in data.splitlines())
    return out


def record_requests(auditor: Auditor, start: int, count: int, pad: int = 0) -> None:
    for i in range(start, start + count):
        headers = Headers([(b"user-agent", b"u" * pad)]) if pad else Headers([])
        exchange = auditor.new_exchange(
            "http", "GET", f"/orders/{i}", headers, client=("10.1.1.1", 1)
        )
        exchange.status = 200
        auditor.record(exchange)


def tampering(report: Report) -> list[str]:
    return [f"{f.code} at {f.location}" for f in report.findings if f.category == "tamper"]


class TestFullDisk:
    def test_short_write_leaves_the_file_at_a_record_boundary(self, tmp_path: Path) -> None:
        """A batch cut short by a full disk is taken back whole; retried later, it lands intact."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            sink = FileSink(fs / "audit.jsonl")
            sink.emit(batch(0, 2))
            filler = fill(fs)
            big = batch(2, 3, pad=3000)  # more than the room left in the file's last page
            with pytest.raises(SinkUnavailableError, match=r"audit\.jsonl"):
                sink.emit(big)
            assert (fs / "audit.jsonl").read_bytes().endswith(b"\n")
            assert numbers(fs / "audit.jsonl") == [0, 1]
            filler.unlink()
            sink.emit(big)
            sink.close()
            assert numbers(fs / "audit.jsonl") == [0, 1, 2, 3, 4]

    def test_encrypted_short_write_is_taken_back(self, tmp_path: Path) -> None:
        """Encrypted, a failed first write takes back the file header too: the file stays readable."""
        from auditmw.crypto import Keyring

        keyring = Keyring.generate("k1")
        with tmpfs(tmp_path / "fs", "1m") as fs:
            path = fs / "audit.jsonl"
            filler = fill(fs, leave=4096)  # one page: room for the header, not the batch
            sink = FileSink(path, encryption=keyring)
            with pytest.raises(SinkUnavailableError):
                sink.emit(batch(0, 3, pad=3000))
            assert path.stat().st_size == 0
            filler.unlink()
            sink.emit(batch(0, 3, pad=3000))
            sink.emit(batch(3))
            sink.close()
            from auditmw.integrity.reader.sources import iter_file, use_keyring

            with use_keyring(keyring):
                lines = [orjson.loads(line)["n"] for _, line in iter_file(path, strict=True)]
            assert lines == [0, 1, 2, 3]

    def test_rotation_on_a_full_disk_keeps_every_record(self, tmp_path: Path) -> None:
        """gzip failing for lack of space keeps the rotated file plain; nothing is lost or torn."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            path = fs / "audit.jsonl"
            sink = FileSink(path, rotate_bytes=6000, compress=True)
            sink.emit(batch(0, 1, pad=3000))
            filler = fill(fs)
            with pytest.raises(SinkUnavailableError):
                sink.emit(batch(1, 1, pad=3500))  # rotates, gzip fails, the new file cannot grow
            assert not [p for p in fs.iterdir() if p.name.endswith("-partial")]
            filler.unlink()
            sink.emit(batch(1, 1, pad=3500))
            sink.close()
            assert numbers(*rotated_files(path), path) == [0, 1]

    def test_full_disk_through_delivery_verifies_without_tampering(self, tmp_path: Path) -> None:
        """Issue 15.2: an outage for lack of space is recorded and the log verifies, no TAMPER."""
        private, public, _ = generate_keypair()
        with tmpfs(tmp_path / "fs", "1m") as fs:
            path = fs / "audit.jsonl"
            config = AuditConfig(
                service="svc",
                sinks=[FileSink(path)],
                integrity=IntegrityOptions(signing_key=private, checkpoint_every=5),
                delivery=DeliveryOptions(retry_initial=0.01, retry_max=0.05),
            )
            auditor = Auditor(config)
            record_requests(auditor, 0, 3)
            assert auditor.flush(30)
            filler = fill(fs)
            record_requests(auditor, 3, 10, pad=1000)
            assert auditor.flush(30)
            filler.unlink()
            wait_for(lambda: b"audit.sink_recovered" in path.read_bytes(), "the sink to recover")
            auditor.close()
            registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
            report = verify_files([path], keys=registry)
            assert tampering(report) == []
            kinds = [orjson.loads(line)["kind"] for line in path.read_bytes().splitlines()]
            assert kinds.count("http") == 13
            assert "audit.sink_failed" in kinds


class TestTornTail:
    def test_crash_fragment_is_fenced_before_the_next_record(self, tmp_path: Path) -> None:
        """A torn last line left by a crash is closed with the fence; the next record starts fresh."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path)
        sink.emit(batch(0, 2))
        sink.close()
        with path.open("ab") as crashed:
            crashed.write(b'{"n":2,"pad":"xx')
        sink = FileSink(path)
        sink.emit(batch(3))
        sink.close()
        lines = path.read_bytes().splitlines()
        assert lines[2] == b'{"n":2,"pad":"xx' + TORN_FENCE
        assert [orjson.loads(line)["n"] for i, line in enumerate(lines) if i != 2] == [0, 1, 3]

    def test_fragment_left_by_another_writer_is_fenced(self, tmp_path: Path) -> None:
        """A writer already holding the file open fences what a killed sharer left."""
        path = tmp_path / "audit.jsonl"
        survivor, killed = FileSink(path), FileSink(path)
        survivor.emit(batch(0))
        killed.emit(batch(1))
        with path.open("ab") as crashed:  # the killed worker's last, unfinished write
            crashed.write(b'{"n":2,"pa')
        survivor.emit(batch(3))
        survivor.close()
        lines = path.read_bytes().splitlines()
        assert lines[2].endswith(TORN_FENCE)
        assert orjson.loads(lines[3])["n"] == 3

    def test_torn_tail_is_fenced_before_the_file_is_rotated_away(self, tmp_path: Path) -> None:
        """A fragment in a file about to rotate is fenced first: no rotated file ends torn."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=1000, compress=False)
        sink.emit(batch(0, 1, pad=400))
        with path.open("ab") as crashed:
            crashed.write(b'{"n":1,"pad":"' + b"x" * 300)
        sink.emit(batch(2, 1, pad=400))  # would pass rotate_bytes: rotates first
        sink.close()
        (rotated,) = rotated_files(path)
        assert rotated.read_bytes().endswith(TORN_FENCE + b"\n")
        assert numbers(path) == [2]

    def test_complete_record_without_newline_is_only_terminated(self, tmp_path: Path) -> None:
        """A last record complete but for its newline is kept as a record, not fenced."""
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b'{"n":0}')
        sink = FileSink(path)
        sink.emit(batch(1))
        sink.close()
        assert numbers(path) == [0, 1]

    def test_fenced_torn_record_is_a_crash_artefact_for_verify(self, tmp_path: Path) -> None:
        """verify reports a fenced torn line as ``torn_record`` (completeness), not tampering."""
        private, public, _ = generate_keypair()
        path = tmp_path / "audit.jsonl"
        options = IntegrityOptions(signing_key=private, state_dir=str(tmp_path))
        for run in range(2):
            auditor = Auditor(AuditConfig(service="svc", sinks=[FileSink(path)], integrity=options))
            record_requests(auditor, 0, 3)
            auditor.close()
            if run == 0:
                last = path.read_bytes().splitlines()[-1]
                with path.open("ab") as crashed:
                    crashed.write(last[: len(last) // 2])
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        report = verify_files([path], keys=registry)
        assert tampering(report) == []
        assert "torn_record" in report.codes()
        assert [f.category for f in report.findings if f.code == "torn_record"] == ["completeness"]

    def test_encrypted_fenced_fragment_is_skipped_by_strict_readers(self, tmp_path: Path) -> None:
        """In an encrypted file the fenced fragment is not an altered line: cat/query read on."""
        from auditmw.crypto import Keyring
        from auditmw.integrity.reader.sources import iter_file, use_keyring

        keyring = Keyring.generate("k1")
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, encryption=keyring)
        sink.emit(batch(0))
        sink.close()
        with path.open("ab") as crashed:
            crashed.write(b"QUJDREVGR0g")  # part of an encrypted line
        sink = FileSink(path, encryption=keyring)
        sink.emit(batch(1))
        sink.close()
        with use_keyring(keyring):
            assert [orjson.loads(line)["n"] for _, line in iter_file(path, strict=True)] == [0, 1]

    def test_unfenced_garbage_is_still_tampering(self, tmp_path: Path) -> None:
        """Only the writer's fence makes a broken line benign: other garbage stays malformed."""
        private, public, _ = generate_keypair()
        path = tmp_path / "audit.jsonl"
        auditor = Auditor(
            AuditConfig(
                service="svc",
                sinks=[FileSink(path)],
                integrity=IntegrityOptions(signing_key=private),
            )
        )
        record_requests(auditor, 0, 2)
        auditor.close()
        lines = path.read_bytes().splitlines(keepends=True)
        lines.insert(2, b'{"kind": "http", "broken\n')
        path.write_bytes(b"".join(lines))
        registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
        assert "malformed_record" in verify_files([path], keys=registry).codes()


class TestReadOnly:
    def test_read_only_directory_is_refused_at_construction(self, tmp_path: Path) -> None:
        """Issue 15.3: a directory the service cannot write fails at start, naming path and fix."""
        with tmpfs(tmp_path / "fs", "1m", read_only=True) as fs:
            with pytest.raises(ConfigurationError) as info:
                FileSink(fs / "audit.jsonl")
            assert str(fs / "audit.jsonl") in str(info.value)
            assert "writ" in str(info.value)
            assert info.value.setting == "path"

    def test_directory_that_cannot_be_created_is_a_configuration_error(
        self, tmp_path: Path
    ) -> None:
        """create_dir=True on a read-only filesystem names the directory, not an OSError."""
        with (
            tmpfs(tmp_path / "fs", "1m", read_only=True) as fs,
            pytest.raises(ConfigurationError, match="cannot create the directory"),
        ):
            FileSink(fs / "logs" / "audit.jsonl", create_dir=True)

    def test_read_only_file_is_refused_at_construction(self, tmp_path: Path) -> None:
        """An existing log file the service cannot append to fails at start too."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            (fs / "audit.jsonl").write_bytes(b"")
            remount(fs, read_only=True)
            with pytest.raises(ConfigurationError, match=r"audit\.jsonl"):
                FileSink(fs / "audit.jsonl")

    def test_directory_turning_read_only_is_recorded_and_recovers(self, tmp_path: Path) -> None:
        """A directory made read-only later: audit.sink_failed is recorded, nothing is lost."""
        with tmpfs(tmp_path / "fs", "1m") as fs:
            path = fs / "audit.jsonl"
            config = AuditConfig(
                service="svc",
                sinks=[FileSink(path)],
                delivery=DeliveryOptions(retry_initial=0.01, retry_max=0.05),
            )
            auditor = Auditor(config)
            record_requests(auditor, 0, 2)
            assert auditor.flush(30)
            sink = config.sinks[0]
            assert isinstance(sink, FileSink)
            # The sink keeps its file open (a mount with writers cannot turn read-only):
            # closing it makes the next batch reopen the file, as after a rotation.
            sink.close()
            remount(fs, read_only=True)
            record_requests(auditor, 2, 3)
            assert auditor.flush(30)
            remount(fs, read_only=False)
            wait_for(lambda: b"audit.sink_recovered" in path.read_bytes(), "the sink to recover")
            auditor.close()
            docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
            kinds = [d["kind"] for d in docs]
            assert kinds.count("http") == 5
            failed = next(d for d in docs if d["kind"] == "audit.sink_failed")
            assert failed["details"]["sink"] == "FileSink:0"


def _as_unprivileged(check: Callable[[], object]) -> object:
    """Run ``check`` in a forked child as uid/gid 65534 (nobody); return its result or error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            try:
                result: object = check()
            except Exception as exc:  # reported to the parent
                result = f"{type(exc).__name__}: {exc}"
            os.write(write, orjson.dumps(result))
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return orjson.loads(b"".join(chunks))


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """A directory owned by root (0755) holding a log file owned by the service (nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a check as an unprivileged service user")
    directory = Path(tempfile.mkdtemp(prefix="auditmw-svc-"))
    try:
        directory.chmod(0o755)
        log = directory / "audit.jsonl"
        log.write_bytes(b"")
        os.chown(log, 65534, 65534)
        yield directory
    finally:
        shutil.rmtree(directory)


class TestUnprivileged:
    def test_file_writable_in_a_root_owned_directory_works(self, service_dir: Path) -> None:
        """Like /var/log/app.jsonl: the service owns the file, not the directory; no sidecar."""

        def check() -> object:
            sink = FileSink(service_dir / "audit.jsonl")
            sink.emit(batch(0, 2))
            sink.close()
            return sorted(p.name for p in service_dir.iterdir())

        assert _as_unprivileged(check) == ["audit.jsonl"]
        assert numbers(service_dir / "audit.jsonl") == [0, 1]

    @pytest.mark.parametrize(
        ("name", "options"),
        [
            pytest.param("new.jsonl", {}, id="new-file"),
            pytest.param("audit.jsonl", {"rotate_bytes": 1000}, id="rotation-needs-the-directory"),
        ],
    )
    def test_unwritable_directory_is_refused_naming_uid(
        self, service_dir: Path, name: str, options: dict[str, object]
    ) -> None:
        """When the directory must be written, construction fails naming it and the uid."""

        def check() -> object:
            FileSink(service_dir / name, **options)  # type: ignore[arg-type]
            return "constructed"

        message = _as_unprivileged(check)
        assert isinstance(message, str)
        assert message.startswith("ConfigurationError")
        assert "uid 65534" in message
        assert str(service_dir) in message
