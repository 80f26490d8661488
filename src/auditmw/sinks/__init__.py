"""Sinks: where events go.  Each sink lives in its own module, imported only when used.

``from auditmw.sinks import FileSink`` works for every sink; the driver behind it (if
any) is imported when the sink class is first looked up, and a missing driver raises
:class:`~auditmw.exceptions.MissingDependencyError` naming the extra to install.

May import: the core, :mod:`auditmw.formats` and :mod:`auditmw.integrity` (encryption
at rest for files); never delivery, configuration or the shells.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from auditmw.sinks.file import FileSink
    from auditmw.sinks.logging import LoggingSink
    from auditmw.sinks.memory import MemorySink
    from auditmw.sinks.stdout import StdoutSink

__all__ = ["Batch", "FileSink", "LoggingSink", "MemorySink", "StdoutSink"]

#: Public sink name -> defining module.  New sink modules register here.
_SINKS: dict[str, str] = {
    "FileSink": "auditmw.sinks.file",
    "HTTPSink": "auditmw.sinks.http",
    "LoggingSink": "auditmw.sinks.logging",
    "MemorySink": "auditmw.sinks.memory",
    "NATSSink": "auditmw.sinks.nats",
    "OTLPSink": "auditmw.sinks.otlp",
    "PostgresSink": "auditmw.sinks.postgres",
    "StdoutSink": "auditmw.sinks.stdout",
    "StructlogSink": "auditmw.sinks.logging",
    "SyslogSink": "auditmw.sinks.syslog",
}


def __getattr__(name: str) -> Any:
    module = _SINKS.get(name)
    if module is None:
        raise AttributeError(f"module 'auditmw.sinks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
