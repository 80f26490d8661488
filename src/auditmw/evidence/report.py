"""The evidence report: one self-contained HTML file an auditor can open offline.

Trust: the banner states what :func:`auditmw.integrity.verify_files` concluded with the
keys given; everything else in the report is *read* from the same files.  Without a
key registry the log cannot be shown authentic, and the report says so ("NOT
VERIFIED") instead of claiming it.  Event values are attacker-controlled strings: the
template is rendered with autoescaping on, and nothing in it fetches from the network.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from auditmw._version import __version__
from auditmw.core.optional import require
from auditmw.evidence._chart import activity_bars
from auditmw.evidence._events import decrypting
from auditmw.evidence.sources import is_url, read_events, verify_sources
from auditmw.evidence.summary import EvidenceSummary
from auditmw.integrity.reader.report import CATEGORIES

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from auditmw.core.policy import Policy
    from auditmw.integrity.crypto import KeyProvider
    from auditmw.integrity.keys import KeyRegistry
    from auditmw.integrity.reader.report import Report

__all__ = [
    "EvidenceReport",
    "PolicyInfo",
    "Verdict",
    "render_report",
    "summarize",
    "verdict",
]


def summarize(
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvidenceSummary:
    """Read every stored event of ``paths`` once and summarize it.

    Args:
        paths: JSONL files (gzipped or not) and directories, or one
            ``postgresql://…?table=`` URL.
        progress: called with (bytes read, total bytes).

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    summary = EvidenceSummary()
    for event in read_events(paths, progress=progress):
        summary.add(event)
    return summary


@dataclass(frozen=True, slots=True)
class Verdict:
    """The headline of a report.

    One of ``VERIFIED`` (the only good one), ``TAMPERING DETECTED``, ``INCOMPLETE``
    or ``NOT VERIFIED``.

    Args:
        title: the headline.
        css: ``good``, ``bad`` or ``warn`` (the banner's colour).
        explanation: one sentence on what the headline means.
        counts: findings per category.

    .. versionadded:: 0.1.0
    """

    title: str
    css: str
    explanation: str
    counts: dict[str, int]

    @property
    def verified(self) -> bool:
        """Whether the log was shown intact and authentic.

        .. versionadded:: 0.2.0
        """
        return self.css == "good"


def verdict(report: Report) -> Verdict:
    """Turn a verification report into the report's headline.

    The report vouches for a log only when there is something to vouch for: records,
    every chain sealed by at least one signed checkpoint, and no finding other than
    informational ones.  An empty log, or one without a checkpoint, is ``NOT
    VERIFIED``; recorded drops or an unclean stop are ``INCOMPLETE``.

    Args:
        report: what :func:`~auditmw.integrity.verify_files` returned.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``INCOMPLETE``, and ``NOT VERIFIED`` for an empty log or one without checkpoints.
    """
    counts = report.counts()
    overall = report.verdict  # the verifier's own verdict decides; this picks the words
    if overall == "tampered":
        return Verdict("TAMPERING DETECTED", "bad", _TAMPERED, counts)
    if overall == "not_verified" or not report.records or not report.chains:
        return Verdict("NOT VERIFIED", "warn", _EMPTY if not report.records else _UNSEALED, counts)
    if counts["completeness"]:
        return Verdict("INCOMPLETE", "warn", _INCOMPLETE, counts)
    if overall != "clean":
        return Verdict("NOT VERIFIED", "warn", _UNVERIFIED, counts)
    if any(not chain.checkpoints for chain in report.chains):
        return Verdict("NOT VERIFIED", "warn", _UNSEALED, counts)
    return Verdict("VERIFIED", "good", _VERIFIED, counts)


_TAMPERED = "Stored records were changed, removed, inserted or reordered: see the findings."
_EMPTY = "There are no audit records to verify: the log is empty or was not found."
_INCOMPLETE = (
    "No tampering was found, but the log has gaps (dropped events, an unclean stop, "
    "missing start or heartbeats): see the findings."
)
_UNVERIFIED = (
    "No tampering was found, but the log could not be fully verified "
    "(missing keys, unsigned events): see the findings."
)
_UNSEALED = (
    "No signed checkpoint covers a chain of this log, so nothing shows it authentic "
    "or complete: see the chains."
)
_VERIFIED = "Every hash chain, MAC and signed checkpoint checked out with the given keys."


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """The policy in force, as given with ``--policy``.

    Args:
        id: the policy id.
        hash: ``sha256:…`` of its canonical form, as stamped on events.
        text: the file as written (shown in the report).
        retention_days: ``[retention] max_age_days``, if set.

    .. versionadded:: 0.1.0
    """

    id: str
    hash: str
    text: str
    retention_days: int | None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PolicyInfo:
        """Load and validate the policy file at ``path``.

        Args:
            path: a TOML, YAML or JSON policy file.

        Raises:
            PolicyError: the document is invalid.
            ConfigurationError: the file cannot be read.
        """
        from auditmw.core.policy import load_policy

        policy: Policy = load_policy(path, keys=_dummy_keys(path))
        retention = policy.document.get("retention") or {}
        days = retention.get("max_age_days")
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        return cls(policy.id, policy.hash, text, int(days) if days is not None else None)


def _dummy_keys(path: str | os.PathLike[str]) -> dict[str, bytes]:
    # Redaction keys change how events are written, not the policy's hash: a reviewer
    # does not hold them, so stand in a throwaway key for the one the document names.
    from auditmw.core.documents import read_document

    redaction = read_document(path).get("redaction") or {}
    key_id = redaction.get("hmac_key_id")
    return {str(key_id): b"\0" * 32} if key_id else {}


def render_report(
    paths: Iterable[str | os.PathLike[str]],
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    policy: PolicyInfo | None = None,
    progress: Callable[[int, int], None] | None = None,
    keyring: KeyProvider | None = None,
) -> EvidenceReport:
    """Verify and summarize ``paths``; return the report (one HTML document) and verdict.

    Args:
        paths: JSONL files (gzipped or not) and directories, or one
            ``postgresql://…?table=`` URL.
        keys: the trusted checkpoint keys (without them the log is "NOT VERIFIED").
        mac_key: the writer's initial MAC key.
        policy: the policy in force, shown with its hash and retention.
        progress: called with (bytes read, total bytes) over both passes.
        keyring: decrypts encrypted files (see :mod:`auditmw.crypto`).

    Raises:
        MissingDependencyError: Jinja2 is not installed (``pip install 'auditmw[report]'``).
        FileNotFoundError: a path does not exist.
        DecryptionError: a file is encrypted and ``keyring`` lacks its key.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``keyring``.
    """
    jinja2 = require("jinja2", extra="report", feature="auditmw report")
    files = list(paths)
    started = time.perf_counter()
    halves = _halves(progress)
    with decrypting(keyring):
        result = verify_sources(files, keys=keys, mac_key=mac_key, progress=halves[0])
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
            sources=[_label(f) for f in files],
            verdict=headline,
            result=result,
            findings=sorted(result.findings, key=lambda f: CATEGORIES.index(f.category))[:500],
            keys_given=keys is not None,
            mac_given=mac_key is not None,
            s=summary,
            chart=activity_bars(summary.per_minute),
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


def _label(source: str | os.PathLike[str]) -> str:
    text = str(source)
    if is_url(text):
        # Never print a DSN (it may hold a password): the host, database and table only.
        parts = urlsplit(text)
        if parts.scheme in ("nats", "tls"):
            return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or 4222}{parts.path}"
        table = dict(parse_qsl(parts.query)).get("table", "audit_events")
        return f"{parts.scheme}://{parts.hostname or ''}{parts.path}?table={table}"
    return text


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
