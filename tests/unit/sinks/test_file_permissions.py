"""FileSink storage hygiene: private modes, read-only rotated files, no world-writable dirs."""

from __future__ import annotations

import gzip
import os
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.exceptions import ConfigurationError
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink, rotated_files

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def umask() -> object:
    """A permissive umask, so the modes seen are the ones auditmw asked for."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def emit(sink: FileSink, count: int, pad: int = 200) -> None:
    for i in range(count):
        event = {"n": i, "pad": "x" * pad}
        sink.emit(Batch([event], [orjson.dumps(event)]))
    sink.close()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


class TestModes:
    @pytest.mark.parametrize(
        ("group_read", "live", "rotated"),
        [
            pytest.param(False, 0o600, 0o400, id="private"),
            pytest.param(True, 0o640, 0o440, id="group"),
        ],
    )
    @pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
    def test_live_and_rotated_modes(
        self, tmp_path: Path, group_read: bool, live: int, rotated: int, compress: bool
    ) -> None:
        """The live file is 0600/0640; rotated files are read-only 0400/0440."""
        path = tmp_path / "audit.jsonl"
        emit(FileSink(path, rotate_bytes=600, compress=compress, group_read=group_read), 10)
        assert mode(path) == live
        files = rotated_files(path)
        assert len(files) >= 2
        assert {mode(p) for p in files} == {rotated}

    def test_create_dir_is_0700(self, tmp_path: Path) -> None:
        """With create_dir=True a missing directory is created private to the owner."""
        path = tmp_path / "new" / "audit.jsonl"
        emit(FileSink(path, create_dir=True), 1)
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600

    def test_missing_dir_names_the_fix(self, tmp_path: Path) -> None:
        """Without create_dir a missing directory is refused, naming the option."""
        with pytest.raises(ConfigurationError, match="create_dir=True"):
            FileSink(tmp_path / "absent" / "audit.jsonl")


class TestWorldWritable:
    @pytest.mark.parametrize("bits", [0o777, 0o1777], ids=["o+w", "sticky"])
    def test_refused(self, tmp_path: Path, bits: int) -> None:
        """A world-writable directory (sticky or not) is refused, naming path and fix."""
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(bits)
        with pytest.raises(ConfigurationError, match="world-writable") as caught:
            FileSink(shared / "audit.jsonl")
        assert str(shared) in str(caught.value)
        assert "allow_world_writable=True" in str(caught.value)
        assert caught.value.setting == "allow_world_writable"

    def test_allowed_explicitly(self, tmp_path: Path) -> None:
        """allow_world_writable=True accepts a reviewed shared directory."""
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o1777)
        emit(FileSink(shared / "audit.jsonl", allow_world_writable=True), 1)
        assert (shared / "audit.jsonl").read_bytes().count(b"\n") == 1


class TestRotationNames:
    def test_never_overwrites_after_clock_step_back(self, tmp_path: Path) -> None:
        """A rotated file whose name sorts last (future stamp) is never overwritten."""
        path = tmp_path / "audit.jsonl"
        emit(FileSink(path, rotate_bytes=600), 4)
        first, *_ = rotated_files(path)
        future = first.with_name(f"{path.name}.29991231T000000Z.000001.gz")
        first.rename(future)
        emit(FileSink(path, rotate_bytes=600), 8)
        files = [*rotated_files(path), path]
        assert future in files
        data = b"".join(
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in files
        )
        assert data.count(b"\n") == 12  # nothing overwritten
