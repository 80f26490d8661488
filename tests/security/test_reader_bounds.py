"""The shared reader (verify, query, cat) is bounded and does not follow planted symlinks."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.cli import main
from auditmw.integrity import verify_files
from auditmw.integrity.reader.sources import Oversized, expand_paths, iter_file, read_records
from tests.security.test_tamper_structural import _REGISTRY, MAC_KEY, make_chain

if TYPE_CHECKING:
    from pathlib import Path

MiB = 1024 * 1024


def _gzip_stream(path: Path, piece: bytes, count: int, tail: bytes = b"") -> None:
    """Write a gzip file of ``piece * count + tail`` without holding it in memory."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        for _ in range(count):
            out.write(packer.compress(piece))
        out.write(packer.compress(tail))
        out.write(packer.flush())


class TestRecordCap:
    def test_one_huge_gzipped_line_is_skipped_in_bounded_memory(self, tmp_path: Path) -> None:
        """A 64 MiB single-line gzip is one oversized record, read in bounded memory."""
        path = tmp_path / "bomb.jsonl.gz"
        _gzip_stream(path, b"a" * MiB, 64)
        tracemalloc.start()
        try:
            records = list(iter_file(path))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(records) == 1
        marker = records[0][1]
        assert isinstance(marker, Oversized)
        assert marker.size == 64 * MiB
        assert peak < 24 * MiB  # the 16 MiB cap plus one chunk, never the line

    def test_oversized_record_is_a_finding_and_the_chain_goes_on(self, tmp_path: Path) -> None:
        """A record over --max-record-bytes is reported; the records after it are read."""
        chain = make_chain()
        lines = list(chain.lines)
        lines.insert(5, b'{"x":"' + b"y" * 5000 + b'"}')
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        report = verify_files([path], keys=_REGISTRY, mac_key=MAC_KEY, max_record_bytes=4096)
        assert [(f.code, f.location.line if f.location else 0) for f in report.findings] == [
            ("oversized_record", 6)
        ]
        assert report.chains[0].events == len(chain.seqs) - len(chain.checkpoints)

    def test_gzip_of_only_newlines_holds_no_record(self, tmp_path: Path) -> None:
        """Hundreds of MiB of blank lines are read without a record, as NOT VERIFIED."""
        path = tmp_path / "blank.jsonl.gz"
        _gzip_stream(path, b"\n" * MiB, 256)
        report = verify_files([path])
        assert report.records == 0
        assert report.verdict == "not_verified"

    @pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
    def test_records_and_line_numbers_survive_any_chunking(self, chunk: int) -> None:
        """Lines split across reads keep their bytes and numbers; long ones become markers."""
        long = b"x" * 250
        text = (
            b'{"a":1}\n\n\n{"b":2}\n'
            + b"\n" * 5000
            + b'{"c":3}\r\n'
            + long
            + b"\n"
            + long
            + b'\n{"d":4}'
        )
        data = memoryview(text)
        at = 0

        def read(size: int) -> bytes:
            nonlocal at
            piece = bytes(data[at : at + min(size, chunk)])
            at += len(piece)
            return piece

        got = [
            (number, line.size if isinstance(line, Oversized) else line)
            for number, line in read_records(read, limit=100)
        ]
        assert got == [
            (1, b'{"a":1}'),
            (4, b'{"b":2}'),
            (5005, b'{"c":3}\r'),
            (5006, 250),
            (5007, 250),
            (5008, b'{"d":4}'),
        ]

    def test_cli_max_record_bytes(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``auditmw verify --max-record-bytes`` reports a longer record as oversized."""
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b'{"x":"' + b"y" * 300 + b'"}\n')
        assert main(["verify", str(path), "--max-record-bytes", "100", "--json"]) == 3
        data = orjson.loads(capsys.readouterr().out)
        assert [f["code"] for f in data["findings"]] == ["oversized_record", "no_checkpoint"]


class TestEmptyInputCli:
    def test_empty_file_is_not_verified(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An empty log exits 3 with NOT VERIFIED; --allow-empty makes it clean."""
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"")
        assert main(["verify", str(path)]) == 3
        assert "NOT VERIFIED: the input holds no audit records" in capsys.readouterr().out
        assert main(["verify", str(path), "--allow-empty"]) == 0
        assert "CLEAN" in capsys.readouterr().out

    def test_json_report_names_the_verdict(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The JSON report carries the verdict."""
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"\n\n")
        assert main(["verify", str(path), "--json"]) == 3
        assert orjson.loads(capsys.readouterr().out)["verdict"] == "not_verified"

    def test_summary_counts_suppressed_findings(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The summary counts every finding, not only the 1000 listed per code."""
        path = tmp_path / "audit.jsonl"
        path.write_bytes(b"not json\n" * 1500)
        assert main(["verify", str(path)]) == 1
        out = capsys.readouterr().out
        assert "(and 500 more malformed_record findings)" in out
        assert out.rstrip().endswith("FINDINGS: 1500 tamper, 0 completeness, 1 unverified, 0 info")


class TestSymlinks:
    @pytest.fixture
    def planted(self, tmp_path: Path) -> Path:
        logs = tmp_path / "logs"
        logs.mkdir()
        secret = tmp_path / "shadow"
        secret.write_text("root:SECRET-HASH:19000:0:99999:7:::\n")
        (logs / "evil.jsonl").symlink_to(secret)
        (logs / "linked").symlink_to(tmp_path)
        make = make_chain(events=3)
        (logs / "audit.jsonl").write_bytes(b"".join(line + b"\n" for line in make.lines))
        return logs

    def test_expand_paths_skips_and_reports_symlinks(self, planted: Path) -> None:
        """Directory expansion leaves out symlinked files and directories, and says so."""
        skipped: list[Path] = []
        assert expand_paths([planted], skipped=skipped) == [planted / "audit.jsonl"]
        assert sorted(p.name for p in skipped) == ["evil.jsonl", "linked"]

    def test_cat_does_not_print_a_planted_symlink(
        self, planted: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``auditmw cat DIR`` does not print the target of a planted symlink."""
        main(["cat", str(planted)])
        captured = capsys.readouterr()
        assert "SECRET-HASH" not in captured.out + captured.err
        assert captured.err.count("a symbolic link inside a directory; not followed") == 2

    def test_cat_skips_an_oversized_record_and_says_so(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``auditmw cat`` prints the records around an oversized one and names it on stderr."""
        from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD

        path = tmp_path / "audit.jsonl"
        huge = b'{"x":"' + b"y" * DEFAULT_MAX_RECORD + b'"}'
        path.write_bytes(b'{"n":1}\n' + huge + b'\n{"n":2}\n')
        assert main(["cat", str(path)]) == 0
        captured = capsys.readouterr()
        assert captured.out.splitlines() == ['{"n":1}', '{"n":2}']
        assert f"{path}:2: a {len(huge)}-byte record, over the cap; skipped" in captured.err

    def test_verify_reports_skipped_symlinks(self, planted: Path) -> None:
        """``verify DIR`` names each symlink it did not follow."""
        report = verify_files([planted], keys=_REGISTRY, mac_key=MAC_KEY)
        assert [f.code for f in report.findings] == ["skipped_symlink", "skipped_symlink"]
        assert report.verdict == "incomplete"


class TestRotationOrder:
    def test_rotated_names_sort_in_writing_order(self, tmp_path: Path) -> None:
        """FileSink and logrotate names come oldest first, the live file last."""
        names = [
            "audit.jsonl",
            "audit.jsonl.20261130T034500Z.000002.gz",
            "audit.jsonl.20261130T034500Z.000001",
            "audit.jsonl.20261129T000000Z.000009.gz",
            "other.jsonl.1.gz",
            "other.jsonl.2",
            "other.jsonl",
        ]
        for name in names:
            (tmp_path / name).write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
        assert [p.name for p in expand_paths([tmp_path])] == [
            "audit.jsonl.20261129T000000Z.000009.gz",
            "audit.jsonl.20261130T034500Z.000001",
            "audit.jsonl.20261130T034500Z.000002.gz",
            "audit.jsonl",
            "other.jsonl.2",
            "other.jsonl.1.gz",
            "other.jsonl",
        ]
