"""The benchmark suite runs from one command and writes its table and JSON (no timing asserted)."""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from benchmarks._components import SCRIPTS

ROOT = Path(__file__).resolve().parents[2]


def run_suite(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), *args]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def asgi_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("results")
    done = run_suite(out, "--only", "asgi", "--n", "20", "--rounds", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def variants(out: Path, group: str) -> dict[str, Any]:
    payload = orjson.loads((out / "results.json").read_bytes())
    result: dict[str, Any] = payload["sections"]["asgi"][group]["variants"]
    return result


class TestSuiteSmoke:
    def test_markdown_table_lists_every_variant(self, asgi_run: tuple[Path, str]) -> None:
        """results.md holds the ASGI table with the bare app, the alternatives and auditmw."""
        out, _ = asgi_run
        text = (out / "results.md").read_text(encoding="utf-8")
        assert "## In-process ASGI (Starlette)" in text
        assert "- command: `python -m benchmarks --quick" in text
        for name in ("| bare |", "| asgi-correlation-id |", "| no-op BaseHTTPMiddleware |"):
            assert name in text
        assert "| auditmw (metadata, JWT cached, chain, file) |" in text
        assert "| naive audit (hand-written JSON line, JWT cached) |" in text
        assert "Event builder per auditmw variant:" in text

    @pytest.mark.parametrize("group", ["get", "post"])
    def test_ratios_are_finite_numbers(self, asgi_run: tuple[Path, str], group: str) -> None:
        """Every variant's ratio is a positive finite number; the baseline's is exactly 1."""
        out, _ = asgi_run
        found = variants(out, group)
        assert len(found) >= 3
        for name, figures in found.items():
            for key in ("ratio", "ratio_min", "ratio_max", "cpu_ratio", "best_ratio", "median_ns"):
                value = figures[key]
                assert isinstance(value, float), (name, key, value)
                assert math.isfinite(value), (name, key, value)
                assert value > 0, (name, key, value)
            assert figures["ratio_min"] <= figures["ratio"] <= figures["ratio_max"]
        baseline = next(iter(found.values()))
        assert baseline["ratio"] == 1.0

    def test_json_records_environment(self, asgi_run: tuple[Path, str]) -> None:
        """The JSON names the command, the date, the load and the package versions."""
        out, _ = asgi_run
        env = orjson.loads((out / "results.json").read_bytes())["environment"]
        assert env["command"].startswith("python -m benchmarks --quick")
        assert "starlette" in env["versions"]
        assert "auditmw" in env["versions"]
        assert len(env["load_average"]) == 3

    def test_table_is_printed(self, asgi_run: tuple[Path, str]) -> None:
        """The run prints the same table to stdout and says where the files went."""
        out, stdout = asgi_run
        assert "| bare |" in stdout
        assert f"written: {out / 'results.md'}" in stdout

    def test_unknown_part_is_refused(self, tmp_path: Path) -> None:
        """--only names the valid parts when given an unknown one."""
        done = run_suite(tmp_path, "--only", "asgi,nope")
        assert done.returncode == 2
        assert "unknown part(s) nope" in done.stderr
        assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_quick_overrides_name_real_constants(script: str) -> None:
    """Every quick-mode override of a component script (bench_flat too) names one of its
    module-level int constants, so quick mode really shrinks it."""
    module = importlib.import_module(f"benchmarks.{script}")
    for name in SCRIPTS[script][1]:
        assert isinstance(getattr(module, name, None), int), (script, name)


class TestBeforeAfter:
    def test_compares_two_checkouts_in_alternating_processes(self) -> None:
        """``benchmarks.ab`` runs both codes and prints each one's median ratio to bare."""
        command = [sys.executable, "-m", "benchmarks.ab", "--base", str(ROOT / "src")]
        command += ["--pairs", "1", "--n", "20", "--rounds", "2"]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        summary = [line for line in done.stdout.splitlines() if " median " in line]
        assert [line.split()[0] for line in summary] == ["base", "this"]
        for line in summary:
            ratio = float(line.split("median ")[1].split("x")[0])
            assert math.isfinite(ratio)
            assert ratio > 0

    def test_a_base_without_auditmw_is_refused_with_the_reason(self, tmp_path: Path) -> None:
        command = [sys.executable, "-m", "benchmarks.ab", "--base", str(tmp_path)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 2
        assert f"--base {tmp_path}: no auditmw package there" in done.stderr


class TestProfileTools:
    def test_split_reports_every_stage(self) -> None:
        """``profile_asgi --split`` measures the shell, the build and both threads."""
        command = [sys.executable, "-m", "benchmarks.profile_asgi", "--split"]
        command += ["--n", "30", "--rounds", "1"]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        for stage in ("ASGI shell only", "event built, not queued", "delivery thread", "emit"):
            assert stage in done.stdout


class TestCallgrind:
    """The instruction-count benchmark's children serve every variant; its table is ratios."""

    @pytest.mark.parametrize("variant", ["bare", "target", "flask-bare", "flask-target"])
    def test_child_serves_variant(self, variant: str) -> None:
        """Each variant runs its warm-up and counted requests (here without valgrind)."""
        command = [sys.executable, "-m", "benchmarks.callgrind", "--child", variant, "--n", "5"]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def test_table_ratios_against_bare_of_kind(self) -> None:
        """ASGI rows compare with ``bare``, Flask rows with ``flask-bare``."""
        from benchmarks.callgrind import table

        rendered = table({"bare": 100.0, "target": 300.0, "flask-bare": 200.0, "flask-t": 500.0})
        assert "| target | 0.3k | 3.00 |" in rendered
        assert "| flask-t | 0.5k | 2.50 |" in rendered
