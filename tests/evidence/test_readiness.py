"""Tests for ``auditmw audit-ready`` and :mod:`auditmw.evidence.readiness`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.cli import main
from tests.evidence.conftest import write_policy

if TYPE_CHECKING:
    from pathlib import Path

    from tests.evidence.conftest import DemoLog


def _ready(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, bool]]:
    code = main(["audit-ready", *args, "--json"])
    data = orjson.loads(capsys.readouterr().out)
    return code, {c["name"]: c["passed"] for c in data["checks"]}


class TestAuditReady:
    def test_demo_log_is_ready(
        self, demo_log: DemoLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo log with its keys, a 400-day policy and a 30% bar passes every check."""
        policy = write_policy(tmp_path / "p.toml", retention_days=400)
        code, checks = _ready(
            capsys, str(demo_log.log), *demo_log.key_args, "--policy", str(policy),
            "--min-traceability", "0.3",
        )  # fmt: skip
        assert checks == dict.fromkeys(
            ["completeness", "consistency", "integrity", "traceability", "retention"], True
        )
        assert code == 0

    @pytest.mark.parametrize(
        ("profile", "days", "passed"),
        [
            pytest.param("pci-dss", 90, False, id="pci-90-days"),
            pytest.param("pci-dss", 365, True, id="pci-365-days"),
            pytest.param("soc2", 200, False, id="soc2-200-days"),
            pytest.param("iso27001", 30, True, id="iso-declared"),
            pytest.param("iso27001", None, False, id="iso-undeclared"),
            pytest.param("pci-dss", None, True, id="pci-no-deletion"),
        ],
    )
    def test_retention_by_profile(
        self,
        demo_log: DemoLog,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        *,
        profile: str,
        days: int | None,
        passed: bool,
    ) -> None:
        """The policy's [retention] is judged against the profile's minimum."""
        policy = write_policy(tmp_path / "p.toml", retention_days=days)
        code, checks = _ready(
            capsys, str(demo_log.log), *demo_log.key_args, "--policy", str(policy),
            "--profile", profile, "--min-traceability", "0",
        )  # fmt: skip
        assert checks["retention"] is passed
        assert code == (0 if passed else 1)

    def test_tampered_log_fails_integrity(
        self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The tampered copy fails the integrity check (and the default traceability bar)."""
        code, checks = _ready(capsys, str(demo_log.tampered), *demo_log.key_args)
        assert code == 1
        assert checks["integrity"] is False
        assert checks["traceability"] is False  # 2 of 6 requests < 50%
        assert checks["consistency"] is True

    def test_without_keys_integrity_fails(
        self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without the key registry signatures cannot be checked: integrity fails."""
        _, checks = _ready(capsys, str(demo_log.log))
        assert checks["integrity"] is False

    def test_unchained_log_missing_start_and_invalid_event(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No audit.started fails completeness; a schema violation fails consistency."""
        log = tmp_path / "plain.jsonl"
        log.write_bytes(
            orjson.dumps({"kind": "http", "action": "x", "outcome": "maybe", "actor": {}}) + b"\n"
        )
        code, checks = _ready(capsys, str(log))
        assert code == 1
        assert checks["completeness"] is False
        assert checks["consistency"] is False

    def test_human_output(self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --json one PASS/FAIL line per check and a verdict line are printed."""
        assert main(["audit-ready", str(demo_log.log), *demo_log.key_args]) == 1
        out = capsys.readouterr().out
        assert "PASS  integrity" in out
        assert "FAIL  retention" in out
        assert "NOT READY for pci-dss: 3/5 checks pass" in out

    def test_bad_threshold(self, demo_log: DemoLog, capsys: pytest.CaptureFixture[str]) -> None:
        """A share outside 0..1 is a usage error."""
        assert main(["audit-ready", str(demo_log.log), "--min-traceability", "50"]) == 2
        assert "--min-traceability" in capsys.readouterr().err
