"""The audit-readiness checklist as code: completeness, consistency, integrity,
traceability and retention, each pass or fail, for CI.

Trust: the integrity check is only as strong as the keys given; without a key
registry it fails (signatures cannot be checked), which is the point.  The retention
check reads the policy's ``[retention]`` and does not look at what is on disk.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from auditmw.evidence._events import decrypting
from auditmw.evidence.sources import read_events, verify_sources
from auditmw.evidence.summary import EvidenceSummary

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from auditmw.evidence.report import PolicyInfo
    from auditmw.integrity.crypto import KeyProvider
    from auditmw.integrity.keys import KeyRegistry
    from auditmw.integrity.reader.report import Report

__all__ = ["PROFILES", "Check", "Readiness", "check_readiness"]

#: Minimum retention in days per profile (``None``: a retention must only be declared).
#: PCI DSS v4.0 10.5.1 asks for 12 months; SOC 2 and ISO/IEC 27001 set no number, and
#: 12 months is the usual auditor expectation for SOC 2; ISO 27001 (A.8.15) asks that
#: the retention be defined.
PROFILES: Final[dict[str, int | None]] = {"pci-dss": 365, "soc2": 365, "iso27001": None}
#: Verifier findings that are unexplained gaps (as opposed to recorded drops, restarts).
_GAPS: Final = frozenset({"deleted_events", "truncated_tail", "checkpoint_deleted", "rollback"})


@dataclass(frozen=True, slots=True)
class Check:
    """One item of the checklist.

    Args:
        name: ``completeness``, ``consistency``, ``integrity``, ``traceability`` or
            ``retention``.
        passed: whether it passed.
        detail: what was found, for people.

    .. versionadded:: 0.1.0
    """

    name: str
    passed: bool
    detail: str


@dataclass(slots=True)
class Readiness:
    """The checklist's result.

    Args:
        profile: the profile the checks were run for.
        checks: the checks, in a fixed order.

    .. versionadded:: 0.1.0
    """

    profile: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)


def check_readiness(
    paths: Iterable[str | os.PathLike[str]],
    *,
    policy: PolicyInfo | None,
    profile: str = "pci-dss",
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    min_traceability: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    keyring: KeyProvider | None = None,
) -> Readiness:
    """Run the checklist over stored logs.

    Args:
        paths: JSONL files (gzipped or not) and directories, or one
            ``postgresql://…?table=`` URL.
        policy: the policy in force (needed for the retention check).
        profile: ``pci-dss``, ``soc2`` or ``iso27001``.
        keys: the trusted checkpoint keys.
        mac_key: the writer's initial MAC key.
        min_traceability: the least share of requests whose actor identity was verified.
        progress: called with (bytes read, total bytes) during verification.
        keyring: decrypts encrypted files (see :mod:`auditmw.crypto`).

    Raises:
        ValueError: unknown ``profile``.
        FileNotFoundError: a path does not exist.
        DecryptionError: a file is encrypted and ``keyring`` lacks its key.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``keyring``.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    files = list(paths)
    summary = EvidenceSummary()
    weaknesses: list[dict[str, object]] = []
    with decrypting(keyring):
        report = verify_sources(files, keys=keys, mac_key=mac_key, progress=progress)
        for event in read_events(files):
            summary.add(event)
            if event.get("kind") == "audit.started":
                weaknesses += _weaknesses(event.get("details"))
    result = Readiness(profile)
    result.checks.append(_completeness(summary, report))
    result.checks.append(_consistency(summary))
    result.checks.append(_integrity(report))
    share = summary.traceability
    result.checks.append(
        Check(
            "traceability",
            share >= min_traceability,
            f"{summary.verified_identity} of {summary.requests} requests ({share:.0%}) carry a "
            f"verified identity; at least {min_traceability:.0%} required",
        )
    )
    result.checks.append(_retention(policy, profile))
    if weaknesses:
        result.checks.append(_key_strength(weaknesses))
    return result


def _weaknesses(details: object) -> list[dict[str, object]]:
    found = details.get("weaknesses") if isinstance(details, dict) else None
    return [w for w in found if isinstance(w, dict)] if isinstance(found, list) else []


def _key_strength(weaknesses: list[dict[str, object]]) -> Check:
    """A finding only when a process started with a weak key (e.g. a short JWT secret)."""
    found = {_weakness(w) for w in weaknesses}
    return Check(
        "key_strength",
        False,
        "identities were verified with a weak key: "
        + "; ".join(sorted(found))
        + "; use a longer secret, or refuse short ones with JWTResolver(min_secret_bytes=32)",
    )


def _weakness(item: dict[str, object]) -> str:
    if item.get("kind") != "short_hmac_secret":
        return str(item.get("kind", "unknown"))[:64]
    algorithms = item.get("algorithms")
    names = "/".join(map(str, algorithms)) if isinstance(algorithms, list) else "HS*"
    return (
        f"a {item.get('secret_bytes')}-byte {names} secret "
        f"(RFC 7518 §3.2 asks for {item.get('recommended_bytes')})"
    )


def _completeness(summary: EvidenceSummary, report: Report) -> Check:
    started, stopped = summary.kinds["audit.started"], summary.kinds["audit.stopped"]
    gaps = [f for f in report.findings if f.code in _GAPS]
    problems = []
    if not started:
        problems.append("no audit.started event (logging start is not recorded)")
    if gaps:
        problems.append(f"{len(gaps)} unexplained gap(s): " + ", ".join(f.code for f in gaps[:5]))
    explained = [f.code for f in report.findings if f.category == "completeness"]
    detail = f"{started} start(s), {stopped} stop(s) recorded"
    if explained:
        detail += f"; explained gaps: {', '.join(sorted(set(explained)))}"
    return Check("completeness", not problems, "; ".join([*problems, detail]))


def _consistency(summary: EvidenceSummary) -> Check:
    if not summary.invalid_count:
        return Check("consistency", True, f"all {summary.events} events match the event schema")
    ident, errors = summary.invalid[0]
    return Check(
        "consistency",
        False,
        f"{summary.invalid_count} of {summary.events} events do not match the event schema "
        f"(first: {ident}: {'; '.join(errors[:3])})",
    )


def _integrity(report: Report) -> Check:
    if report.clean:
        return Check(
            "integrity", True, f"{report.records} records in {len(report.chains)} chain(s) verified"
        )
    codes = sorted(
        {f.code for f in report.findings if f.category != "info"} | set(report.suppressed)
    )
    return Check("integrity", False, "verification findings: " + ", ".join(codes))


def _retention(policy: PolicyInfo | None, profile: str) -> Check:
    minimum = PROFILES[profile]
    if policy is None:
        return Check("retention", False, "no policy given (--policy): retention unknown")
    days = policy.retention_days
    if days is None:
        if minimum is None:
            return Check("retention", False, "the policy declares no [retention] max_age_days")
        return Check(
            "retention",
            True,
            "the policy sets no age limit: auditmw deletes nothing (ensure storage keeps "
            f"at least {minimum} days)",
        )
    if minimum is not None and days < minimum:
        return Check(
            "retention",
            False,
            f"[retention] max_age_days = {days} is shorter than {profile}'s {minimum} days",
        )
    return Check("retention", True, f"[retention] max_age_days = {days} days")
