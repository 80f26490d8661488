"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

* ``audit_events`` — a list collecting every event built during the test
  (see :func:`auditmw.testing.capture_events`);
* ``audit_sink`` — a fresh :class:`~auditmw.sinks.memory.MemorySink`;
* ``audit_trail`` — like ``audit_events``, and every configuration built during the
  test has its sinks replaced by one memory sink (see :func:`auditmw.testing.audit_trail`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from auditmw.testing import AuditTrail, MemorySink, audit_trail, capture_events

if TYPE_CHECKING:
    from collections.abc import Iterator

    from auditmw.event_types import AuditEvent


def pytest_configure(config: pytest.Config) -> None:
    """Silence :class:`~auditmw.config.NoSinksWarning` in tests (events are captured there)."""
    config.addinivalue_line("filterwarnings", "ignore::auditmw.config.NoSinksWarning")


@pytest.fixture
def audit_events() -> Iterator[list[AuditEvent]]:
    """Every audit event built in this process during the test.

    The events are typed as :class:`~auditmw.event_types.AuditEvent`.
    """
    with capture_events() as events:
        yield events


@pytest.fixture
def audit_sink() -> MemorySink:
    """A fresh in-memory sink to put in ``AuditConfig(sinks=[...])``."""
    return MemorySink()


@pytest.fixture(name="audit_trail")
def audit_trail_fixture() -> Iterator[AuditTrail]:
    """The app's audit events, its configured sinks replaced so nothing real is written.

    .. versionadded:: 0.2.0
    """
    with audit_trail() as trail:
        yield trail
