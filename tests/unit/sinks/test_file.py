"""The JSONL file sink: appends, rotation by size and time, gzip, retention, multi-process."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.exceptions import ConfigurationError, SinkUnavailableError
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink, rotated_files

if TYPE_CHECKING:
    from pathlib import Path


def batch(start: int, count: int = 1, pad: int = 0) -> Batch:
    events = [{"n": i, "pad": "x" * pad} for i in range(start, start + count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def read_stream(path: Path) -> list[int]:
    """Every record of the rotated files then the live file, in order."""
    out: list[int] = []
    for part in [*rotated_files(path), path]:
        data = gzip.decompress(part.read_bytes()) if part.suffix == ".gz" else part.read_bytes()
        out.extend(orjson.loads(line)["n"] for line in data.splitlines())
    return out


class TestAppend:
    def test_one_line_per_event_mode_0600(self, tmp_path: Path) -> None:
        """Each event is one JSON line; the file is private to the owner."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path)
        sink.emit(batch(0, 3))
        sink.emit(Batch())
        sink.close()
        assert path.read_bytes().count(b"\n") == 3
        assert path.stat().st_mode & 0o777 == 0o600

    @pytest.mark.parametrize(
        ("options", "setting"),
        [
            pytest.param({"fsync": "sometimes"}, "fsync", id="fsync"),
            pytest.param({"rotate_bytes": 0}, "rotate_bytes", id="rotate-bytes"),
            pytest.param({"max_files": -1}, "max_files", id="max-files"),
            pytest.param({"max_age_days": 0}, "max_age_days", id="max-age"),
        ],
    )
    def test_invalid_options(
        self, tmp_path: Path, options: dict[str, object], setting: str
    ) -> None:
        """Invalid options raise ConfigurationError naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            FileSink(tmp_path / "a.jsonl", **options)  # type: ignore[arg-type]
        assert info.value.setting == setting

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A missing directory is a configuration error, not a failure at first write."""
        with pytest.raises(ConfigurationError, match="does not exist"):
            FileSink(tmp_path / "nope" / "a.jsonl")

    def test_unwritable_file_is_unavailable(self, tmp_path: Path) -> None:
        """An OS error becomes SinkUnavailableError naming the file."""
        path = tmp_path / "a.jsonl"
        path.mkdir()  # a directory where the file should be
        with pytest.raises(SinkUnavailableError, match=r"a\.jsonl"):
            FileSink(path).emit(batch(0))


class TestRotation:
    def test_by_size_keeps_every_record_in_order(self, tmp_path: Path) -> None:
        """Rotation by size never loses or reorders a record; rotated files are gzipped."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=1000)
        for i in range(0, 200, 4):
            sink.emit(batch(i, 4, pad=40))
        sink.close()
        rotated = rotated_files(path)
        assert len(rotated) > 5
        assert all(p.name.endswith(".gz") for p in rotated)
        assert all(p.stat().st_size > 0 and p.stat().st_mode & 0o777 == 0o600 for p in rotated)
        assert read_stream(path) == list(range(200))
        assert all(len(gzip.decompress(p.read_bytes())) <= 1000 for p in rotated)

    def test_names_sort_in_writing_order(self, tmp_path: Path) -> None:
        """Rotated names are <file>.<UTC stamp>.<sequence>.gz and sort chronologically."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=10)
        for i in range(12):
            sink.emit(batch(i))
        names = [p.name for p in rotated_files(path)]
        assert names == sorted(names)
        assert [int(n.split(".")[3]) for n in names] == list(range(1, 12))
        assert all(n.startswith("audit.jsonl.") and n[20] == "T" and n[27] == "Z" for n in names)

    def test_by_time(self, tmp_path: Path) -> None:
        """The first write in a new time window rotates the file."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_interval=3600, compress=False)
        sink.emit(batch(0))
        sink.emit(batch(1))
        assert rotated_files(path) == []
        old = time.time() - 7200
        os.utime(path, (old, old))
        sink.emit(batch(2))
        rotated = rotated_files(path)
        assert len(rotated) == 1
        assert not rotated[0].name.endswith(".gz")
        assert read_stream(path) == [0, 1, 2]

    def test_retention_by_count(self, tmp_path: Path) -> None:
        """Only the newest ``max_files`` rotated files remain."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=10, max_files=3)
        for i in range(10):
            sink.emit(batch(i))
        rotated = rotated_files(path)
        assert len(rotated) == 3
        assert read_stream(path) == [6, 7, 8, 9]

    def test_retention_by_age(self, tmp_path: Path) -> None:
        """Rotated files older than ``max_age_days`` are deleted at the next rotation."""
        path = tmp_path / "audit.jsonl"
        sink = FileSink(path, rotate_bytes=10, max_age_days=1)
        for i in range(3):
            sink.emit(batch(i))
        old = time.time() - 2 * 86_400
        for p in rotated_files(path):
            os.utime(p, (old, old))
        sink.emit(batch(3))
        assert read_stream(path) == [2, 3]

    def test_writer_follows_a_rotation_by_another_process(self, tmp_path: Path) -> None:
        """A sink whose file was rotated by another writer reopens the live file."""
        path = tmp_path / "audit.jsonl"
        first, second = FileSink(path, rotate_bytes=30), FileSink(path, rotate_bytes=30)
        first.emit(batch(0))
        second.emit(batch(1))
        first.emit(batch(2))  # rotates
        second.emit(batch(3))  # must not write into the rotated file
        assert read_stream(path) == [0, 1, 2, 3]
        assert orjson.loads(path.read_bytes().splitlines()[-1])["n"] == 3


WRITER = textwrap.dedent(
    """
    import sys, orjson
    from auditmw.sinks.base import Batch
    from auditmw.sinks.file import FileSink
    path, worker = sys.argv[1], int(sys.argv[2])
    sink = FileSink(path, rotate_bytes=20_000, fsync="never")
    for i in range(300):
        events = [{"w": worker, "i": i, "k": k, "pad": "y" * (50 + 7 * k)} for k in range(5)]
        sink.emit(Batch(events, [orjson.dumps(e) for e in events]))
    """
)


class TestMultiProcess:
    def test_concurrent_writers_with_rotation(self, tmp_path: Path) -> None:
        """Four processes appending and rotating one file: no torn, lost or duplicated line."""
        path = tmp_path / "audit.jsonl"
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)]) for w in range(4)
        ]
        assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
        seen: dict[int, list[int]] = {w: [] for w in range(4)}
        for part in [*rotated_files(path), path]:
            data = gzip.decompress(part.read_bytes()) if part.suffix == ".gz" else part.read_bytes()
            assert data.endswith(b"\n")
            for line in data.splitlines():
                record = orjson.loads(line)  # a torn or interleaved line would not parse
                seen[record["w"]].append(record["i"] * 5 + record["k"])
        assert len(rotated_files(path)) > 10
        for w in range(4):
            assert seen[w] == list(range(1500))  # per writer: complete and in order


class TestFromPolicy:
    def test_policy_sets_rotation_retention_and_durable_delivery(self, tmp_path: Path) -> None:
        """A policy document configures rotation, [retention], durable mode and the spool."""
        from auditmw.config import AuditConfig

        log = tmp_path / "audit.jsonl"
        config = AuditConfig.from_policy(
            {
                "service": {"name": "orders-api"},
                "sinks": [{"type": "file", "path": str(log), "rotate_bytes": 1_000_000}],
                "retention": {"max_age_days": 30, "max_files": 12},
                "delivery": {"mode": "durable", "durable_timeout": 2, "spool_dir": str(tmp_path)},
            }
        )
        (sink,) = config.sinks
        assert isinstance(sink, FileSink)
        assert (sink._rotate_bytes, sink._keep, sink._max_age) == (1_000_000, 12, 30 * 86_400)
        assert config.delivery.mode == "durable"
        assert config.delivery.durable_timeout == 2
        assert config.delivery.spool_dir == str(tmp_path)
