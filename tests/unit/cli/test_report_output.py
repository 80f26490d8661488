"""``auditmw report`` never clobbers a file silently and never vouches for nothing."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from auditmw.cli import main
from auditmw.evidence.report import verdict
from auditmw.integrity.reader.report import Finding, Location, Report
from tests.unit.cli.conftest import event, key_args, write_log

if TYPE_CHECKING:
    from pathlib import Path

pytest.importorskip("jinja2")


@pytest.fixture
def log(tmp_path: Path, keys: Path) -> Path:
    """A clean, signed log."""
    return write_log(tmp_path / "audit.jsonl", keys, [event(n) for n in range(12)])


class TestNoClobber:
    def test_refuses_existing_file(
        self, tmp_path: Path, log: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An existing output file is left alone without --force; exit 2 says how."""
        out = tmp_path / "evidence.html"
        out.write_text("keep me")
        assert main(["report", str(log), "-o", str(out), *key_args(keys)]) == 2
        assert out.read_text() == "keep me"
        err = capsys.readouterr().err
        assert err.startswith("auditmw report: error: ")
        assert "--force" in err

    def test_default_output_not_overwritten(
        self, tmp_path: Path, log: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without -o, an existing ./report.html is not overwritten either."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "report.html").write_text("earlier report")
        assert main(["report", str(log), *key_args(keys)]) == 2
        assert (tmp_path / "report.html").read_text() == "earlier report"

    def test_never_writes_through_a_symlink(self, tmp_path: Path, log: Path, keys: Path) -> None:
        """A symlink at the output path is refused, even dangling; its target is untouched."""
        victim = tmp_path / "victim.txt"
        victim.write_text("precious")
        link = tmp_path / "report.html"
        link.symlink_to(victim)
        dangling = tmp_path / "dangling.html"
        dangling.symlink_to(tmp_path / "created-elsewhere.html")
        assert main(["report", str(log), "-o", str(link), *key_args(keys)]) == 2
        assert main(["report", str(log), "-o", str(dangling), *key_args(keys)]) == 2
        assert victim.read_text() == "precious"
        assert not (tmp_path / "created-elsewhere.html").exists()

    def test_force_replaces_the_link_not_its_target(
        self, tmp_path: Path, log: Path, keys: Path
    ) -> None:
        """With --force the path becomes a regular file; a symlink's target is untouched."""
        victim = tmp_path / "victim.txt"
        victim.write_text("precious")
        link = tmp_path / "report.html"
        link.symlink_to(victim)
        assert main(["report", str(log), "-o", str(link), "--force", *key_args(keys)]) == 0
        assert victim.read_text() == "precious"
        assert not link.is_symlink()
        assert "VERIFIED" in link.read_text()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    def test_force_overwrites_a_file(self, tmp_path: Path, log: Path, keys: Path) -> None:
        """--force replaces an existing regular file, with the usual permissions."""
        out = tmp_path / "r.html"
        out.write_text("old")
        assert main(["report", str(log), "-o", str(out), "--force", *key_args(keys)]) == 0
        assert "<html" in out.read_text()
        assert out.stat().st_mode & 0o444 == 0o444 & ~_umask()

    def test_new_file_written(self, tmp_path: Path, log: Path, keys: Path) -> None:
        """A new path is simply written."""
        out = tmp_path / "new.html"
        assert main(["report", str(log), "-o", str(out), *key_args(keys)]) == 0
        assert "VERIFIED" in out.read_text()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def headline(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """Run report on ``path``; return the exit code and the verdict it printed."""
    out = path.with_suffix(".html")
    code = main(["report", str(path), "-o", str(out), *extra])
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"report written to {out}: "), printed
    return code, printed.rsplit(": ", 1)[1]


class TestVerdict:
    def test_clean_log_verified(
        self, log: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clean, signed log with its keys is VERIFIED (exit 0)."""
        assert headline(log, capsys, *key_args(keys)) == (0, "VERIFIED")

    def test_empty_log_not_verified(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An empty log (0 records) is NOT VERIFIED, exit 1: nothing is vouched for."""
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        assert headline(empty, capsys, *key_args(keys)) == (1, "NOT VERIFIED")
        html = empty.with_suffix(".html").read_text()
        assert 'class="banner good"' not in html
        assert "no audit records" in html

    def test_tampered_log(self, log: Path, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A modified event is TAMPERING DETECTED, exit 1."""
        log.write_bytes(log.read_bytes().replace(b"user-5", b"user-6", 1))
        assert headline(log, capsys, *key_args(keys)) == (1, "TAMPERING DETECTED")

    def test_no_keys_not_verified(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Without the keys the log cannot be shown authentic: NOT VERIFIED, exit 1."""
        assert headline(log, capsys) == (1, "NOT VERIFIED")

    @pytest.mark.parametrize(
        ("codes", "records", "checkpoints", "title"),
        [
            pytest.param([], 0, 0, "NOT VERIFIED", id="empty"),
            pytest.param([], 5, 0, "NOT VERIFIED", id="no-checkpoint"),
            pytest.param(["restart"], 5, 2, "VERIFIED", id="info-only"),
            pytest.param(["recorded_drop"], 5, 2, "INCOMPLETE", id="recorded-drop"),
            pytest.param(["unclean_stop"], 5, 2, "INCOMPLETE", id="unclean-stop"),
            pytest.param(["unchecked_signatures"], 5, 2, "NOT VERIFIED", id="unverified"),
            pytest.param(["recorded_drop", "broken_link"], 5, 2, "TAMPERING DETECTED", id="tamper"),
        ],
    )
    def test_derived_from_the_report(
        self, codes: list[str], records: int, checkpoints: int, title: str
    ) -> None:
        """The headline follows from records, checkpoints and finding categories."""
        from auditmw.integrity.reader.report import ChainSummary

        report = Report(records=records)
        if records:
            report.chains.append(ChainSummary("c", events=records, checkpoints=checkpoints))
        for code in codes:
            report.add(Finding(code, "m", Location("f", 1)))
        result = verdict(report)
        assert result.title == title
        assert result.verified is (title == "VERIFIED")
