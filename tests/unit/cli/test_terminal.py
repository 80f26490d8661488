"""Log content never reaches a terminal raw: escape sequences in events are made visible."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.cli import main
from auditmw.core.terminal import escape_bytes, escape_control
from tests.unit.cli.conftest import HOSTILE_AGENT, event, key_args, write_log

if TYPE_CHECKING:
    from pathlib import Path

#: Bytes that start a terminal control sequence: ESC, BEL, the 8-bit CSI/OSC (UTF-8 and raw).
CONTROL = [b"\x1b", b"\x07", b"\xc2\x9b", b"\xc2\x9d", b"\x9b", b"\x7f", "\u202e".encode()]


def assert_no_control(data: bytes) -> None:
    """No control byte or sequence in ``data`` (newlines and carriage returns aside)."""
    for needle in CONTROL:
        assert needle not in data, (needle, data[:400])
    assert not [b for b in data if b < 0x20 and b not in (0x0A, 0x0D)], data[:400]


class TestEscape:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("plain text / ok", "plain text / ok", id="printable-unchanged"),
            pytest.param("é ü 漢字 ✓", "é ü 漢字 ✓", id="unicode-unchanged"),
            pytest.param("a\x1b[2Jb", "a\\u001b[2Jb", id="esc"),
            pytest.param("a\u009b6n", "a\\u009b6n", id="c1-csi"),
            pytest.param("x\x07\x7f", "x\\u0007\\u007f", id="bel-del"),
            pytest.param("a\u202eb", "a\\u202eb", id="bidi-override"),
            pytest.param("a\nb\tc\r", "a\\u000ab\\u0009c\\u000d", id="line-breaks"),
            pytest.param("\U000e0041", "\\udb40\\udc41", id="astral-format-char"),
        ],
    )
    def test_escape_control(self, text: str, expected: str) -> None:
        """Every non-printable character becomes a visible JSON-style escape."""
        assert escape_control(text) == expected

    def test_escaped_json_line_keeps_its_value(self) -> None:
        """An escaped JSON line parses to the same event: escaping loses nothing."""
        line = orjson.dumps(event(1, request={"user_agent": HOSTILE_AGENT + "\U000e0041"}))
        safe = escape_bytes(line)
        assert_no_control(safe)
        assert orjson.loads(safe) == orjson.loads(line)

    def test_invalid_utf8_is_shown_not_sent(self) -> None:
        """Bytes that are not UTF-8 (a raw 8-bit CSI) become ``\\xNN``."""
        assert escape_bytes(b"a\x9b2Jb\xff") == b"a\\x9b2Jb\\xff"


def hostile_log(tmp_path: Path, keys: Path) -> Path:
    """A signed log whose events carry terminal escapes, plus one raw malformed line."""
    path = write_log(
        tmp_path / "audit.jsonl",
        keys,
        [event(n, actor={"id": f"evil\x1b[2J\u009b6n{n}", "type": "user"}) for n in range(3)],
    )
    with path.open("ab") as handle:
        handle.write(b"garbage \x1b]0;title\x07 \x9b6n\n")
    return path


def run_on_terminal(argv: list[str]) -> bytes:
    """Run ``python -m auditmw ARGV`` with stdout and stderr on a real pseudo-terminal."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "200"}
    with subprocess.Popen(
        [sys.executable, "-m", "auditmw", *argv],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    ) as proc:
        os.close(secondary)
        chunks = []
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, "no output within 60 s"
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks)


class TestOnATerminal:
    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param(["cat"], id="cat"),
            pytest.param(["query", "--format", "jsonl"], id="query-jsonl"),
            pytest.param(["query", "--format", "table"], id="query-table"),
            pytest.param(["query", "--format", "csv"], id="query-csv"),
        ],
    )
    def test_reading_commands_escape(self, tmp_path: Path, keys: Path, extra: list[str]) -> None:
        """cat and query on a terminal show escapes as text and send no control bytes."""
        log = hostile_log(tmp_path, keys)
        command, *options = extra
        out = run_on_terminal([command, str(log), *options])
        assert_no_control(out)
        assert b"evil\\u001b[2J" in out

    def test_audit_ready_details_escaped(self, tmp_path: Path, keys: Path) -> None:
        """audit-ready prints details quoting log content without its control bytes."""
        log = write_log(
            tmp_path / "audit.jsonl",
            keys,
            [event(n, event_id=f"bad\x1b]0;x\x07{n}") for n in range(3)],
        )
        out = run_on_terminal(["audit-ready", str(log), *key_args(keys)])
        assert_no_control(out)
        assert b"bad\\u001b]0;x\\u0007" in out


class TestNotATerminal:
    def test_cat_to_a_pipe_is_byte_exact(
        self, tmp_path: Path, keys: Path, capfdbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        """Piped output keeps the stored bytes: escaping is for terminals only."""
        log = hostile_log(tmp_path, keys)
        assert main(["cat", str(log)]) == 0
        assert capfdbinary.readouterr().out == log.read_bytes()

    def test_audit_ready_always_escapes_text(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Human-readable lines are escaped wherever they go."""
        log = write_log(
            tmp_path / "audit.jsonl", keys, [event(n, event_id=f"bad\x1b[2J{n}") for n in range(3)]
        )
        main(["audit-ready", str(log), *key_args(keys)])
        out = capsys.readouterr().out
        assert "\x1b" not in out
        assert "bad\\u001b[2J" in out

    def test_error_messages_escaped(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file name with escapes in an error message is escaped too."""
        assert main(["query", str(tmp_path / "x\x1b[2J.jsonl")]) == 2
        err = capsys.readouterr().err
        assert "\x1b" not in err
        assert "x\\u001b[2J.jsonl" in err


def test_audit_ready_json_on_a_terminal(tmp_path: Path, keys: Path) -> None:
    """--json on a terminal escapes what JSON leaves raw (the 8-bit CSI) and stays JSON."""
    log = write_log(
        tmp_path / "audit.jsonl", keys, [event(n, event_id=f"bad\u009b6n{n}") for n in range(3)]
    )
    out = run_on_terminal(["audit-ready", str(log), "--json", *key_args(keys)])
    assert_no_control(out)
    # stderr shares the terminal: skip the progress bar drawn before the document.
    text = out.replace(b"\r\n", b"\n")
    document = orjson.loads(text[text.index(b"\n{") :])
    assert "bad\u009b6n" in document["checks"][1]["detail"], document
