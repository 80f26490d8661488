"""Where ``auditmw query`` reads from besides files: a PostgreSQL table.

``postgresql://user@host/db?table=audit_events`` (or ``postgres://``) reads the
``line`` column of a table written by :class:`~auditmw.sinks.PostgresSink`, in
insertion (``id``) order, through a server-side cursor, so the table is streamed.
The time bounds are pushed down to SQL (the ``time`` column is indexed); every other
criterion is applied to the stored line, exactly as for files.

Trust: rows are read as stored; the table's triggers make it append-only, but only
``auditmw verify`` over the lines proves nothing was changed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from auditmw.exceptions import ConfigurationError
from auditmw.sinks.base import require

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["is_url", "iter_postgres"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEMES = ("postgres://", "postgresql://")


def is_url(source: str) -> bool:
    """Whether ``source`` names a database rather than a file.

    .. versionadded:: 0.1.0
    """
    return source.startswith(_SCHEMES)


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
