"""Shared benchmark machinery: interleaved rounds, medians, ratios, environment report."""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

#: One timed round: runs ``n`` operations, returns elapsed nanoseconds.
Round = Callable[[int], int]


@dataclass
class Result:
    """Per-operation times of one variant, one value per round."""

    name: str
    per_op_ns: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_op_ns)


def interleave(
    variants: dict[str, Round], *, n: int, rounds: int, warmup: int = 1
) -> dict[str, Result]:
    """Run every variant once per round, in rotating order (ABC, BCA, ...), after warm-up."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name](n)
    results = {name: Result(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            elapsed = variants[name](n)
            results[name].per_op_ns.append(elapsed / n)
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
