"""The per-topic benchmark scripts, run as subprocesses and collected into one report section.

Each script stays runnable on its own (``python -m benchmarks.bench_<topic>``); in
quick mode the suite shrinks their module-level sizes (rounds, events) before calling
their ``main()``, so the same code runs, only shorter.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import Section

#: script -> (what it measures, module constants overridden in quick mode)
SCRIPTS: dict[str, tuple[str, dict[str, int]]] = {
    "bench_formats": (
        "canonical serialization and each exporter, per event",
        {"ROUNDS": 5, "EVENTS_PER_ROUND": 1000},
    ),
    "bench_integrity": (
        "chaining cost; `auditmw verify` vs plain orjson parsing",
        {"EVENTS": 10_000, "ENCODED": 5_000, "ROUNDS": 3},
    ),
    "bench_policy": ("policy matching at 1/10/100/1000 rules", {}),
    "bench_identity": ("identity: JWT cache hit vs miss, API keys", {"ROUNDS": 5}),
    "bench_sinks": (
        "sink events/s; durable group commit at 1/16/64 clients",
        {"EVENTS": 2_000, "ROUNDS": 1},
    ),
    "bench_flat": (
        "flatness: cost over uptime and log size; memory bounded with the sink down",
        {
            "UPTIME_REQUESTS": 20_000,
            "SLICES": 10,
            "DOWN_REQUESTS": 20_000,
            "LOG_EVENTS": 40_000,
            "LOG_CHUNK": 5_000,
            "LOG_ROUNDS": 3,
            "VERIFY_EVENTS": 8_000,
        },
    ),
}
TIMEOUT = 300


def available() -> list[str]:
    """The scripts present in this checkout (``bench_sinks`` lands with the sinks branch)."""
    return [name for name in SCRIPTS if importlib.util.find_spec(f"benchmarks.{name}")]


def run_script(name: str, *, quick: bool) -> tuple[str, float, int]:
    """Run one script; return its output, its duration and its exit status."""
    overrides = SCRIPTS[name][1] if quick else {}
    code = f"import benchmarks.{name} as m\n"
    code += "".join(f"m.{key} = {value!r}\n" for key, value in overrides.items())
    code += "m.main()\n"
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT} s", time.perf_counter() - start, -1
    output = done.stdout if done.returncode == 0 else done.stdout + done.stderr[-2000:]
    return output.strip(), time.perf_counter() - start, done.returncode


def run(*, quick: bool) -> Section:
    """Run every available script and return their outputs as one section."""
    parts, data = [], {}
    for name in available():
        output, seconds, status = run_script(name, quick=quick)
        about, overrides = SCRIPTS[name]
        shrunk = f"; quick mode: {overrides}" if quick and overrides else ""
        state = "" if status == 0 else f" — FAILED (exit {status})"
        parts.append(
            f"### {about}\n\n`python -m benchmarks.{name}` ({seconds:.0f} s{shrunk}){state}\n\n"
            f"```\n{output}\n```\n"
        )
        data[name] = {"output": output, "seconds": seconds, "status": status, "quick": quick}
    section = Section("components", "Components", "\n".join(parts))
    section.data = {"scripts": data}
    missing = [name for name in SCRIPTS if name not in data]
    if missing:
        section.notes.append(f"not in this checkout: {', '.join(missing)}")
    return section
