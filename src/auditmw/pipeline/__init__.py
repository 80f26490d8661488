"""The pipeline: from a framework-neutral exchange to one canonical event.

:mod:`.builder` decides (policy), resolves the actor (identity), builds the event
and runs the processors; :mod:`.body` captures and describes bodies when the policy
level asks; :mod:`.forwarded` resolves the client address behind trusted proxies
and the root path; :mod:`.tracing` reads the active OpenTelemetry span.  Pure and
synchronous: no I/O, no framework import.

May import: the core, configuration, identity.  Imported by the auditor and the shells.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.core.processors import REDACTED, SECRET_HEADERS, SECRET_PARAMS
from auditmw.pipeline.builder import Pipeline

__all__ = ["REDACTED", "SECRET_HEADERS", "SECRET_PARAMS", "Pipeline"]
