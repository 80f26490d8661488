"""Put the audit id on the application's own log lines.

The audit id is the ``event_id`` of the request's audit event, the value sent back in
the ``Audit-Id`` response header.  With it on every log line written while a request
is handled, an incident responder goes from an audit record to the application's logs
of the same request, and back.

Three ways to read it, all backed by the request's context variable, so they work in
async handlers, in sync handlers run in a threadpool (Starlette, FastAPI, Django's
``sync_to_async``), in background tasks and in streamed response generators:

* :func:`current_audit_id` returns it, or ``None`` outside a request;
* :class:`AuditIdFilter` adds ``record.audit_id`` to stdlib :mod:`logging` records;
* :func:`add_audit_id` is a structlog processor adding ``audit_id`` to the event dict.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from auditmw.core.context import current_context

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["AuditIdFilter", "add_audit_id", "current_audit_id"]


def current_audit_id() -> str | None:
    """Return the audit id (event id) of the request being handled, or ``None``.

    Background tasks and streamed bodies that run after the response started still see
    the id of the request that started them.

    .. versionadded:: 0.2.0
    """
    context = current_context()
    return None if context is None else context.event_id


class AuditIdFilter(logging.Filter):
    """A logging filter that sets ``record.audit_id`` and never drops a record.

    Use it in a handler's ``filters`` and ``%(audit_id)s`` in its format; outside a
    request the attribute holds ``default``.  A record that already has ``audit_id``
    (passed in ``extra=``) keeps it.

    Args:
        name: passed to :class:`logging.Filter`.
        default: the value outside a request (``"-"``, like an access log's empty field).

    .. versionadded:: 0.2.0
    """

    def __init__(self, name: str = "", default: str = "-") -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``audit_id`` to ``record``; always keep the record."""
        if not hasattr(record, "audit_id"):
            audit_id = current_audit_id()
            record.audit_id = self.default if audit_id is None else audit_id
        return True


def add_audit_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor adding ``audit_id`` during a request (nothing outside one).

    A value already bound under ``audit_id`` wins.

    .. versionadded:: 0.2.0
    """
    if "audit_id" not in event_dict:
        audit_id = current_audit_id()
        if audit_id is not None:
            event_dict["audit_id"] = audit_id
    return event_dict
