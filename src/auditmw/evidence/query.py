"""Querying stored audit events: filters, and table / JSON lines / CSV output.

Trust: a query reads what is stored and does not verify it; pair it with
``auditmw verify`` before treating the answer as evidence.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import IO, TYPE_CHECKING, Any

import orjson

from auditmw.core.terminal import escape_control, is_terminal
from auditmw.evidence._events import MISSING, decrypting, get_path, iter_records
from auditmw.evidence._values import (
    OPERATIONS,
    OUTCOMES,
    SEVERITIES,
    check_choice,
    check_kind,
    check_status,
)
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.layout import CHECKPOINT_KIND

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from auditmw.integrity.crypto import KeyProvider

_ENCRYPTED = b'{"auditmw_encryption"'

__all__ = ["COLUMNS", "EventFilter", "query_events", "row", "write_csv", "write_table"]

#: Columns of the table and CSV outputs: (header, dotted path).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "time"),
    ("kind", "kind"),
    ("actor", "actor.id"),
    ("action", "action"),
    ("outcome", "outcome"),
    ("status", "response.status_code"),
    ("resource", "resource"),
    ("path", "request.path"),
    ("request_id", "request.id"),
    ("event_id", "event_id"),
)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a query keeps; every given criterion must hold (AND).

    Args:
        since: keep events at or after this stored-format time (see ``format_bound``).
        until: keep events before this time.
        actor: ``actor.id`` (shell-style pattern: ``svc-*``).
        action: ``action`` pattern (``orders.*``).
        operation: ``operation`` (create, read, update, delete, login, logout, other).
        resource_type: ``resource.type``.
        resource_id: ``resource.id``.
        outcome: ``outcome``.
        status: ``response.status_code``: ``404`` or a class such as ``4xx``.
        route: ``request.route`` pattern (``/orders/*``).
        request_id: ``request.id``.
        kind: ``kind`` pattern (``http``, ``audit.*``); must match a kind auditmw writes.
        checkpoints: keep integrity checkpoint records (skipped by default).
        severity: ``severity`` (info, low, medium, high).

    Raises:
        ConfigurationError: a value can never match (an unknown outcome, operation,
            severity or kind, a status that is not 100-599 or ``1xx``-``5xx``), so
            that a typo is not mistaken for "no such events".

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``severity``; values are validated.
    """

    since: str | None = None
    until: str | None = None
    actor: str | None = None
    action: str | None = None
    operation: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: str | None = None
    status: str | None = None
    route: str | None = None
    request_id: str | None = None
    kind: str | None = None
    checkpoints: bool = False
    severity: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("outcome", OUTCOMES),
            ("operation", OPERATIONS),
            ("severity", SEVERITIES),
        ):
            if (value := getattr(self, name)) is not None:
                check_choice(name, value, allowed)
        if self.status is not None:
            check_status("status", self.status)
        if self.kind is not None:
            check_kind("kind", self.kind)

    def matches(self, event: dict[str, Any]) -> bool:
        """Return whether ``event`` passes every criterion.

        Args:
            event: a parsed stored event (any JSON object: values are type-checked).
        """
        if event.get("kind") == CHECKPOINT_KIND and not self.checkpoints:
            return False
        stamp = event.get("time")
        if self.since is not None and not (isinstance(stamp, str) and stamp >= self.since):
            return False
        if self.until is not None and not (isinstance(stamp, str) and stamp < self.until):
            return False
        for pattern, path in (
            (self.actor, "actor.id"),
            (self.action, "action"),
            (self.route, "request.route"),
            (self.kind, "kind"),
        ):
            if pattern is not None and not _glob(get_path(event, path), pattern):
                return False
        for wanted, path in (
            (self.operation, "operation"),
            (self.resource_type, "resource.type"),
            (self.resource_id, "resource.id"),
            (self.outcome, "outcome"),
            (self.severity, "severity"),
            (self.request_id, "request.id"),
        ):
            if wanted is not None and get_path(event, path) != wanted:
                return False
        return self.status is None or _status(get_path(event, "response.status_code"), self.status)


def _glob(value: Any, pattern: str) -> bool:
    return isinstance(value, str) and fnmatchcase(value, pattern)


def _status(value: Any, wanted: str) -> bool:
    if not isinstance(value, int):
        return False
    if len(wanted) == 3 and wanted[1:].lower() == "xx":
        return str(value)[0] == wanted[0]
    return str(value) == wanted


def query_events(
    paths: Iterable[str | os.PathLike[str]],
    where: EventFilter,
    *,
    follow_seconds: float | None = 0.0,
    poll_s: float = 0.2,
    keyring: KeyProvider | None = None,
    on_malformed: Callable[[str], None] | None = None,
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Yield ``(stored line, event)`` for every matching event, streaming.

    Args:
        paths: files and directories (rotated and gzipped files are read in order),
            and ``postgresql://…?table=NAME`` tables (read first, in insertion order).
        where: the filter.
        follow_seconds: after the stored events, keep reading lines appended to the
            newest file for this long (``None``: forever; ``0``: do not follow).
        poll_s: how often to look for new lines while following.
        keyring: decrypts encrypted files (see :mod:`auditmw.crypto`).
        on_malformed: called with the location (``file:line`` or the source) of each
            record that is not a JSON object and is therefore skipped.

    Raises:
        FileNotFoundError: a path does not exist.
        DecryptionError: a file is encrypted and ``keyring`` lacks its key.
        ConfigurationError: following an encrypted file (not supported).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``keyring`` and ``on_malformed``.
    """
    with decrypting(keyring):  # also while ordering the files (their first records)
        yield from _query(paths, where, follow_seconds, poll_s, on_malformed)


def _query(
    paths: Iterable[str | os.PathLike[str]],
    where: EventFilter,
    follow_seconds: float | None,
    poll_s: float,
    on_malformed: Callable[[str], None] | None,
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    from auditmw.evidence.sources import is_url
    from auditmw.integrity.reader.sources import expand_paths

    items = [str(p) if is_url(str(p)) else p for p in paths]
    urls = [i for i in items if isinstance(i, str) and is_url(i)]
    files = expand_paths(i for i in items if not (isinstance(i, str) and is_url(i)))
    newest = max(files, key=lambda p: p.stat().st_mtime) if files else None
    if follow_seconds != 0 and newest is not None and _is_encrypted(newest):
        raise ConfigurationError(
            f"--follow cannot read the encrypted file {newest}; query it without --follow",
            setting="--follow",
        )
    skipped = on_malformed or (lambda where: None)
    for url in urls:
        yield from _match_lines(_url_lines(url, where), where, url, skipped)
    for location, line, event in iter_records(files):
        if event is None:
            skipped(f"{location.source}:{location.line}")
        elif where.matches(event):
            yield line, event
    if follow_seconds == 0 or newest is None:
        return
    yield from _match_lines(_tail(newest, follow_seconds, poll_s), where, str(newest), skipped)


def _url_lines(url: str, where: EventFilter) -> Iterator[bytes]:
    from auditmw.evidence.sources import iter_nats, iter_postgres

    if url.startswith(("nats://", "tls://")):
        return iter_nats(url)  # time bounds are applied by the filter
    return iter_postgres(url, since=where.since, until=where.until)


def _match_lines(
    lines: Iterable[bytes], where: EventFilter, source: str, skipped: Callable[[str], None]
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    for line in lines:
        event = _parse(line)
        if event is None:
            skipped(source)
        elif where.matches(event):
            yield line, event


def _is_encrypted(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(_ENCRYPTED)) == _ENCRYPTED


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _tail(path: Path, seconds: float | None, poll_s: float) -> Iterator[bytes]:
    """Yield complete lines appended to ``path`` from now on; reopen it when rotated."""
    deadline = None if seconds is None else time.monotonic() + seconds
    handle = open(path, "rb")  # noqa: SIM115 - reopened on rotation, closed below
    try:
        handle.seek(0, os.SEEK_END)
        inode, pending = os.fstat(handle.fileno()).st_ino, b""
        while deadline is None or time.monotonic() < deadline:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (line for line in lines if line)
                continue
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino != inode or current.st_size < handle.tell()):
                # Rotated (a new file under the same name) or truncated: start it over.
                handle.close()
                handle = open(path, "rb")  # noqa: SIM115
                inode, pending = current.st_ino, b""
                continue
            time.sleep(poll_s)
    finally:
        handle.close()


def _cell(event: dict[str, Any], path: str) -> str:
    if path == "resource":
        kind, ident = get_path(event, "resource.type"), get_path(event, "resource.id")
        parts = [str(v) for v in (kind, ident) if v is not MISSING]
        return "/".join(parts)
    value = get_path(event, path)
    return "" if value is MISSING else str(value)


def row(event: dict[str, Any]) -> list[str]:
    """Return the table/CSV cells of ``event`` (see :data:`COLUMNS`).

    Args:
        event: a stored event.

    .. versionadded:: 0.1.0
    """
    return [_cell(event, path) for _, path in COLUMNS]


def write_table(events: Iterable[dict[str, Any]], out: IO[str], *, batch: int = 200) -> int:
    """Write events as aligned plain text; columns are sized per batch of rows.

    Sizing per batch keeps memory bounded on huge inputs.  Control characters in
    cells are always escaped (``\\u001b``).  Returns the row count.

    Args:
        events: the events to show.
        out: where to write.
        batch: rows per aligned block (and header only before the first).

    .. versionadded:: 0.1.0
    """
    headers = [name for name, _ in COLUMNS[:-1]]  # event ids are long; CSV/JSON carry them
    count, rows = 0, []
    for event in events:
        # Stored values are attacker-controlled: never let them move the terminal cursor.
        rows.append([escape_control(c) for c in row(event)[:-1]])
        count += 1
        if len(rows) == batch:
            _flush(headers, rows, out, first=count == batch)
            rows = []
    if rows or count == 0:
        _flush(headers, rows, out, first=count <= batch)
    return count


def _flush(headers: list[str], rows: list[list[str]], out: IO[str], *, first: bool) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ([headers] if first else []) + rows
    for cells in lines:
        out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        out.write("\n")


def write_csv(events: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write events as CSV with a header row; returns the row count.

    Cells starting with ``=``, ``+``, ``-`` or ``@`` get a leading ``'`` so that a
    spreadsheet does not evaluate a formula planted in an event.  When ``out`` is a
    terminal, control characters in cells are escaped (see :mod:`auditmw.core.terminal`).

    Args:
        events: the events to write.
        out: a text stream opened with ``newline=""`` (or ``sys.stdout``).

    .. versionadded:: 0.1.0
    """
    writer = csv.writer(out)
    writer.writerow([name for name, _ in COLUMNS])
    clean = escape_control if is_terminal(out) else str
    count = 0
    for event in events:
        # A leading =, +, - or @ makes spreadsheets evaluate the cell: quote it away.
        writer.writerow([_defuse(clean(c)) for c in row(event)])
        count += 1
    return count


def _defuse(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
