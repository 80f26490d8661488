"""Shared benchmark machinery: interleaved rounds, medians, ratios, environment report.

Every figure the suite publishes is a ratio measured within one run: machines are
shared and noisy, so absolute times are reported for orientation only.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

#: One timed round: runs ``n`` operations, returns elapsed nanoseconds.
Round = Callable[[int], int]


@dataclass
class Result:
    """Per-operation times of one variant, one value per round."""

    name: str
    per_op_ns: list[float] = field(default_factory=list)
    #: Process CPU time (all threads, so the delivery thread too) per operation.
    cpu_per_op_ns: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_op_ns)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_per_op_ns)

    @property
    def best(self) -> float:
        """The fastest round: noise on a shared machine only ever adds time."""
        return min(self.per_op_ns)


def interleave(
    variants: dict[str, Round], *, n: int, rounds: int, warmup: int = 1, slices: int = 1
) -> dict[str, Result]:
    """Run every variant once per round, in rotating order (ABC, BCA, ...), after warm-up.

    With ``slices > 1`` each round runs every variant ``slices`` times on ``n // slices``
    operations, alternating (ABCABC...), so that the variants compared within a round
    ran within milliseconds of each other and share the machine's state.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name](n)
    results = {name: Result(name) for name in names}
    part = max(1, n // slices)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        wall = dict.fromkeys(names, 0)
        cpu = dict.fromkeys(names, 0)
        for _ in range(slices):
            for name in order:
                started = time.process_time_ns()
                wall[name] += variants[name](part)
                cpu[name] += time.process_time_ns() - started
        for name in names:
            results[name].per_op_ns.append(wall[name] / (part * slices))
            results[name].cpu_per_op_ns.append(cpu[name] / (part * slices))
    return results


def ratios(results: dict[str, Result], baseline: str) -> dict[str, tuple[float, float, float]]:
    """Median, min and max of the per-round ratio to ``baseline`` (same round)."""
    base = results[baseline].per_op_ns
    out = {}
    for name, result in results.items():
        per_round = [value / b for value, b in zip(result.per_op_ns, base, strict=True)]
        out[name] = (statistics.median(per_round), min(per_round), max(per_round))
    return out


def versions(*packages: str) -> str:
    """A one-line description of the interpreter and package versions."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"Python {sys.version.split()[0]} on {platform.machine()}; " + ", ".join(found)


def table(results: dict[str, Result], baseline: str) -> str:
    """A Markdown table of medians and ratios."""
    rows = [
        "| variant | µs/request (median) | ratio to bare (median, min-max) |",
        "|---|---:|---:|",
    ]
    for name, (median, low, high) in ratios(results, baseline).items():
        rows.append(
            f"| {name} | {results[name].median / 1000:.2f} | {median:.3f} ({low:.3f}-{high:.3f}) |"
        )
    return "\n".join(rows)


def timer() -> int:
    return time.perf_counter_ns()


def cpu_ratios(results: dict[str, Result], baseline: str) -> dict[str, tuple[float, float, float]]:
    """Like :func:`ratios`, for process CPU time per operation."""
    base = results[baseline].cpu_per_op_ns
    out = {}
    for name, result in results.items():
        per_round = [value / b for value, b in zip(result.cpu_per_op_ns, base, strict=True) if b]
        out[name] = (statistics.median(per_round), min(per_round), max(per_round))
    return out


def full_table(results: dict[str, Result], baseline: str, unit: str = "request") -> str:
    """A Markdown table of wall and CPU medians per operation, with per-round ratios."""
    wall, cpu = ratios(results, baseline), cpu_ratios(results, baseline)
    rows = [
        f"| variant | µs/{unit} | x {baseline} (median, min-max) | x {baseline}, best rounds "
        f"| CPU µs/{unit} | CPU x {baseline} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        median, low, high = wall[name]
        rows.append(
            f"| {name} | {result.median / 1000:.2f} | **{median:.2f}** ({low:.2f}-{high:.2f}) "
            f"| {result.best / results[baseline].best:.2f} "
            f"| {result.cpu_median / 1000:.2f} | {cpu[name][0]:.2f} |"
        )
    return "\n".join(rows)


def results_data(results: dict[str, Result], baseline: str) -> dict[str, Any]:
    """The JSON form of one interleaved comparison."""
    wall, cpu = ratios(results, baseline), cpu_ratios(results, baseline)
    return {
        "baseline": baseline,
        "variants": {
            name: {
                "median_ns": result.median,
                "cpu_median_ns": result.cpu_median,
                "ratio": wall[name][0],
                "ratio_min": wall[name][1],
                "ratio_max": wall[name][2],
                "cpu_ratio": cpu[name][0],
                "best_ns": result.best,
                "best_ratio": result.best / results[baseline].best,
                "per_op_ns": result.per_op_ns,
            }
            for name, result in results.items()
        },
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Section:
    """One part of the suite's report: a Markdown body and its data."""

    key: str
    title: str
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        notes = "".join(f"\n- {note}" for note in self.notes)
        return f"## {self.title}\n\n{self.markdown}\n{notes}\n".rstrip() + "\n"


PACKAGES = (
    "auditmw", "starlette", "fastapi", "uvicorn", "flask", "werkzeug", "orjson", "pyjwt",
    "cryptography", "asgi-correlation-id", "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi", "opentelemetry-instrumentation-wsgi", "httpx",
)  # fmt: skip


def environment(command: str) -> dict[str, Any]:
    """Date, machine load, interpreter and package versions of this run."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in load],
        "platform": platform.platform(),
        "versions": versions(*PACKAGES),
    }


def write_results(out: Path, env: dict[str, Any], sections: list[Section]) -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.json`` into ``out``; return both paths."""
    out.mkdir(parents=True, exist_ok=True)
    header = (
        "# auditmw benchmark results\n\n"
        f"- date: {env['date']}\n- command: `{env['command']}`\n"
        f"- machine: {env['cpus']} CPUs, load average {env['load_average']} at start, "
        f"{env['platform']}\n- {env['versions']}\n\n"
        "Ratios are per round (same round, same machine state), median and min-max; "
        "absolute times are for orientation only.\n\n"
    )
    md = out / "results.md"
    md.write_text(header + "\n".join(section.render() for section in sections), encoding="utf-8")
    payload = {
        "environment": env,
        "sections": {s.key: {"title": s.title, "notes": s.notes, **s.data} for s in sections},
    }
    js = out / "results.json"
    js.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return md, js
