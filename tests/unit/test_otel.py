"""The span reader's shortcut reads the same span as OpenTelemetry's public API."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider

from auditmw.pipeline.tracing import _fast_current_span, span_reader


@pytest.fixture
def tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("auditmw-test")


class TestShortcut:
    def test_same_span_as_the_public_api(self, tracer: trace.Tracer) -> None:
        """Inside a span the shortcut returns the very span get_current_span() returns."""
        fast = _fast_current_span()
        assert fast is not None
        var, key = fast
        with tracer.start_as_current_span("request") as span:
            assert var.get().get(key) is trace.get_current_span() is span
        assert var.get().get(key) is None  # outside: no span (the public API: INVALID_SPAN)

    def test_reader_gives_the_span_ids(self, tracer: trace.Tracer) -> None:
        """The reader turns the active span into hex ids, and gives None outside a span."""
        read = span_reader()
        assert read is not None
        assert read() is None
        with tracer.start_as_current_span("request") as span:
            ctx = span.get_span_context()
            assert read() == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")

    def test_other_context_layout_turns_the_shortcut_off(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A runtime context that is not ContextVar-based: no shortcut (the API is used)."""
        monkeypatch.setattr(context, "_RUNTIME_CONTEXT", object())
        assert _fast_current_span() is None

    def test_public_api_reader_gives_the_same_ids(
        self, tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the shortcut the reader goes through get_current_span(): same ids."""
        monkeypatch.setattr(context, "_RUNTIME_CONTEXT", object())
        read = span_reader()
        assert read is not None
        monkeypatch.undo()
        assert read() is None
        with tracer.start_as_current_span("request") as span:
            ctx = span.get_span_context()
            assert read() == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
