"""Verification results: :class:`Location`, :class:`Finding` and :class:`Report`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

__all__ = ["CATEGORIES", "CODES", "VERDICTS", "ChainSummary", "Finding", "Location", "Report"]

#: Every finding code and its category.  ``info`` findings do not make a report dirty.
CODES: Final[dict[str, str]] = {
    "modified_event": "tamper",
    "modified_metadata": "tamper",
    "broken_link": "tamper",
    "forged_event": "tamper",
    "conflicting_duplicate": "tamper",
    "reordered_event": "tamper",
    "deleted_events": "tamper",
    "foreign_event": "tamper",
    "malformed_record": "tamper",
    "events_after_close": "tamper",
    "checkpoint_mismatch": "tamper",
    "checkpoint_modified": "tamper",
    "checkpoint_forged": "tamper",
    "checkpoint_deleted": "tamper",
    "unknown_key": "tamper",
    "expired_key": "tamper",
    "revoked_key": "tamper",
    "truncated_tail": "tamper",
    "rollback": "tamper",
    "recorded_drop": "completeness",
    "unclean_stop": "completeness",
    "missing_heartbeat": "completeness",
    "missing_start": "completeness",
    "missing_chain": "completeness",
    "torn_record": "completeness",
    "unverified_events": "unverified",
    "unchecked_signatures": "unverified",
    "no_records": "unverified",
    "no_checkpoint": "unverified",
    "oversized_record": "unverified",
    "skipped_symlink": "unverified",
    "duplicate": "info",
    "restart": "info",
}
#: The categories, most serious first.
CATEGORIES: Final = ("tamper", "completeness", "unverified", "info")
#: Codes that leave nothing verified at all: the verdict is ``not_verified``.
NOT_VERIFIED_CODES: Final = frozenset({"no_records", "no_checkpoint"})
#: The verdicts of :attr:`Report.verdict`, worst first.
VERDICTS: Final = ("tampered", "not_verified", "incomplete", "clean")
#: Findings kept per code; the rest are only counted (``Report.suppressed``).
MAX_PER_CODE: Final = 1000


class Location(NamedTuple):
    """Where a record is stored: a file (or table, stream) and a 1-based line (row) number.

    .. versionadded:: 0.1.0
    """

    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by the verifier.

    Args:
        code: what was found (a key of :data:`CODES`).
        message: a human explanation.
        location: the record concerned, when there is one.
        chain_id: the chain concerned.
        seq: the first sequence number concerned.
        seq_end: the last one, for ranges.

    .. versionadded:: 0.1.0
    """

    code: str
    message: str
    location: Location | None = None
    chain_id: str | None = None
    seq: int | None = None
    seq_end: int | None = None

    @property
    def category(self) -> str:
        """``tamper``, ``completeness``, ``unverified`` or ``info``."""
        return CODES[self.code]

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as JSON-compatible data."""
        data: dict[str, Any] = {
            "code": self.code,
            "category": self.category,
            "message": self.message,
        }
        if self.location is not None:
            data["source"], data["line"] = self.location
        for name in ("chain_id", "seq", "seq_end"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


@dataclass(slots=True)
class ChainSummary:
    """What the verifier saw of one chain.

    .. versionadded:: 0.1.0
    """

    chain_id: str
    stream: str | None = None
    events: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    closed: bool = False
    head: str | None = None  # "chain_id:n:checkpoint_hash" of the last checkpoint

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-compatible data."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Report:
    """The result of a verification run.

    .. versionadded:: 0.1.0
    """

    findings: list[Finding] = field(default_factory=list)
    chains: list[ChainSummary] = field(default_factory=list)
    records: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def clean(self) -> bool:
        """Whether nothing but ``info`` findings was found."""
        if any(CODES[code] != "info" for code in self.suppressed):
            return False
        return all(finding.category == "info" for finding in self.findings)

    @property
    def verdict(self) -> str:
        """The overall verdict, one of :data:`VERDICTS`.

        ``tampered``: at least one tamper finding.  ``not_verified``: the input holds
        no audit record, or no checkpoint at all, so nothing could be verified.
        ``incomplete``: no tampering, but completeness or unverified findings (missing
        start, unverified tail, unchecked signatures...).  ``clean``: only ``info``.

        .. versionadded:: 0.2.0
        """
        codes = {finding.code for finding in self.findings} | set(self.suppressed)
        categories = {CODES[code] for code in codes}
        if "tamper" in categories:
            return "tampered"
        if codes & NOT_VERIFIED_CODES:
            return "not_verified"
        return "clean" if categories <= {"info"} else "incomplete"

    def counts(self) -> dict[str, int]:
        """Return the number of findings per category, suppressed ones included.

        .. versionadded:: 0.2.0
        """
        totals = dict.fromkeys(CATEGORIES, 0)
        for finding in self.findings:
            totals[finding.category] += 1
        for code, count in self.suppressed.items():
            totals[CODES[code]] += count
        return totals

    def codes(self) -> list[str]:
        """Return the finding codes, in report order."""
        return [finding.code for finding in self.findings]

    def add(self, finding: Finding) -> Finding:
        """Record ``finding`` (only counted past :data:`MAX_PER_CODE` of its code)."""
        kept = self._counts.get(finding.code, 0)
        self._counts[finding.code] = kept + 1
        if kept >= MAX_PER_CODE:
            self.suppressed[finding.code] = self.suppressed.get(finding.code, 0) + 1
        else:
            self.findings.append(finding)
        return finding

    def count_suppressed(self, code: str, count: int) -> None:
        """Count ``count`` findings of ``code`` that another reader suppressed."""
        self._counts[code] = self._counts.get(code, 0) + count

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-compatible data."""
        return {
            "clean": self.clean,
            "verdict": self.verdict,
            "records": self.records,
            "chains": [chain.to_dict() for chain in self.chains],
            "findings": [finding.to_dict() for finding in self.findings],
            "suppressed": dict(self.suppressed),
        }
