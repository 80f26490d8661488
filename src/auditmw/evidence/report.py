"""The evidence report: one self-contained HTML file an auditor can open offline.

Trust: the banner states what :func:`auditmw.integrity.verify_files` concluded with the
keys given; everything else in the report is *read* from the same files.  Without a
key registry the log cannot be shown authentic, and the report says so ("NOT
VERIFIED") instead of claiming it.  Event values are attacker-controlled strings: the
template is rendered with autoescaping on, and nothing in it fetches from the network.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditmw import __version__
from auditmw._report import CATEGORIES
from auditmw.evidence._events import iter_events
from auditmw.evidence.summary import EvidenceSummary
from auditmw.integrity import verify_files
from auditmw.sinks.base import require

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from auditmw._keys import KeyRegistry
    from auditmw._report import Report
    from auditmw.policy import Policy

__all__ = [
    "EvidenceReport",
    "PolicyInfo",
    "ProgressBar",
    "Verdict",
    "render_report",
    "summarize",
    "verdict",
]

_BUCKETS_MIN = (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080)
_MAX_BARS = 60


def summarize(
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvidenceSummary:
    """Read every stored event of ``paths`` once and summarize it.

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    summary = EvidenceSummary()
    for event in iter_events(paths, progress=progress):
        summary.add(event)
    return summary


@dataclass(frozen=True, slots=True)
class Verdict:
    """The headline of a report: ``VERIFIED``, ``TAMPERING DETECTED`` or ``NOT VERIFIED``.

    .. versionadded:: 0.1.0
    """

    title: str
    css: str
    explanation: str
    counts: dict[str, int]


def verdict(report: Report) -> Verdict:
    """Turn a verification report into the report's headline.

    .. versionadded:: 0.1.0
    """
    counts = dict.fromkeys(CATEGORIES, 0)
    for finding in report.findings:
        counts[finding.category] += 1
    if counts["tamper"]:
        return Verdict(
            "TAMPERING DETECTED",
            "bad",
            "Stored records were changed, removed, inserted or reordered: see the findings.",
            counts,
        )
    if report.clean:
        return Verdict(
            "VERIFIED",
            "good",
            "Every hash chain, MAC and signed checkpoint checked out with the given keys.",
            counts,
        )
    return Verdict(
        "NOT VERIFIED",
        "warn",
        "No tampering was found, but the log could not be fully verified or has gaps "
        "(missing keys, dropped events, an unclean stop): see the findings.",
        counts,
    )


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """The policy in force, as given with ``--policy``.

    .. versionadded:: 0.1.0
    """

    id: str
    hash: str
    text: str
    retention_days: int | None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PolicyInfo:
        """Load and validate the policy file at ``path``.

        Raises:
            PolicyError: the document is invalid.
            ConfigurationError: the file cannot be read.
        """
        from auditmw.policy import load_policy

        policy: Policy = load_policy(path, keys=_dummy_keys(path))
        retention = policy.document.get("retention") or {}
        days = retention.get("max_age_days")
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        return cls(policy.id, policy.hash, text, int(days) if days is not None else None)


def _dummy_keys(path: str | os.PathLike[str]) -> dict[str, bytes]:
    # Redaction keys change how events are written, not the policy's hash: a reviewer
    # does not hold them, so stand in a throwaway key for the one the document names.
    from auditmw.policy import read_document

    redaction = read_document(path).get("redaction") or {}
    key_id = redaction.get("hmac_key_id")
    return {str(key_id): b"\0" * 32} if key_id else {}


def _bars(per_minute: dict[str, int]) -> dict[str, Any]:
    if not per_minute:
        return {"bars": [], "bucket": "", "max": 0}
    stamps = {}
    for key in per_minute:
        try:
            stamps[key] = datetime.fromisoformat(key + ":00+00:00")
        except ValueError:
            continue  # "2026-13-45T99:99": well-formed digits, impossible date
    if not stamps:
        return {"bars": [], "bucket": "", "max": 0}
    first, last = min(stamps.values()), max(stamps.values())
    span = int((last - first).total_seconds() // 60) + 1
    width = next((b for b in _BUCKETS_MIN if span / b <= _MAX_BARS), _BUCKETS_MIN[-1])
    start = int(first.timestamp() // 60 // width * width)
    counts: dict[int, int] = {}
    for key, count in per_minute.items():
        if key not in stamps:
            continue
        slot = (int(stamps[key].timestamp() // 60) - start) // width
        counts[slot] = counts.get(slot, 0) + count
    slots = max(counts) + 1
    top = max(counts.values())
    plot_w, plot_h, left = 860, 160, 40
    step = plot_w / max(slots, 1)
    bars = []
    for slot in range(slots):
        count = counts.get(slot, 0)
        height = round(plot_h * count / top, 1) if top else 0
        label = datetime.fromtimestamp((start + slot * width) * 60, UTC)
        bars.append(
            {
                "x": round(left + slot * step + step * 0.1, 1),
                "y": round(10 + plot_h - height, 1),
                "w": round(min(max(step * 0.8, 1), 40), 1),
                "h": height,
                "count": count,
                "label": label.strftime("%Y-%m-%d %H:%M"),
                "tick": slot in (0, slots - 1) or (slots > 4 and slot == slots // 2),
                "anchor": "start" if slot == 0 else "end" if slot == slots - 1 else "middle",
            }
        )
    bucket = f"{width} min" if width < 60 else f"{width // 60} h"
    return {"bars": bars, "bucket": bucket, "max": top}


def render_report(
    paths: Iterable[str | os.PathLike[str]],
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    policy: PolicyInfo | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvidenceReport:
    """Verify and summarize ``paths``; return the report (one HTML document) and verdict.

    Args:
        paths: JSONL files (gzipped or not) and directories.
        keys: the trusted checkpoint keys (without them the log is "NOT VERIFIED").
        mac_key: the writer's initial MAC key.
        policy: the policy in force, shown with its hash and retention.
        progress: called with (bytes read, total bytes) over both passes.

    Raises:
        MissingDependencyError: Jinja2 is not installed (``pip install 'auditmw[report]'``).
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    jinja2 = require("jinja2", extra="report", feature="auditmw report")
    files = [Path(p) for p in paths]
    started = time.perf_counter()
    halves = _halves(progress)
    result = verify_files(files, keys=keys, mac_key=mac_key, progress=halves[0])
    summary = summarize(files, progress=halves[1])
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditmw.evidence", "templates"),
        autoescape=True,  # events are attacker-controlled: escape everything
        undefined=jinja2.ChainableUndefined,  # hostile events may lack any field
    )
    template = env.get_template("report.html.j2")
    now = datetime.now(UTC)
    headline = verdict(result)
    html = str(
        template.render(
            generated=now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            version=__version__,
            sources=[str(f) for f in files],
            verdict=headline,
            result=result,
            findings=sorted(result.findings, key=lambda f: CATEGORIES.index(f.category))[:500],
            keys_given=keys is not None,
            mac_given=mac_key is not None,
            s=summary,
            chart=_bars(summary.per_minute),
            top_actors=summary.actors.most_common(10),
            policy=policy,
            retention=_retention(summary, policy, now),
            elapsed=f"{time.perf_counter() - started:.2f}",
        )
    )
    return EvidenceReport(html, headline, summary, result)


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    """A rendered report.

    Args:
        html: the self-contained HTML document.
        verdict: its headline.
        summary: what was read.
        verification: the verifier's report.

    .. versionadded:: 0.1.0
    """

    html: str
    verdict: Verdict
    summary: EvidenceSummary
    verification: Report


def _halves(
    progress: Callable[[int, int], None] | None,
) -> tuple[Callable[[int, int], None] | None, Callable[[int, int], None] | None]:
    if progress is None:
        return None, None
    report = progress
    return (lambda d, t: report(d, 2 * t)), (lambda d, t: report(t + d, 2 * t))


def _retention(
    summary: EvidenceSummary, policy: PolicyInfo | None, now: datetime
) -> dict[str, Any]:
    oldest_days = None
    if summary.first_time:
        try:
            oldest_days = (now - datetime.fromisoformat(summary.first_time)).days
        except ValueError:
            oldest_days = None
    days = policy.retention_days if policy else None
    return {
        "declared": policy is not None,
        "max_age_days": days,
        "oldest_days": oldest_days,
        "meets_pci": days is None or days >= 365,
    }


class ProgressBar:
    """A progress bar on stderr: ``[#####-----]  50%``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Redraw, at most five times a second."""
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        share = min(done / total, 1.0) if total else 1.0
        bar = "#" * int(share * 30) + "-" * (30 - int(share * 30))
        sys.stderr.write(f"\r{self.label} [{bar}] {share:4.0%}")
        sys.stderr.flush()
