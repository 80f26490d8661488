"""On PostgreSQL, install the PostgreSQL sink's refuse-change triggers on ``auditmw_events``.

The DDL is :class:`~auditmw.sinks.postgres.PostgresSink`'s own
(:func:`~auditmw.sinks.postgres.schema_sql`): ``UPDATE``, ``DELETE`` and ``TRUNCATE``
are refused to every role, raw SQL included.  Its ``CREATE ... IF NOT EXISTS``
statements find the table and the indexes ``0001_initial`` created under the same
names.  A separate migration, because Django creates a model's indexes only at the end
of the migration that creates it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations

TABLE = "auditmw_events"


def protect(apps: Any, schema_editor: Any) -> None:
    """Install the PostgreSQL sink's triggers (PostgreSQL only; needs psycopg 3)."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    from auditmw.sinks.postgres import schema_sql

    with connection.cursor() as cursor:
        raw = getattr(cursor.cursor, "connection", None)
        cursor.execute(schema_sql(TABLE).as_string(raw))


class Migration(migrations.Migration):
    dependencies: ClassVar[list[tuple[str, str]]] = [("auditmw_log", "0001_initial")]

    operations: ClassVar[list[Any]] = [
        migrations.RunPython(protect, migrations.RunPython.noop, elidable=False),
    ]
