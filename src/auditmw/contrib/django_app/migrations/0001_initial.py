"""Create the append-only ``auditmw_events`` table and the indexes of the admin's filters.

The first four indexes carry the names :class:`~auditmw.sinks.postgres.PostgresSink`'s
DDL gives them, so that ``0002_protect`` (and ``auditmw postgres init``) add none.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations, models

TABLE = "auditmw_events"


def _index(name: str, *fields: str) -> models.Index:
    return models.Index(fields=list(fields), name=f"{TABLE}_{name}_idx")


class Migration(migrations.Migration):
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[Any]] = [
        migrations.CreateModel(
            name="AuditRecord",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_id", models.UUIDField(editable=False, unique=True)),
                ("time", models.DateTimeField()),
                ("kind", models.CharField(max_length=64)),
                ("actor_id", models.TextField(blank=True, null=True)),
                ("action", models.CharField(max_length=255)),
                ("outcome", models.CharField(max_length=32)),
                ("status", models.IntegerField(blank=True, null=True)),
                ("chain_id", models.CharField(blank=True, max_length=64, null=True)),
                ("seq", models.BigIntegerField(blank=True, null=True)),
                ("stored_at", models.DateTimeField(auto_now_add=True)),
                ("line", models.TextField()),
            ],
            options={
                "verbose_name": "audit record",
                "base_manager_name": "objects",
                "db_table": TABLE,
                "ordering": ("-id",),
                "indexes": [
                    _index("time", "time"),
                    _index("actor", "actor_id", "time"),
                    _index("action", "action", "time"),
                    _index("outcome", "outcome", "time"),
                    _index("status", "status", "time"),
                    _index("kind", "kind", "time"),
                    _index("chain", "chain_id", "id"),
                ],
            },
        ),
    ]
