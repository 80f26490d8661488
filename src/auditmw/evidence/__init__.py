"""Evidence for auditors: scenario tests, queries, an HTML report and a readiness check.

* :mod:`auditmw.evidence.scenarios` drives an app in-process and checks its events;
* :mod:`auditmw.evidence.query` filters stored events (files, rotated and gzipped);
* :mod:`auditmw.evidence.report` renders a self-contained, verified HTML report;
* :mod:`auditmw.evidence.readiness` runs the compliance checklist for CI.

May import: the integrity reader, sinks, :mod:`auditmw.testing` and below; never the
command line, which imports it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.evidence._events import get_path, iter_events, parse_time
from auditmw.evidence.query import EventFilter, query_events
from auditmw.evidence.readiness import Check, Readiness, check_readiness
from auditmw.evidence.report import render_report, summarize
from auditmw.evidence.scenarios import ScenarioResult, load_scenarios, run_scenarios
from auditmw.evidence.schema import validate_event
from auditmw.evidence.summary import EvidenceSummary

__all__ = [
    "Check",
    "EventFilter",
    "EvidenceSummary",
    "Readiness",
    "ScenarioResult",
    "check_readiness",
    "get_path",
    "iter_events",
    "load_scenarios",
    "parse_time",
    "query_events",
    "render_report",
    "run_scenarios",
    "summarize",
    "validate_event",
]
