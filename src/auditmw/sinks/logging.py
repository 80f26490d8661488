"""Bridge events to the standard library's ``logging`` or to structlog.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditmw.sinks.base import Batch

__all__ = ["LoggingSink", "StructlogSink"]

_LEVELS = {
    "info": logging.INFO,
    "low": logging.INFO,
    "medium": logging.WARNING,
    "high": logging.ERROR,
}


class LoggingSink:
    """Logs each event as one record on a stdlib logger.

    The message is the stored JSON line; the parsed event is attached as the
    ``audit_event`` attribute for structured handlers.  The record level follows
    the event's severity (info/low → INFO, medium → WARNING, high → ERROR).

    Args:
        logger: a logger or logger name (default ``"auditmw.events"``).
        format: the stored format.

    .. versionadded:: 0.1.0
    """

    def __init__(self, logger: logging.Logger | str = "auditmw.events", *, format: str = "auditmw"):
        self.format = format
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def emit(self, batch: Batch) -> None:
        """Log every record of the batch."""
        log = self.logger
        for event, line in zip(batch.events, batch.lines, strict=True):
            level = _LEVELS.get(event.get("severity", "info"), logging.INFO)
            if log.isEnabledFor(level):
                log.log(level, "%s", line.decode("utf-8"), extra={"audit_event": event})

    def close(self) -> None:
        """Nothing to release."""


class StructlogSink:
    """Hands each event to the application's structlog configuration.

    Each event becomes one ``logger.info("audit", **fields)`` call (``warning`` /
    ``error`` by severity) with the event's top-level fields as key-value pairs.

    Args:
        logger: a structlog bound logger; default ``structlog.get_logger("auditmw")``.
        event_name: the log message.

    .. versionadded:: 0.1.0
    """

    format = "auditmw"

    def __init__(self, logger: Any = None, *, event_name: str = "audit") -> None:
        import structlog

        self.logger = logger if logger is not None else structlog.get_logger("auditmw")
        self.event_name = event_name

    def emit(self, batch: Batch) -> None:
        """Log every event of the batch through structlog."""
        for event in batch.events:
            severity = event.get("severity", "info")
            method = (
                "error" if severity == "high" else "warning" if severity == "medium" else "info"
            )
            fields = {("event_kind" if k == "event" else k): v for k, v in event.items()}
            getattr(self.logger, method)(self.event_name, **fields)

    def close(self) -> None:
        """Nothing to release."""
