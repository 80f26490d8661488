"""A real audit log for the evidence tests: the quick start drives the demo app under
uvicorn (real requests, chained, MAC'd and signed), once per session."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class DemoLog:
    """The demo log, its tampered copy and the verification keys."""

    log: Path
    tampered: Path
    keys: Path

    @property
    def key_args(self) -> list[str]:
        """``--keys`` and ``--mac-key-file`` for the CLI."""
        return [
            "--keys",
            str(self.keys / "auditmw.pub"),
            "--mac-key-file",
            str(self.keys / "auditmw.mac"),
        ]


@pytest.fixture(scope="session")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> DemoLog:
    """Run examples/quickstart.py in a subprocess and return what it wrote."""
    out = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return DemoLog(out, out.with_name("demo.tampered.jsonl"), out.parent / "keys")


def write_policy(path: Path, *, retention_days: int | None) -> Path:
    """Write a minimal valid policy with a file sink and an optional retention."""
    text = 'version = 1\nid = "evidence-test"\n\n[[sinks]]\ntype = "file"\npath = "audit.jsonl"\n'
    if retention_days is not None:
        text += f"\n[retention]\nmax_age_days = {retention_days}\n"
    path.write_text(text)
    return path
