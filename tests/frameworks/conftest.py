"""Fixtures for the framework tests: auditors that are closed after each test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from auditmw.auditor import Auditor
from auditmw.config import AuditConfig
from auditmw.testing import MemorySink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def make_auditor() -> Iterator[Callable[..., Auditor]]:
    """Build auditors with a memory sink (``service="test"``); close them at teardown."""
    made: list[Auditor] = []

    def make(**options: Any) -> Auditor:
        options.setdefault("service", "test")
        options.setdefault("sinks", [MemorySink()])
        auditor = Auditor(AuditConfig(**options))
        made.append(auditor)
        return auditor

    yield make
    for auditor in made:
        auditor.close(timeout=5)
