"""Trace correlation with OpenTelemetry, when it is installed.

The pipeline asks :func:`span_reader` once, when it is built: it returns ``None`` when
``opentelemetry-api`` cannot be imported (the event's ``trace`` then comes from an
inbound ``traceparent`` header only), else a function that returns the ids of the span
active in the calling context.  The shells call that function where the span they can
see is the request's span: when the request starts (OpenTelemetry middleware or
instrumentation outside auditmw) and, if none was active then, when the response
starts (OpenTelemetry inside auditmw, where the span exists only inside the app call).

Trust: a span's ids are correlation data, not evidence of anything; they are recorded
as the tracer made them.  A sampled-out (non-recording) span still has valid ids and is
recorded; an invalid span context means there is no span.  The reader never raises.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeAlias

__all__ = ["SpanIds", "SpanReader", "span_reader"]

#: ``(trace_id, span_id)`` as lower-case hex (32 and 16 digits), as in ``traceparent``.
SpanIds: TypeAlias = tuple[str, str]
#: Returns the active span's ids, or ``None`` when no valid span is active.
SpanReader: TypeAlias = Callable[[], SpanIds | None]


def span_reader() -> SpanReader | None:
    """Return a reader of the active span's ids, or ``None`` without ``opentelemetry-api``.

    Imports ``opentelemetry.trace`` only when it is installed; call it once, at set-up.

    .. versionadded:: 0.2.0
    """
    try:
        if importlib.util.find_spec("opentelemetry") is None:
            return None
        from opentelemetry import trace
    except Exception:  # absent, or broken: correlation is optional, never fatal
        return None
    invalid = trace.INVALID_SPAN
    fast = _fast_current_span()
    if fast is not None:  # the common layout: the span in two C-level lookups, no call
        var, key = fast

        def read_var() -> SpanIds | None:
            try:
                span = var.get().get(key)
                if span is invalid or span is None:  # the common case without a span
                    return None
                return _ids(span)
            except Exception:  # a broken tracer never reaches the application
                return None

        return read_var
    get_current_span: Callable[[], Any] = trace.get_current_span

    def read() -> SpanIds | None:
        try:
            span = get_current_span()
            if span is invalid or span is None:  # the common case without a span
                return None
            return _ids(span)
        except Exception:  # a broken tracer never reaches the application
            return None

    return read


def _ids(span: Any) -> SpanIds | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _fast_current_span() -> tuple[ContextVar[Any], str] | None:
    """Where OpenTelemetry keeps the active span when its context lives in a ``ContextVar``
    (its default runtime context): the variable and the key of the span in its value;
    ``None`` to use the public API instead.

    ``trace.get_current_span()`` walks four Python calls to reach the same value; the
    shells read it up to twice per request, so the shortcut keeps correlation cheap.
    A value that is not a span is judged by the reader's checks.
    """
    try:
        from opentelemetry import context
        from opentelemetry.trace import propagation

        var = getattr(getattr(context, "_RUNTIME_CONTEXT", None), "_current_context", None)
        key = getattr(propagation, "_SPAN_KEY", None)
        if not isinstance(var, ContextVar) or not isinstance(key, str):
            return None
    except Exception:  # another OpenTelemetry layout: the public API
        return None
    return var, key
