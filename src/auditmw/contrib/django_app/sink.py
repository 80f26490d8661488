"""``DjangoSink``: store audit records through Django's own database connection.

The delivery thread calls :meth:`DjangoSink.emit` with each batch; the batch is
inserted with ``bulk_create`` in one transaction on the connection Django gives that
thread (Django connections are per thread), and that connection is then released
as Django releases a request's (``CONN_MAX_AGE``), and closed with the sink.  A
replayed record (same ``event_id``) is ignored, as in
:class:`~auditmw.sinks.postgres.PostgresSink`.  Each ``line`` is the exact text the
integrity chain covers.

Requires ``"auditmw.contrib.django_app"`` in ``INSTALLED_APPS`` and its migration
applied; until it is, batches fail as ``audit.sink_failed`` naming ``migrate`` and
wait (spooled or in memory, per the delivery options) to be written once it is.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from auditmw.exceptions import SinkError, SinkUnavailableError

if TYPE_CHECKING:
    from auditmw.contrib.django_app.models import AuditRecord
    from auditmw.core.records import Batch
    from auditmw.core.types import Event

__all__ = ["DjangoSink", "record_for"]

#: Rows per INSERT statement (SQLite allows at most 999 parameters in old builds).
_INSERT_ROWS = 50


class DjangoSink:
    """Stores each batch in the ``auditmw_events`` table of a Django database, in one transaction.

    Args:
        using: the database alias (``DATABASES`` key) to write to; a separate alias
            lets the sink log in as an INSERT-only role (``auditmw postgres init``).
        format: the stored format of ``line``.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        *,
        using: str = "default",
        format: str = "auditmw",
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        self.using = using
        self.format = format
        self.delivery_mode = delivery_mode

    def emit(self, batch: Batch) -> None:
        """Insert the batch in one transaction; returns once it is committed.

        Raises:
            SinkUnavailableError: the database cannot be reached, is locked, or the
                table is missing (``manage.py migrate`` not run); retried.
            SinkError: the database refused the rows (``retryable=False``).
        """
        if not batch:
            return
        from django.db import DatabaseError, DataError, IntegrityError, connections

        connection = connections[self.using]
        try:
            connection.close_if_unusable_or_obsolete()
            self._insert(batch)
        except (IntegrityError, DataError) as exc:
            raise SinkError(f"DjangoSink: {type(exc).__name__}", retryable=False) from exc
        except DatabaseError as exc:
            connection.close()  # a broken connection must not serve the retry
            raise SinkUnavailableError(self._explain(exc)) from exc
        finally:
            connection.close_if_unusable_or_obsolete()

    def _insert(self, batch: Batch) -> None:
        from django.db import transaction

        from auditmw.contrib.django_app.models import AuditRecord

        rows = [record_for(e, line) for e, line in zip(batch.events, batch.lines, strict=True)]
        with transaction.atomic(using=self.using):
            AuditRecord.objects.using(self.using).bulk_create(
                rows, batch_size=_INSERT_ROWS, ignore_conflicts=True
            )

    @staticmethod
    def _explain(exc: Exception) -> str:
        from auditmw.contrib.django_app.models import TABLE

        # The driver's first line names the object and the cause (never a password).
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        message = f"DjangoSink: {type(exc).__name__}: {detail}"
        if TABLE in detail and ("no such table" in detail or "does not exist" in detail):
            message += f"; run 'manage.py migrate auditmw_log' to create table {TABLE}"
        return message

    def close(self) -> None:
        """Close this thread's connection to the database."""
        from django.db import connections

        connections[self.using].close()

    def __repr__(self) -> str:
        return f"DjangoSink(using={self.using!r})"


def record_for(event: Event, line: bytes) -> AuditRecord:
    """Build the (unsaved) row of one stored record: ``line`` plus its indexed fields.

    The columns are copies for the admin's filters, never trusted by the verifier, so
    they never cost a record its place: values are cut to their column's size, an
    unusable ``time`` becomes the storing time, and a missing ``event_id`` is derived
    from the line (stable, so a replay is still recognised).  Checkpoints carry their
    chain in ``checkpoint.chain_id`` and have no ``seq``.

    .. versionadded:: 0.2.0
    """
    from auditmw.contrib.django_app.models import AuditRecord

    chained = event.get("integrity") or {}
    integrity = chained or event.get("checkpoint") or {}
    response = event.get("response") or {}
    actor = event.get("actor") or {}
    status, seq = response.get("status_code"), chained.get("seq")
    return AuditRecord(
        event_id=_event_id(event.get("event_id"), line),
        time=_time(event.get("time")),
        kind=_text(event.get("kind", "http"), 64),
        actor_id=_text(actor.get("id"), 512) if isinstance(actor, dict) else None,
        action=_text(event.get("action", ""), 255),
        outcome=_text(event.get("outcome", ""), 32),
        status=status if _is_int(status) else None,
        chain_id=_text(integrity.get("chain_id"), 64),
        seq=seq if _is_int(seq) else None,
        line=line.decode("utf-8"),
    )


def _text(value: Any, size: int) -> Any:
    return None if value is None else str(value)[:size]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def _event_id(value: Any, line: bytes) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, "auditmw:" + hashlib.sha256(line).hexdigest())


def _time(value: Any) -> datetime:
    from django.conf import settings
    from django.utils import timezone

    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        stamp = datetime.now(UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    # With USE_TZ = False Django stores naive datetimes in the project's time zone.
    return stamp if settings.USE_TZ else timezone.make_naive(stamp)
