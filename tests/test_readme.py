"""The README's quick start and CI agree, and every example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


class TestQuickStart:
    def test_exactly_two_commands(self) -> None:
        """The quick start has exactly two single-line commands: demo, then tests."""
        commands = quick_start_commands()
        assert len(commands) == 2
        assert all("\n" not in c for c in commands)
        assert "examples/quickstart.py" in commands[0]
        assert "pytest" in commands[1]

    def test_ci_runs_the_readme_test_command(self) -> None:
        """.ci/run runs the README's test command verbatim."""
        ci = (ROOT / ".ci" / "run").read_text().splitlines()
        assert quick_start_commands()[1] in ci


@pytest.mark.e2e
class TestExamples:
    def test_quickstart_runs(self, tmp_path: Path) -> None:
        """examples/quickstart.py runs the demo and writes the expected events."""
        out = tmp_path / "demo.jsonl"
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        kinds = [e["kind"] for e in events if e["kind"] != "audit.checkpoint"]
        assert kinds[0] == "audit.started"
        assert kinds[-1] == "audit.stopped"
        outcomes = sorted(e["outcome"] for e in events if e["kind"] == "http")
        assert outcomes == ["denied", "error", "failure", "success", "success", "success"]
        assert "orders.update" in result.stdout
        # The log verifies clean, and the tampered copy is caught.
        assert "CLEAN: 0 tamper" in result.stdout
        assert "TAMPER       modified_event" in result.stdout
        assert all("integrity" in e for e in events if e["kind"] != "audit.checkpoint")


class TestReadmeCode:
    def test_python_blocks_parse(self) -> None:
        """Every Python block in the README is valid Python (the docs/ pages run theirs)."""
        import ast

        text = (ROOT / "README.md").read_text()
        blocks = re.findall(r"```python\n(.*?)```", text, re.S)
        assert len(blocks) >= 8
        for block in blocks:
            ast.parse(block)

    def test_policy_block_loads(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The README's policy example is a valid policy document."""
        from auditmw import AuditConfig

        text = (ROOT / "README.md").read_text()
        toml = re.findall(r"```toml\n(.*?)```", text, re.S)[0]
        monkeypatch.chdir(tmp_path)  # its file sink writes audit.jsonl here
        (tmp_path / "policy.toml").write_text(toml)
        config = AuditConfig.from_policy(tmp_path / "policy.toml")
        assert config.service_info.name == "orders-api"
