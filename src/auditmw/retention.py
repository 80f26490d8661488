"""Retention and cold storage as code: plan and apply the ``[retention]`` policy section.

What it trusts: the rotated file names written by :class:`~auditmw.sinks.FileSink`
(their UTC rotation stamp is the file's age: no event in it is younger), the
signing keys given to verify checkpoints, and the clock (``now``).  What it
guarantees: a file is deleted only when it is older than ``min_days`` *and*
every chained event in it is covered by a checkpoint that verified (signature
included) in a log with no tamper or unverified findings; every move and deletion
is handed to ``record`` (the CLI emits it as an ``audit.retention`` event through
an :class:`~auditmw.auditor.Auditor` built from the same policy, so it lands,
hash-chained, in the audit log itself).  Do not rely on it against an attacker
with write access to the log directory: use the storage's own WORM features.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from auditmw.exceptions import PolicyError
from auditmw.integrity.layout import find_integrity, is_fenced_torn
from auditmw.integrity.reader.sources import expand_paths, iter_file, rotation_key, use_keyring
from auditmw.sinks.file import rotated_files

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from auditmw.integrity.crypto import KeyProvider
    from auditmw.integrity.keys import KeyRegistry

__all__ = [
    "Action",
    "ArchiveTarget",
    "DirectoryArchive",
    "RetentionRule",
    "apply",
    "plan",
    "shred_refusal",
]

_STAMP = re.compile(r"\.(\d{8}T\d{6}Z)\.\d{6}(?:\.gz)?$")
_DAY = 86_400.0
Kind = Literal["archive", "delete", "keep", "refused"]


class ArchiveTarget(Protocol):
    """Where cold files go; an object store implements the same three calls.

    .. versionadded:: 0.1.0
    """

    def put(self, name: str, data: bytes) -> str:
        """Store ``data`` (gzipped) durably under ``name``; return its location."""
        ...

    def files(self) -> list[Path]:
        """Local paths of the archived files (verified before deleting them)."""
        ...

    def delete(self, path: Path) -> None:
        """Delete one archived file."""
        ...


class DirectoryArchive:
    """An archive directory: files are written ``0400`` after an ``fsync``.

    Args:
        path: the directory (created ``0700`` when missing).

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def put(self, name: str, data: bytes) -> str:
        """Write ``data`` to ``<path>/<name>`` atomically and read-only."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        final, partial = self.path / name, self.path / f".{name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o400)
        os.replace(partial, final)
        return str(final)

    def files(self) -> list[Path]:
        """The archived files, oldest first."""
        if not self.path.is_dir():
            return []
        return sorted((p for p in self.path.iterdir() if _STAMP.search(p.name)), key=_stamp)

    def delete(self, path: Path) -> None:
        """Remove one archived file."""
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class RetentionRule:
    """The ``[retention]`` section.

    Args:
        hot_days: rotated files older than this move to ``archive``.
        min_days: nothing younger is ever deleted.
        archive: the archive directory.
        archive_encrypt: encrypt plaintext files when archiving (needs a keyring).
        delete_after_days: files (hot or archived) older than this are deleted.

    Raises:
        PolicyError: ``delete_after_days`` is below ``min_days``.

    .. versionadded:: 0.1.0
    """

    hot_days: float | None = None
    min_days: float = 365
    archive: str | None = None
    archive_encrypt: bool = False
    delete_after_days: float | None = None

    def __post_init__(self) -> None:
        if self.delete_after_days is not None and self.delete_after_days < self.min_days:
            raise PolicyError(
                f"policy /retention: delete_after_days ({self.delete_after_days}) is below "
                f"min_days ({self.min_days}); raise delete_after_days",
                path="/retention/delete_after_days",
            )

    @classmethod
    def from_policy(cls, document: Mapping[str, Any]) -> RetentionRule:
        """Read the rule from a policy document's ``[retention]`` section."""
        section = document.get("retention") or {}
        names = ("hot_days", "min_days", "archive", "archive_encrypt", "delete_after_days")
        return cls(**{k: section[k] for k in names if k in section})


@dataclass(frozen=True)
class Action:
    """One planned (or applied) step on one file.

    .. versionadded:: 0.1.0
    """

    kind: Kind
    path: Path
    age_days: float
    reason: str
    archived: bool = False

    def details(self) -> dict[str, Any]:
        """The ``details`` of the ``audit.retention`` event recording this action."""
        return {
            "action": self.kind,
            "file": self.path.name,
            "tier": "archive" if self.archived else "hot",
            "age_days": round(self.age_days, 2),
            "reason": self.reason,
        }


def _stamp(path: Path) -> datetime:
    match = _STAMP.search(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a rotated audit file name")
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def shred_refusal(path: Path) -> str | None:
    """Why ``path`` must not be crypto-shredded, or ``None`` when it may be.

    Only rotated files (and their archived copies) may be shredded: a name without
    the rotation suffix is a live file a running :class:`~auditmw.sinks.FileSink`
    appends to, and shredding rewrites the file under a new inode, so the writer's
    later events would go to the replaced, unlinked file and be lost.

    .. versionadded:: 0.2.0
    """
    if _STAMP.search(path.name) is not None:
        return None
    return (
        f"refusing to shred {path}: it is a live log file (its name has no rotation suffix "
        "'.<YYYYMMDDTHHMMSSZ>.<NNNNNN>[.gz]'), so a running FileSink may still append to it "
        "and its later events would be lost; shred only rotated files (rotate first: "
        "rotate_bytes / rotate_interval)"
    )


def plan(
    logs: list[Path], rule: RetentionRule, now: datetime, target: ArchiveTarget | None = None
) -> list[Action]:
    """Decide, for every rotated file of ``logs`` and of the archive, what to do and why.

    Args:
        logs: the live paths of the file sinks (their rotated files are considered;
            the live files never are).
        rule: the retention rule.
        now: the time the rule is judged at.
        target: the archive; default ``DirectoryArchive(rule.archive)`` when set.

    .. versionadded:: 0.1.0
    """
    if target is None and rule.archive:
        target = DirectoryArchive(rule.archive)
    candidates = [(p, False) for live in logs for p in rotated_files(live)]
    candidates += [(p, True) for p in (target.files() if target else [])]
    return [_decide(p, archived, rule, now, target) for p, archived in candidates]


def _decide(
    path: Path, archived: bool, rule: RetentionRule, now: datetime, target: ArchiveTarget | None
) -> Action:
    age = (now - _stamp(path)).total_seconds() / _DAY
    if rule.delete_after_days is not None and age >= rule.delete_after_days:
        if age < rule.min_days:  # unreachable with a valid rule; kept as the last guard
            return Action("keep", path, age, f"younger than min_days={rule.min_days}", archived)
        reason = f"older than delete_after_days={rule.delete_after_days}"
        return Action("delete", path, age, reason, archived)
    if not archived and target is not None and rule.hot_days is not None and age >= rule.hot_days:
        return Action("archive", path, age, f"older than hot_days={rule.hot_days}")
    return Action("keep", path, age, "within the retention window", archived)


def _record(line: bytes) -> Any:
    """The parsed record, or ``None`` for a line that is none (verify judges those)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _coverage(files: list[Path]) -> dict[str, float]:
    """The highest ``last_seq`` checkpointed per chain in ``files``."""
    covered: dict[str, float] = {}
    for path in files:
        for _, line in iter_file(path):
            if b'"checkpoint"' not in line:
                continue
            doc = _record(line)
            body = doc.get("checkpoint") if isinstance(doc, dict) else None
            if isinstance(body, dict):
                chain = str(body.get("chain_id"))
                covered[chain] = max(covered.get(chain, -1), float(body.get("last_seq", -1)))
    return covered


def _uncovered(path: Path, covered: Mapping[str, float]) -> str | None:
    """Why ``path`` holds events no checkpoint covers, or ``None`` when all are covered."""
    for _, line in iter_file(path):
        if is_fenced_torn(line):
            continue  # a crash fragment the sink fenced: no event, nothing to cover
        doc = _record(line)
        if doc is None:
            return "holds a line that is not a JSON record"
        if not isinstance(doc, dict) or "checkpoint" in doc:
            continue  # a checkpoint-only file covers others; it holds no event of its own
        integrity = find_integrity(doc)
        if not isinstance(integrity, dict) or "seq" not in integrity:
            return "holds events that are not hash-chained (integrity off)"
        chain, seq = str(integrity.get("chain_id")), float(integrity["seq"])
        if seq > covered.get(chain, -1):
            return f"event seq {int(seq)} of chain {chain} is after its last checkpoint"
    return None


def _out_of_order(order: list[Path], doomed: set[Path]) -> dict[Path, str]:
    """Deletions that would leave an older file: only a prefix of each stream may go.

    Streams are told apart by directory and log name, so a copy in the archive
    directory never blocks deleting an older file of the live log.

    A checkpoint covers the events written before it, so it sits in a later file;
    deleting oldest first never removes the checkpoint of a file that stays.
    """
    out: dict[Path, str] = {}
    kept: dict[tuple[str, str], Path] = {}  # per stream: a log and its rotated files
    for path in order:
        stream = rotation_key(path)[:2]  # (directory, log name): another stream, another order
        if path not in doomed:
            kept.setdefault(stream, path)
        elif stream in kept:
            out[path] = f"{kept[stream].name} was written earlier and is kept; delete oldest first"
    return out


def apply(
    actions: list[Action],
    *,
    keys: KeyRegistry | None,
    record: Callable[[Action], None],
    keyring: KeyProvider | None = None,
    target: ArchiveTarget | None = None,
    encrypt: bool = False,
) -> list[Action]:
    """Carry out a plan; deletions only when verified checkpoints cover the file.

    Args:
        actions: the output of :func:`plan`.
        keys: public keys that verify the checkpoints (without them nothing is deleted).
        record: called with every action carried out or refused, before the next one.
        keyring: decrypts encrypted files (and encrypts archives with ``encrypt``).
        target: the archive.
        encrypt: encrypt plaintext files while archiving.

    Returns:
        The actions as carried out (refused deletions have ``kind="refused"``).

    .. versionadded:: 0.1.0
    """
    from auditmw.integrity.options import verify_files

    done: list[Action] = []
    with use_keyring(keyring):
        doomed = [a for a in actions if a.kind == "delete"]
        gate: str | None = None
        covered: dict[str, float] = {}
        blocked: dict[Path, str] = {}
        if doomed:
            # Every file of the directories involved, live files included: the
            # checkpoint covering a rotated file is often in a later file.
            dirs = sorted({a.path.parent for a in actions})
            report = verify_files(dirs, keys=keys)
            bad = [f for f in report.findings if f.category in ("tamper", "unverified")]
            if keys is None:
                gate = "no signing keys given to verify checkpoints (pass --keys)"
            elif bad:
                gate = f"the log does not verify ({len(bad)} tamper/unverified findings)"
            order = expand_paths(dirs)
            covered = _coverage(order)
            blocked = _out_of_order(order, {a.path for a in doomed})
        for planned in actions:
            action = planned
            if action.kind == "archive" and target is not None:
                _archive(action.path, target, keyring if encrypt else None)
            elif action.kind == "delete":
                why = gate or blocked.get(action.path) or _uncovered(action.path, covered)
                if why is not None:
                    action = Action("refused", action.path, action.age_days, why, action.archived)
                elif action.archived and target is not None:
                    target.delete(action.path)
                else:
                    action.path.unlink()
            else:
                continue
            record(action)
            done.append(action)
    return done


def _archive(path: Path, target: ArchiveTarget, provider: KeyProvider | None) -> None:
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    if provider is not None and not data.startswith(b'{"auditmw_encryption"'):
        data = _encrypt_file(data, provider)
    name = path.name if path.name.endswith(".gz") else path.name + ".gz"
    target.put(name, gzip.compress(data, mtime=0))
    path.unlink()


def _encrypt_file(data: bytes, provider: KeyProvider, chunk: int = 1000) -> bytes:
    from auditmw.integrity.crypto import new_segment

    header, key = new_segment(provider)
    out = bytearray(header)
    lines = data.splitlines(keepends=True)
    for start in range(0, len(lines), chunk):
        out += key.encrypt(b"".join(lines[start : start + chunk]), len(out))
    return bytes(out)
