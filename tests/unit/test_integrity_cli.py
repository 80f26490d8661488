"""The ``auditmw verify`` and ``auditmw keygen`` commands."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.cli import main
from auditmw.integrity import IntegrityOptions

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out), "--registry", str(out / "registry.json")]) == 0
    assert main(["keygen", "--out", str(out), "--mac"]) == 0
    return out


def write_log(tmp_path: Path, keys: Path, count: int = 30) -> Path:
    options = IntegrityOptions(
        signing_key_file=str(keys / "auditmw.key"),
        mac_key_file=str(keys / "auditmw.mac"),
        checkpoint_every=10,
    )
    encoder = options.encoder_for("auditmw", "app")
    path = tmp_path / "audit.jsonl"
    with path.open("wb") as handle:
        handle.write(encoder.encode([{"kind": "http", "n": i} for i in range(count)]).payload())
        handle.write((encoder.finish() or encoder.encode([])).payload())
    return path


def verify_args(path: Path, keys: Path, *extra: str) -> list[str]:
    return [
        "verify",
        str(path),
        "--keys",
        str(keys / "registry.json"),
        "--mac-key-file",
        str(keys / "auditmw.mac"),
        *extra,
    ]


class TestKeygen:
    def test_writes_private_key_0600_and_registry(self, keys: Path) -> None:
        """keygen writes a 0600 private key, a public key and a registry entry."""
        assert stat.S_IMODE((keys / "auditmw.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((keys / "auditmw.mac").stat().st_mode) == 0o600
        registry = json.loads((keys / "registry.json").read_text())
        assert registry["keys"][0]["key_id"].startswith("ed25519:")
        assert (keys / "auditmw.pub").read_text().startswith("-----BEGIN PUBLIC KEY")

    def test_refuses_to_overwrite(self, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An existing key is never overwritten without --force."""
        before = (keys / "auditmw.key").read_bytes()
        assert main(["keygen", "--out", str(keys)]) == 2
        assert "--force" in capsys.readouterr().err
        assert (keys / "auditmw.key").read_bytes() == before


class TestVerify:
    def test_clean_log_exits_0(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clean log prints CLEAN and exits 0."""
        path = write_log(tmp_path, keys)
        assert main(verify_args(path, keys)) == 0
        out = capsys.readouterr().out
        assert "CLEAN" in out
        assert "events=30" in out

    def test_tampered_log_exits_1_with_json(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A modified event exits 1; --json reports its code, file and line."""
        path = write_log(tmp_path, keys)
        lines = path.read_bytes().splitlines()
        lines[3] = lines[3].replace(b'"n":2', b'"n":7')
        path.write_bytes(b"\n".join(lines) + b"\n")
        assert main(verify_args(path, keys, "--json")) == 1
        report = orjson.loads(capsys.readouterr().out)
        assert report["clean"] is False
        assert [(f["code"], f["line"], f["seq"]) for f in report["findings"]] == [
            ("modified_event", 4, 3)
        ]

    def test_expected_head_detects_rollback(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--expected-head from an earlier report catches a rolled-back log."""
        path = write_log(tmp_path, keys)
        main(verify_args(path, keys, "--json"))
        head = orjson.loads(capsys.readouterr().out)["chains"][0]["head"]
        lines = path.read_bytes().splitlines()
        path.write_bytes(b"\n".join(lines[:12]) + b"\n")
        assert main(verify_args(path, keys, "--json", "--expected-head", head)) == 1
        codes = [f["code"] for f in orjson.loads(capsys.readouterr().out)["findings"]]
        assert "rollback" in codes

    def test_progress_goes_to_stderr(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--progress draws a bar on stderr, never on stdout."""
        path = write_log(tmp_path, keys)
        assert main(verify_args(path, keys, "--progress")) == 0
        captured = capsys.readouterr()
        assert "100%" in captured.err
        assert "100%" not in captured.out

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["verify", "/nonexistent/audit.jsonl"], id="missing-file"),
            pytest.param(["verify", "{log}", "--keys", "/nonexistent/keys.json"], id="no-registry"),
            pytest.param(["verify", "{log}", "--expected-head", "garbage"], id="bad-head"),
            pytest.param(["verify", "{log}", "--as-of", "yesterday"], id="bad-time"),
        ],
    )
    def test_usage_and_io_errors_exit_2(
        self, tmp_path: Path, keys: Path, args: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Unreadable inputs and bad options exit 2 with a message naming the problem."""
        path = write_log(tmp_path, keys)
        assert main([a.replace("{log}", str(path)) for a in args]) == 2
        assert "auditmw verify:" in capsys.readouterr().err
