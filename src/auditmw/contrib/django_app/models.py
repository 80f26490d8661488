"""The append-only model of stored audit records.

One row per stored record (events and checkpoints) in table ``auditmw_events``:
``line`` holds the exact bytes the integrity chain covers (the verifier reads only
it, in ``id`` order); the other columns are copies of event fields, indexed for the
admin's filters, and are never trusted by the verifier.

Append-only in Python: saving an existing row, ``delete()``, and a queryset's
``update()``, ``delete()`` and ``bulk_update()`` raise :class:`AppendOnlyError`.
On PostgreSQL the migration also installs the triggers of
:class:`~auditmw.sinks.postgres.PostgresSink`, which refuse ``UPDATE``, ``DELETE``
and ``TRUNCATE`` to every role, raw SQL included.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import orjson
from django.db import models

from auditmw.exceptions import AuditError

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = ["TABLE", "AppendOnlyError", "AuditRecord", "AuditRecordQuerySet"]

#: The table name; the PostgreSQL triggers and ``auditmw postgres init --table`` use it.
TABLE = "auditmw_events"


class AppendOnlyError(AuditError):
    """An audit record was to be changed or deleted; the trail is append-only.

    .. versionadded:: 0.2.0
    """


def _refuse(what: str) -> NoReturn:
    raise AppendOnlyError(
        f"auditmw: {what} on the append-only audit trail is refused; records are only added "
        "(by DjangoSink) and never changed or deleted"
    )


class AuditRecordQuerySet(models.QuerySet["AuditRecord"]):
    """A queryset that reads and inserts, and refuses ``update``/``delete``/``bulk_update``.

    .. versionadded:: 0.2.0
    """

    def update(self, **kwargs: Any) -> NoReturn:
        """Refused: raises :class:`AppendOnlyError`."""
        _refuse("UPDATE")

    def delete(self) -> NoReturn:
        """Refused: raises :class:`AppendOnlyError`."""
        _refuse("DELETE")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        """Refused: raises :class:`AppendOnlyError`."""
        _refuse("UPDATE")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: it may update; raises :class:`AppendOnlyError`."""
        _refuse("update_or_create")


class AuditRecord(models.Model):
    """One stored audit record (an event or a checkpoint), never changed once written.

    .. versionadded:: 0.2.0
    """

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    event_id: models.UUIDField[UUID | str, UUID] = models.UUIDField(unique=True, editable=False)
    time: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    kind: models.CharField[str, str] = models.CharField(max_length=64)
    # At most 512 characters (cut by the sink): a b-tree index entry must fit a page.
    actor_id: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    action: models.CharField[str, str] = models.CharField(max_length=255)
    outcome: models.CharField[str, str] = models.CharField(max_length=32)
    status: models.IntegerField[int | None, int | None] = models.IntegerField(null=True, blank=True)
    chain_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=64, null=True, blank=True
    )
    seq: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(
        null=True, blank=True
    )
    stored_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    line: models.TextField[str, str] = models.TextField()

    objects: ClassVar[models.Manager[AuditRecord]] = AuditRecordQuerySet.as_manager()

    class Meta:
        db_table = TABLE
        # Django's internal paths (related objects, refresh) use the base manager: the
        # same refusing queryset.
        base_manager_name = "objects"
        ordering = ("-id",)
        verbose_name = "audit record"
        # The first four are named as PostgresSink's schema names them, so that its
        # DDL (run by the migration on PostgreSQL) finds them and adds none.
        indexes = (
            models.Index(fields=["time"], name=f"{TABLE}_time_idx"),
            models.Index(fields=["actor_id", "time"], name=f"{TABLE}_actor_idx"),
            models.Index(fields=["action", "time"], name=f"{TABLE}_action_idx"),
            models.Index(fields=["outcome", "time"], name=f"{TABLE}_outcome_idx"),
            models.Index(fields=["status", "time"], name=f"{TABLE}_status_idx"),
            models.Index(fields=["kind", "time"], name=f"{TABLE}_kind_idx"),
            models.Index(fields=["chain_id", "id"], name=f"{TABLE}_chain_idx"),
        )

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert a new record; saving a stored one raises :class:`AppendOnlyError`."""
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            _refuse("UPDATE")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: raises :class:`AppendOnlyError`."""
        _refuse("DELETE")

    def document(self) -> dict[str, Any]:
        """The stored record parsed (``{}`` when the stored line is not a JSON object)."""
        try:
            parsed = orjson.loads(self.line)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
