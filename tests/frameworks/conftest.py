"""Fixtures for framework tests: fresh apps per test, asyncio and trio backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from auditmw import AuditConfig
from auditmw.auditor import Auditor
from auditmw.sinks import FileSink, MemorySink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run async tests on asyncio and on trio."""
    backend: str = request.param
    return backend


@pytest.fixture
def jsonl_path(tmp_path: Path) -> Path:
    """Where the FileSink of a test writes."""
    return tmp_path / "audit.jsonl"


@pytest.fixture
def memory_sink() -> MemorySink:
    """A fresh memory sink."""
    return MemorySink()


@pytest.fixture
def audit_config(memory_sink: MemorySink, jsonl_path: Path) -> AuditConfig:
    """A config writing to a memory sink and a JSONL file, with a fast flush."""
    from auditmw.config import DeliveryOptions

    return AuditConfig(
        service="orders-api",
        sinks=[memory_sink, FileSink(jsonl_path)],
        delivery=DeliveryOptions(max_wait_ms=5),
    )


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
