"""The HTML report rendered by a real headless Chromium: chart drawn, verdict visible,
no console errors; screenshots kept as artifacts (``AUDITMW_ARTIFACTS``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from auditmw.cli import main
from tests._browser import chromium

if TYPE_CHECKING:
    from pathlib import Path

    from tests.evidence.conftest import DemoLog

pytestmark = pytest.mark.e2e


@dataclass
class Rendered:
    """What the browser made of the page."""

    dom: str
    log: str
    screenshot: Path


def _render(html: Path, tmp_path: Path, name: str) -> Rendered:
    browser = chromium()
    common = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
    ]  # fmt: skip
    shot = tmp_path / f"{name}.png"
    taken = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile-shot'}", f"--screenshot={shot}",
         html.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    dumped = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    artifacts = os.environ.get("AUDITMW_ARTIFACTS")
    if artifacts:
        os.makedirs(artifacts, exist_ok=True)
        shutil.copy(shot, os.path.join(artifacts, shot.name))
    return Rendered(dumped.stdout, taken.stderr + dumped.stderr, shot)


def _no_console_errors(log: str) -> None:
    assert "Uncaught" not in log
    assert "ERROR:CONSOLE" not in log
    assert not re.search(r"CONSOLE\(\d+\)", log)


class TestReportInChromium:
    def test_verified_report(self, demo_log: DemoLog, tmp_path: Path) -> None:
        """The verified report renders its banner, the chart's bars and tables, cleanly."""
        html = tmp_path / "report.html"
        assert main(["report", str(demo_log.log), "-o", str(html), *demo_log.key_args]) == 0
        page = _render(html, tmp_path, "report-verified")
        assert re.search(
            r'<div class="banner good"[^>]*>\s*<div class="title">VERIFIED</div>', page.dom
        )
        assert re.search(r'<svg id="activity-chart"', page.dom)
        assert len(re.findall(r'<rect class="bar"', page.dom)) >= 1
        assert "mallory" in page.dom
        _no_console_errors(page.log)

    def test_tampered_report(self, demo_log: DemoLog, tmp_path: Path) -> None:
        """The tampered log's report shows the red TAMPERING DETECTED banner and the finding."""
        html = tmp_path / "tampered.html"
        args = ["report", str(demo_log.tampered), "-o", str(html), *demo_log.key_args]
        assert main(args) == 1
        page = _render(html, tmp_path, "report-tampered")
        assert re.search(
            r'<div class="banner bad"[^>]*>\s*<div class="title">TAMPERING DETECTED</div>', page.dom
        )
        assert "modified_event" in page.dom
        _no_console_errors(page.log)
