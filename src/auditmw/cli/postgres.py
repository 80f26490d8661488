"""``auditmw postgres init``: create the audit table and least-privilege roles.

What it trusts: the DSN given (normally a superuser or the database owner, used once
by an operator).  The roles it creates get the minimum an audit trail needs:

* the *writer* may ``INSERT`` (and use the identity sequence) and read the
  ``event_id`` column, which ``ON CONFLICT (event_id) DO NOTHING`` needs; nothing else;
* the *reader* may ``SELECT``, nothing else;
* neither may ``UPDATE``, ``DELETE`` or ``TRUNCATE`` (no grant, and the table's
  triggers refuse those statements even for the owner).

The roles are created with ``LOGIN`` and no password; set one (or use certificate
authentication) with your usual tooling.  Do not use this for a shared role that
already holds other grants: ``init`` revokes every privilege on the table first.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditmw.cli._output import error
from auditmw.core.optional import require
from auditmw.exceptions import ConfigurationError
from auditmw.sinks.postgres import _NAME, check_table_name, schema_sql

if TYPE_CHECKING:
    import argparse

__all__ = ["init_database", "register"]


def register(subparsers: Any) -> None:
    """Add ``postgres`` and its ``init`` sub-command to the CLI."""
    parser = subparsers.add_parser("postgres", help="set up the PostgreSQL audit table and roles")
    sub = parser.add_subparsers(dest="postgres_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="create the table, a writer role and a reader role")
    init.add_argument("dsn", metavar="DSN", help="libpq connection string of an admin/owner")
    init.add_argument("--table", default="audit_events")
    init.add_argument("--writer-role", default="auditmw_writer", metavar="ROLE")
    init.add_argument("--reader-role", default="auditmw_reader", metavar="ROLE")
    init.set_defaults(func=_init)


def init_database(conn: Any, table: str, *, writer_role: str, reader_role: str) -> None:
    """Create ``table`` and grant ``writer_role`` INSERT only and ``reader_role`` SELECT only.

    Runs in one transaction on the psycopg connection ``conn``; idempotent.

    Args:
        conn: a synchronous psycopg connection (not in autocommit mode is fine).
        table: the table (``name`` or ``schema.name``).
        writer_role: the role the application's :class:`PostgresSink` logs in as.
        reader_role: the role auditors and ``auditmw verify`` read with.

    Raises:
        ConfigurationError: a table or role name is not a plain identifier.

    .. versionadded:: 0.1.0
    """
    sql = require("psycopg", extra="postgres", feature="auditmw postgres init").sql
    parts = _check_names(table, writer_role, reader_role)
    t = sql.Identifier(*parts)
    w, r = sql.Identifier(writer_role), sql.Identifier(reader_role)
    schema = sql.Identifier(parts[0]) if len(parts) == 2 else sql.SQL("public")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
        conn.execute(schema_sql(table))
        for role in (writer_role, reader_role):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        # Start from nothing, so a re-run also removes privileges granted by hand.
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}, {}").format(t, w, r))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(schema, w, r))
        conn.execute(sql.SQL("GRANT INSERT ON TABLE {} TO {}").format(t, w))
        # ON CONFLICT (event_id) DO NOTHING (replays are ignored) must read that one column.
        conn.execute(sql.SQL("GRANT SELECT (event_id) ON TABLE {} TO {}").format(t, w))
        conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(t, r))
        row = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        if row and row[0]:
            seq = sql.SQL(row[0])  # already quoted by pg_get_serial_sequence
            conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM PUBLIC, {}").format(seq, r))
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(seq, w))


def _check_names(table: str, writer_role: str, reader_role: str) -> list[str]:
    parts = check_table_name(table)
    for setting, role in (("--writer-role", writer_role), ("--reader-role", reader_role)):
        if not _NAME.match(role):
            raise ConfigurationError(
                f"{setting} must be a plain identifier (letters, digits, _), got {role!r}",
                setting=setting,
            )
    if writer_role == reader_role:
        raise ConfigurationError(
            "--writer-role and --reader-role must differ: one role must not both write and read",
            setting="--reader-role",
        )
    return parts


def _init(args: argparse.Namespace) -> int:
    try:
        psycopg = require("psycopg", extra="postgres", feature="auditmw postgres init")
        _check_names(args.table, args.writer_role, args.reader_role)  # before connecting
    except ConfigurationError as exc:  # MissingDependencyError names the extra
        return error("postgres init", exc)
    try:
        with psycopg.connect(args.dsn) as conn:
            init_database(
                conn, args.table, writer_role=args.writer_role, reader_role=args.reader_role
            )
    except ConfigurationError as exc:
        return error("postgres init", exc)
    except psycopg.Error as exc:
        # The server's message names the object and the missing privilege; never the DSN.
        return error("postgres init", f"{type(exc).__name__}: {str(exc).strip()}")
    print(
        f"ok: table {args.table}; {args.writer_role} may INSERT only, "
        f"{args.reader_role} may SELECT only; UPDATE/DELETE/TRUNCATE refused"
    )
    return 0
