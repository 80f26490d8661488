"""One command line: ``--version``, ``--help`` everywhere, one error format, exit codes."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

import pytest

import auditmw
from auditmw.cli import COMMANDS, build_parser, main

if TYPE_CHECKING:
    from pathlib import Path


def walk(parser: argparse.ArgumentParser) -> list[list[str]]:
    """Every command path (``["postgres", "init"]``) that runs something."""
    found: list[list[str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = walk(sub)
                found.extend([[name, *rest] for rest in inner] if inner else [[name]])
    return found


COMMAND_PATHS = walk(build_parser())


class TestTopLevel:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``auditmw --version`` prints the package version and exits 0."""
        assert main(["--version"]) == 0
        assert capsys.readouterr().out.strip() == f"auditmw {auditmw.__version__}"

    def test_help_lists_only_commands_that_exist(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The top-level help lists every command, and no ``demo`` that is not there."""
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        assert "demo" not in out
        listed = {path[0] for path in COMMAND_PATHS}
        assert listed == {name.replace("_", "-") for name in COMMANDS}
        for name in listed:
            assert name in out

    def test_no_command_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``auditmw`` alone prints the help on stderr and exits 2."""
        assert main([]) == 2
        assert "COMMAND" in capsys.readouterr().err

    def test_unknown_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown command exits 2 with ``auditmw: error: …``."""
        assert main(["demo"]) == 2
        assert "auditmw: error: argument COMMAND: invalid choice: 'demo'" in (
            capsys.readouterr().err
        )


@pytest.mark.parametrize("path", [pytest.param(p, id="-".join(p)) for p in COMMAND_PATHS])
class TestEveryCommand:
    def test_help(self, path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """``auditmw <command> --help`` prints its usage and exits 0."""
        assert main([*path, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: auditmw {' '.join(path)}")

    def test_unknown_option(self, path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown option exits 2 with ``auditmw <command>: error: …`` as the last line."""
        assert main([*path, "--no-such-option"]) == 2
        last = capsys.readouterr().err.rstrip("\n").splitlines()[-1]
        assert re.match(rf"^auditmw {' '.join(path)}: error: ", last), last


def err_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one error line a command printed, checked against the common format."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert lines, "nothing on stderr"
    assert lines[-1].startswith(f"auditmw {command}: error: "), err
    assert "Traceback" not in err
    return lines[-1]


class TestRuntimeErrors:
    @pytest.mark.parametrize(
        ("command", "args"),
        [
            pytest.param("query", ["query"], id="query"),
            pytest.param("report", ["report", "-o", "{tmp}/r.html"], id="report"),
            pytest.param("audit-ready", ["audit-ready"], id="audit-ready"),
            pytest.param("cat", ["cat"], id="cat"),
            pytest.param("verify", ["verify"], id="verify"),
            pytest.param("retention shred", ["retention", "shred"], id="retention-shred"),
        ],
    )
    def test_missing_log(
        self, tmp_path: Path, command: str, args: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log that does not exist exits 2 in the common format, naming the path."""
        argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
        assert main([*argv, str(tmp_path / "missing.jsonl")]) == 2
        assert "missing.jsonl" in err_line(capsys, command)

    def test_bad_keyring_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unreadable --keyring is a configuration error (exit 2), not a traceback."""
        log = tmp_path / "a.jsonl"
        log.write_text("{}\n")
        assert main(["query", str(log), "--keyring", str(tmp_path / "nope.json")]) == 2
        assert "keyring" in err_line(capsys, "query")

    def test_postgres_init_bad_role(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``postgres init`` reports a bad setting like every other command: exit 2."""
        code = main(["postgres", "init", "postgresql:///x", "--writer-role", "a b"])
        assert code == 2
        assert "--writer-role" in err_line(capsys, "postgres init")

    def test_postgres_init_unreachable(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A database that cannot be reached is an I/O error: exit 2, common format."""
        pytest.importorskip("psycopg")
        # Port 1 on the loopback: refused at once, no server involved.
        code = main(["postgres", "init", "host=127.0.0.1 port=1 dbname=x connect_timeout=5"])
        assert code == 2
        assert "OperationalError" in err_line(capsys, "postgres init")

    def test_apikey_without_secret(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``apikey hash`` without its secret uses the common format too."""
        monkeypatch.delenv("AUDITMW_APIKEY_SECRET", raising=False)
        assert main(["apikey", "hash", "--generate"]) == 2
        assert "AUDITMW_APIKEY_SECRET" in err_line(capsys, "apikey hash")
