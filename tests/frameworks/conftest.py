"""Fixtures for framework tests: fresh apps per test, asyncio and trio backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditmw import AuditConfig
from auditmw.sinks import FileSink, MemorySink


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
