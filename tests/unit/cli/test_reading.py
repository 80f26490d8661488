"""Every reading command reads every log: encrypted ones with --keyring; filters are checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from auditmw.cli import main
from auditmw.crypto import Keyring
from auditmw.evidence.query import EventFilter
from auditmw.exceptions import ConfigurationError
from tests.unit.cli.conftest import event, key_args, write_log

READERS = [
    pytest.param("query", [], id="query"),
    pytest.param("report", ["-o", "{tmp}/r.html"], id="report"),
    pytest.param("audit-ready", [], id="audit-ready"),
    pytest.param("cat", [], id="cat"),
]


@pytest.fixture
def encrypted(tmp_path: Path, keys: Path, keyring_file: Path) -> Path:
    """A signed log, encrypted with the keyring's key ``kek-1``."""
    keyring = Keyring.from_file(keyring_file)
    return write_log(tmp_path / "audit.jsonl", keys, [event(n) for n in range(12)], keyring=keyring)


@dataclass(frozen=True)
class Setup:
    """An encrypted log and what reading it takes."""

    tmp_path: Path
    keys: Path
    log: Path
    keyring: Path

    def argv(self, command: str, extra: list[str]) -> list[str]:
        """The command line for ``command`` on the log."""
        options = [a.replace("{tmp}", str(self.tmp_path)) for a in extra]
        if command in ("report", "audit-ready"):
            options += key_args(self.keys)
        return [command, str(self.log), *options]


@pytest.fixture
def setup(tmp_path: Path, keys: Path, encrypted: Path, keyring_file: Path) -> Setup:
    """The encrypted log with its keys and keyring."""
    return Setup(tmp_path, keys, encrypted, keyring_file)


@pytest.mark.parametrize(("command", "extra"), READERS)
class TestEncryptedLogs:
    def test_without_keyring_exit_2(
        self, setup: Setup, command: str, extra: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An encrypted log without --keyring: exit 2, a message naming the key id and flag."""
        assert main(setup.argv(command, extra)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"auditmw {command}: error: "), err
        assert "'kek-1'" in err
        assert "--keyring" in err
        assert "Traceback" not in err

    def test_wrong_keyring_exit_2(
        self, setup: Setup, command: str, extra: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A keyring without the file's key id: exit 2, naming the missing key id."""
        other = setup.tmp_path / "other.json"
        Keyring.generate("kek-2").save(other)
        assert main([*setup.argv(command, extra), "--keyring", str(other)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"auditmw {command}: error: "), err
        assert "'kek-1' is not in the keyring" in err

    def test_with_keyring_reads_everything(
        self, setup: Setup, command: str, extra: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the right keyring the command reads and verifies the log like a plain one."""
        assert main([*setup.argv(command, extra), "--keyring", str(setup.keyring)]) in (0, 1)
        out = capsys.readouterr()
        assert "error" not in out.err
        if command == "query":
            assert out.out.count("orders.read") == 12
        elif command == "cat":
            assert out.out.count('"kind":"http"') == 12
        elif command == "report":
            assert "VERIFIED" in out.out
            assert "TAMPER" not in out.out
        else:
            assert "PASS  integrity" in out.out


class TestFilterValues:
    @pytest.mark.parametrize(
        ("option", "value"),
        [
            pytest.param("--outcome", "deny", id="outcome"),
            pytest.param("--operation", "write", id="operation"),
            pytest.param("--severity", "critical", id="severity"),
            pytest.param("--status", "45", id="status-short"),
            pytest.param("--status", "600", id="status-high"),
            pytest.param("--status", "6xx", id="status-class"),
            pytest.param("--status", "abc", id="status-word"),
            pytest.param("--kind", "htp", id="kind"),
            pytest.param("--since", "soon", id="since"),
            pytest.param("--until", "2026-13-45", id="until"),
        ],
    )
    def test_invalid_value_is_a_usage_error(
        self, tmp_path: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A value no event can carry exits 2 naming the option, instead of matching nothing."""
        log = tmp_path / "a.jsonl"
        log.write_bytes(orjson.dumps(event(1)) + b"\n")
        assert main(["query", str(log), option, value]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("auditmw query: error: "), err
        assert option in err
        assert repr(value) in err

    @pytest.mark.parametrize(
        ("option", "value", "matches"),
        [
            pytest.param("--outcome", "success", True, id="outcome"),
            pytest.param("--severity", "info", True, id="severity"),
            pytest.param("--severity", "high", False, id="severity-other"),
            pytest.param("--status", "2xx", True, id="status-class"),
            pytest.param("--status", "2XX", True, id="status-class-upper"),
            pytest.param("--status", "404", False, id="status-code"),
            pytest.param("--kind", "audit.*", False, id="kind-pattern"),
            pytest.param("--operation", "read", True, id="operation"),
        ],
    )
    def test_valid_values(self, tmp_path: Path, option: str, value: str, matches: bool) -> None:
        """Valid values filter as before (exit 0 on a match, 1 on none)."""
        log = tmp_path / "a.jsonl"
        log.write_bytes(orjson.dumps(event(1)) + b"\n")
        assert main(["query", str(log), option, value]) == (0 if matches else 1)

    @pytest.mark.parametrize(
        "criteria",
        [
            pytest.param({"outcome": "deny"}, id="outcome"),
            pytest.param({"status": "45"}, id="status"),
            pytest.param({"kind": "nope"}, id="kind"),
            pytest.param({"severity": "urgent"}, id="severity"),
            pytest.param({"operation": "write"}, id="operation"),
        ],
    )
    def test_event_filter_refuses_impossible_values(self, criteria: dict[str, str]) -> None:
        """The library filter refuses the same values, naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            EventFilter(**criteria)  # type: ignore[arg-type]
        assert info.value.setting == next(iter(criteria))


class TestMalformed:
    def test_skipped_lines_counted_on_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """query says how many malformed records it skipped, and where the first one is."""
        log = tmp_path / "a.jsonl"
        good = orjson.dumps(event(1))
        log.write_bytes(b"\n".join([good, b"{not json", good, b"[1, 2]", b'"text"', b""]))
        assert main(["query", str(log), "--format", "jsonl"]) == 0
        out, err = capsys.readouterr()
        assert out.count("orders.read") == 2
        assert err.startswith("auditmw query: warning: skipped 3 malformed record(s)"), err
        assert f"{log}:2" in err

    def test_clean_log_says_nothing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No warning when nothing was skipped."""
        log = tmp_path / "a.jsonl"
        log.write_bytes(orjson.dumps(event(1)) + b"\n")
        assert main(["query", str(log)]) == 0
        assert capsys.readouterr().err == ""


def test_follow_refuses_encrypted_file(
    encrypted: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--follow cannot decrypt appended lines: it says so (exit 2) instead of skipping them."""
    args = ["query", str(encrypted), "--keyring", str(keyring_file), "--follow"]
    assert main([*args, "--follow-seconds", "600"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("auditmw query: error: --follow cannot read the encrypted file")
