"""Request-scoped audit context: the in-flight event's enrichments.

One :class:`RequestContext` per request lives in a ``ContextVar``; handlers add to
it with :func:`annotate` or the :func:`audited` decorator.  Shells set it before
calling the app and reset it with its token in ``finally``.  Threads started by
the framework (Starlette's threadpool, background tasks) copy the context, so they
see the same object; once the event is finished, further annotations are ignored.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from auditmw.core.canonical import valid_text

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RequestContext", "annotate", "audited", "current_context"]

logger = logging.getLogger("auditmw")

P = ParamSpec("P")
R = TypeVar("R")

MAX_ANNOTATIONS = 32
MAX_ANNOTATION_LENGTH = 256
_KEY_RE = re.compile(r"[^A-Za-z0-9_.\-]")


class RequestContext:
    """Mutable enrichments of the event being recorded for the current request."""

    __slots__ = ("action", "annotations", "event_id", "finished", "resource_id", "resource_type")

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.action: str | None = None
        self.resource_type: str | None = None
        self.resource_id: str | None = None
        self.annotations: dict[str, str] = {}
        self.finished = False


_current: ContextVar[RequestContext | None] = ContextVar("auditmw.context", default=None)


def current_context() -> RequestContext | None:
    """Return the context of the request being handled, or ``None`` outside a request."""
    return _current.get()


def _clean(value: object) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a value whose __str__ fails: annotate() never raises into the app
        text = f"<{type(value).__name__}>"
    # A filename from os.fsdecode() may hold lone surrogates, which JSON cannot encode.
    return valid_text(text[:MAX_ANNOTATION_LENGTH])


def annotate(
    *,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: object = None,
    **labels: object,
) -> bool:
    """Enrich the audit event of the current request.

    Safe to call anywhere: outside a request, or after the request's event was
    finished (e.g. from a background task), it does nothing and returns ``False``.

    Args:
        action: overrides the event's ``action`` (e.g. ``"invoice.refund"``).
        resource_type: overrides ``resource.type``.
        resource_id: sets ``resource.id`` (converted to ``str``).
        **labels: string labels added to ``annotations`` (keys restricted to
            ``[A-Za-z0-9_.-]``, values capped at 256 characters, at most 32 labels).

    Returns:
        Whether the annotation was recorded.

    .. versionadded:: 0.1.0
    """
    ctx = _current.get()
    if ctx is None or ctx.finished:
        logger.debug("auditmw.annotate() outside an open request event; ignored")
        return False
    if action is not None:
        ctx.action = _clean(action)
    if resource_type is not None:
        ctx.resource_type = _clean(resource_type)
    if resource_id is not None:
        ctx.resource_id = _clean(resource_id)
    for key, value in labels.items():
        if len(ctx.annotations) >= MAX_ANNOTATIONS and key not in ctx.annotations:
            break
        ctx.annotations[_KEY_RE.sub("_", key)[:64]] = _clean(value)
    return True


def audited(
    action: str | None = None, *, resource: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a handler's audit action and resource.

    ``resource`` is ``"type"`` or ``"type:{param}"``, where ``{param}`` names a keyword
    argument of the handler (a path parameter), e.g.
    ``@audited(action="invoice.refund", resource="invoice:{invoice_id}")``.

    Args:
        action: the event's ``action``.
        resource: the resource type, optionally with an id template.

    Raises:
        ConfigurationError: ``resource`` is not of the form ``type`` or ``type:{param}``.

    .. versionadded:: 0.1.0
    """
    from auditmw.exceptions import ConfigurationError

    resource_type, _, id_template = (resource or "").partition(":")
    if id_template and not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", id_template):
        raise ConfigurationError(
            f"audited(resource={resource!r}): use 'type' or 'type:{{param}}'", setting="resource"
        )
    param = id_template[1:-1] if id_template else None

    def apply(kwargs: dict[str, Any]) -> None:
        rid = kwargs.get(param) if param else None
        annotate(action=action, resource_type=resource_type or None, resource_id=rid)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                apply(kwargs)
                return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            apply(kwargs)
            return func(*args, **kwargs)

        return wrapper

    return decorate
