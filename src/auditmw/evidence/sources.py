"""Where ``auditmw query`` reads from besides files: a PostgreSQL table.

``postgresql://user@host/db?table=audit_events`` (or ``postgres://``) reads the
``line`` column of a table written by :class:`~auditmw.sinks.PostgresSink`, in
insertion (``id``) order, through a server-side cursor, so the table is streamed.
The time bounds are pushed down to SQL (the ``time`` column is indexed); every other
criterion is applied to the stored line, exactly as for files.  ``auditmw report`` and
``auditmw audit-ready`` verify such a table from its ``line`` column, in ``id`` order.

Trust: rows are read as stored; the table's triggers make it append-only, but only
``auditmw verify`` over the lines proves nothing was changed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from auditmw.core.optional import require
from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Iterator

    from auditmw.integrity.keys import KeyRegistry
    from auditmw.integrity.reader.report import Report

__all__ = ["is_url", "iter_nats", "iter_postgres", "iter_store", "read_events", "verify_sources"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_POSTGRES = ("postgres://", "postgresql://")
_NATS = ("nats://", "tls://")
_SCHEMES = _POSTGRES + _NATS
#: JetStream messages fetched concurrently per round trip.
_NATS_WINDOW = 256


def is_url(source: str) -> bool:
    """Whether ``source`` names a database table or a JetStream stream rather than a file.

    .. versionadded:: 0.1.0
    """
    return source.startswith(_SCHEMES)


def store_label(url: str) -> str:
    """The name used in finding locations: the table or the stream (never credentials)."""
    if url.startswith(_NATS):
        return "stream " + _split_nats(url)[1]
    return _split(url)[1]


def iter_store(url: str) -> Iterator[bytes]:
    """Yield the stored lines of one table or stream URL, in storage order.

    .. versionadded:: 0.1.0
    """
    return iter_nats(url) if url.startswith(_NATS) else iter_postgres(url)


def _split_nats(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    stream = parts.path.strip("/")
    if not stream or not re.fullmatch(r"[A-Za-z0-9_-]+", stream):
        raise ConfigurationError(
            f"a JetStream source is nats://host:port/STREAM, got stream {stream!r}",
            setting="PATH",
        )
    return urlunsplit(parts._replace(path="", query="", fragment="")), stream


def iter_nats(url: str) -> Iterator[bytes]:
    """Yield the payloads of every message of a JetStream stream, in sequence order.

    ``url`` is ``nats://[user:password@]host:port/STREAM``.  Messages deleted from the
    stream are skipped: the integrity chain reports the gap they leave.

    Raises:
        MissingDependencyError: nats-py is not installed (``auditmw[nats]``).
        ConfigurationError: the server or the stream cannot be read.

    .. versionadded:: 0.1.0
    """
    import asyncio

    nats = require("nats", extra="nats", feature="reading a JetStream stream")
    errors = require("nats.js.errors", extra="nats", feature="reading a JetStream stream")
    server, stream = _split_nats(url)
    loop = asyncio.new_event_loop()

    async def fetch(js: Any, seq: int) -> bytes | None:
        try:
            msg = await js.get_msg(stream, seq)
        except errors.NotFoundError:
            return None  # deleted: the chain shows the hole
        return bytes(msg.data or b"")

    async def fetch_window(js: Any, window: range) -> list[bytes | None]:
        return list(await asyncio.gather(*(fetch(js, seq) for seq in window)))

    nc: Any = None
    try:
        try:
            nc = loop.run_until_complete(
                nats.connect(server, connect_timeout=5, max_reconnect_attempts=0)
            )
            js = nc.jetstream()
            info = loop.run_until_complete(js.stream_info(stream))
        except Exception as exc:  # nats raises many unrelated types; name the class only
            raise ConfigurationError(
                f"cannot read JetStream stream {stream!r}: {type(exc).__name__}", setting="PATH"
            ) from exc
        first, last = info.state.first_seq, info.state.last_seq
        if info.state.messages:
            for start in range(first, last + 1, _NATS_WINDOW):
                window = range(start, min(start + _NATS_WINDOW, last + 1))
                found = loop.run_until_complete(fetch_window(js, window))
                yield from (data for data in found if data is not None)
    finally:
        if nc is not None:
            loop.run_until_complete(nc.close())
        loop.close()


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    table = next((v for k, v in query if k == "table"), "audit_events")
    names = table.split(".")
    if len(names) > 2 or not all(_NAME.match(n) for n in names):
        raise ConfigurationError(
            f"?table= must be 'name' or 'schema.name' (letters, digits, _), got {table!r}",
            setting="table",
        )
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    return urlunsplit(parts._replace(scheme="postgresql", query=rest)), table


def iter_postgres(
    url: str, *, since: str | None = None, until: str | None = None, batch: int = 2000
) -> Iterator[bytes]:
    """Yield the stored lines of the table named in ``url``, in insertion order.

    Args:
        url: ``postgresql://…/db?table=name`` (default table ``audit_events``).
        since: keep rows whose ``time`` is at or after this RFC 3339 time.
        until: keep rows whose ``time`` is before this time.
        batch: rows fetched per round trip.

    Raises:
        MissingDependencyError: psycopg is not installed (``auditmw[postgres]``).
        ConfigurationError: bad table name, or the database cannot be read.

    .. versionadded:: 0.1.0
    """
    psycopg = require("psycopg", extra="postgres", feature="auditmw query postgresql://")
    sql = psycopg.sql
    dsn, table = _split(url)
    where, params = [], []
    for column_bound, value in ((">=", since), ("<", until)):
        if value is not None:
            where.append(sql.SQL("time {} %s").format(sql.SQL(column_bound)))
            params.append(value)
    statement: Any = sql.SQL("SELECT line FROM {}").format(sql.Identifier(*table.split(".")))
    if where:
        statement = statement + sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    statement = statement + sql.SQL(" ORDER BY id")
    try:
        with psycopg.connect(dsn) as conn, conn.cursor(name="auditmw_query") as cursor:
            cursor.itersize = batch
            cursor.execute(statement, params)
            for (line,) in cursor:
                yield line.encode() if isinstance(line, str) else bytes(line)
    except psycopg.Error as exc:
        # The DSN may hold a password: name the table and the error class only.
        raise ConfigurationError(
            f"cannot read table {table!r}: {type(exc).__name__}: {exc.diag.message_primary or ''}",
            setting="PATH",
        ) from exc


def _split_sources(
    sources: Iterable[str | os.PathLike[str]],
) -> tuple[list[str], list[str | os.PathLike[str]]]:
    items = list(sources)
    urls = [str(s) for s in items if is_url(str(s))]
    files = [s for s in items if not is_url(str(s))]
    if urls and (files or len(urls) > 1):
        raise ConfigurationError(
            "give either log files and directories, or one postgresql:// table or "
            "nats:// stream, not several (each is verified as one store)",
            setting="PATH",
        )
    return urls, files


def verify_sources(
    sources: Iterable[str | os.PathLike[str]],
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Report:
    """Verify log files (like ``auditmw verify``), one PostgreSQL table or one JetStream stream.

    Args:
        sources: files and directories, or a single ``postgresql://…?table=`` or
            ``nats://host:port/STREAM`` URL.
        keys: the trusted checkpoint keys.
        mac_key: the writer's initial MAC key.
        progress: called with (bytes read, total bytes) for files.
        **options: further :func:`~auditmw.integrity.verify_files` options
            (``expected_heads``, ``as_of_ns``, ``allow_empty``, ``max_record_bytes``;
            ``digest_paths`` and ``jobs`` for files).

    Raises:
        ConfigurationError: files and a table mixed, or the table cannot be read.
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    from auditmw.integrity.options import verify_files, verify_records
    from auditmw.integrity.reader.report import Location
    from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD, capped

    urls, files = _split_sources(sources)
    if not urls:
        return verify_files(files, keys=keys, mac_key=mac_key, progress=progress, **options)
    label = store_label(urls[0])
    limit = options.get("max_record_bytes", DEFAULT_MAX_RECORD)
    records = (
        (Location(label, number), capped(line, limit))
        for number, line in enumerate(iter_store(urls[0]), 1)
    )
    wanted = ("expected_heads", "as_of_ns", "allow_empty")
    store_options = {k: v for k, v in options.items() if k in wanted}
    return verify_records(records, keys=keys, mac_key=mac_key, **store_options)


def read_events(
    sources: Iterable[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the stored events (checkpoints skipped) of files or one PostgreSQL table.

    Args:
        sources: files and directories, or a single ``postgresql://…?table=`` URL.
        progress: called with (bytes read, total bytes) for files.

    Raises:
        ConfigurationError: files and a table mixed, or the table cannot be read.
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    import orjson

    from auditmw.evidence._events import iter_events
    from auditmw.integrity.layout import CHECKPOINT_KIND

    urls, files = _split_sources(sources)
    if not urls:
        yield from iter_events(files, progress=progress)
        return
    for line in iter_store(urls[0]):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("kind") != CHECKPOINT_KIND:
            yield event
