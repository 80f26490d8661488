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

from auditmw._layout import CHECKPOINT_KIND
from auditmw.evidence._events import MISSING, get_path, iter_records

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

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
        kind: ``kind`` pattern (``http``, ``audit.*``).
        checkpoints: keep integrity checkpoint records (skipped by default).

    .. versionadded:: 0.1.0
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
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Yield ``(stored line, event)`` for every matching event, streaming.

    Args:
        paths: files and directories (rotated and gzipped files are read in order),
            and ``postgresql://…?table=NAME`` tables (read first, in insertion order).
        where: the filter.
        follow_seconds: after the stored events, keep reading lines appended to the
            newest file for this long (``None``: forever; ``0``: do not follow).
        poll_s: how often to look for new lines while following.

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    from auditmw._sources import expand_paths
    from auditmw.evidence.sources import is_url, iter_nats, iter_postgres

    items = [str(p) if is_url(str(p)) else p for p in paths]
    for url in (i for i in items if isinstance(i, str) and is_url(i)):
        lines = (
            iter_nats(url)  # time bounds are applied by the filter below
            if url.startswith(("nats://", "tls://"))
            else iter_postgres(url, since=where.since, until=where.until)
        )
        for line in lines:
            event = _parse(line)
            if event is not None and where.matches(event):
                yield line, event
    files = expand_paths(i for i in items if not (isinstance(i, str) and is_url(i)))
    for _, line, event in iter_records(files):
        if event is not None and where.matches(event):
            yield line, event
    if follow_seconds == 0 or not files:
        return
    newest = max(files, key=lambda p: p.stat().st_mtime)
    for line in _tail(newest, follow_seconds, poll_s):
        event = _parse(line)
        if event is not None and where.matches(event):
            yield line, event


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


def _clean(text: str) -> str:
    # Stored values are attacker-controlled: never let them move the terminal cursor.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def write_table(events: Iterable[dict[str, Any]], out: IO[str], *, batch: int = 200) -> int:
    """Write events as aligned plain text; columns are sized per batch of rows.

    Sizing per batch keeps memory bounded on huge inputs.  Returns the row count.

    Args:
        events: the events to show.
        out: where to write.
        batch: rows per aligned block (and header only before the first).

    .. versionadded:: 0.1.0
    """
    headers = [name for name, _ in COLUMNS[:-1]]  # event ids are long; CSV/JSON carry them
    count, rows = 0, []
    for event in events:
        rows.append([_clean(c) for c in row(event)[:-1]])
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
    spreadsheet does not evaluate a formula planted in an event.

    Args:
        events: the events to write.
        out: a text stream opened with ``newline=""`` (or ``sys.stdout``).

    .. versionadded:: 0.1.0
    """
    writer = csv.writer(out)
    writer.writerow([name for name, _ in COLUMNS])
    count = 0
    for event in events:
        # A leading =, +, - or @ makes spreadsheets evaluate the cell: quote it away.
        writer.writerow([_defuse(c) for c in row(event)])
        count += 1
    return count


def _defuse(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
