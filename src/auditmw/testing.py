"""Helpers for testing applications that use auditmw (like structlog's ``testing``).

* :func:`capture_events` collects every event built in the process while active;
* :class:`~auditmw.sinks.memory.MemorySink` stores what a real sink would store;
* :func:`make_scope` / :func:`make_environ` build realistic ASGI scopes and WSGI
  environs for unit tests;
* :func:`assert_audited` checks that a matching event was recorded,
  :func:`assert_not_audited` that none was, and :func:`assert_absent` that a secret
  appears in no event.

The pytest plugin (:mod:`auditmw.pytest_plugin`) exposes ``audit_events`` and
``audit_sink`` fixtures built on these.

Events are handed out typed as :class:`~auditmw.event_types.AuditEvent` (a
``TypedDict``), so ``mypy --strict`` checks the fields a test reads; the assertion
helpers accept any mapping, so lists of plain dicts work as before.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from auditmw.core import capture as _capture
from auditmw.sinks.memory import MemorySink

if TYPE_CHECKING:
    from auditmw.core.types import Event, Scope
    from auditmw.event_types import AuditEvent

#: An event as a test holds it: an :class:`AuditEvent`, or a plain dict (read from a file).
_E = TypeVar("_E", bound=Mapping[str, Any])

__all__ = [
    "AuditTrail",
    "MemorySink",
    "assert_absent",
    "assert_audited",
    "assert_not_audited",
    "audit_trail",
    "capture_events",
    "make_environ",
    "make_scope",
]


@contextmanager
def capture_events() -> Iterator[list[AuditEvent]]:
    """Collect every audit event built in this process while the block runs.

    Lifecycle events (``audit.started`` …) are included; filter on ``kind`` if
    needed.  Events are captured when built, before delivery, so no flush is needed.

    Example::

        with capture_events() as events:
            client.get("/orders/1")
        assert events[-1]["action"] == "orders.read"

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 the events are typed as :class:`~auditmw.event_types.AuditEvent`.
    """
    captured: list[Event] = []
    _capture.active.append(captured)
    try:
        # The pipeline builds events of exactly this form (a test checks the schema).
        yield cast("list[AuditEvent]", captured)
    finally:
        _capture.active.remove(captured)


class AuditTrail:
    """What :func:`audit_trail` collected: the events built, and the sink standing in.

    Args:
        events: every event built while the block ran (as :func:`capture_events`).
        sink: the :class:`MemorySink` that replaced every configuration's sinks.

    .. versionadded:: 0.2.0
    """

    def __init__(self, events: list[AuditEvent], sink: MemorySink) -> None:
        self.events = events
        self.sink = sink

    def http(self) -> list[AuditEvent]:
        """The request events (``kind`` ``http`` or ``websocket``), lifecycle events left out."""
        return [e for e in self.events if e.get("kind") in ("http", "websocket")]


@contextmanager
def audit_trail() -> Iterator[AuditTrail]:
    """Capture an app's events and keep them out of its real sinks while the block runs.

    Every :class:`~auditmw.config.AuditConfig` built inside the block (from
    ``AuditMiddleware``, Django settings, Flask config, a policy file …) has its sinks
    replaced by one :class:`MemorySink`, so a test never writes into the app's real
    log, database or collector.  Build the app inside the block.

    .. versionadded:: 0.2.0
    """
    from auditmw.config import options as config

    sink = MemorySink()
    with capture_events() as events:
        config._SINK_OVERRIDE.append(sink)
        try:
            yield AuditTrail(events, sink)
        finally:
            config._SINK_OVERRIDE.remove(sink)


def _get(event: Mapping[str, Any], dotted: str) -> Any:
    value: Any = event
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def assert_audited(events: Sequence[_E], **expected: Any) -> _E:
    """Assert that one of ``events`` matches every expectation; return it.

    Keys are dotted paths with ``__`` or ``.`` separators (``actor__id="u1"``,
    ``outcome="denied"``, ``request__route="/orders/{order_id}"``).

    Raises:
        AssertionError: no event matches; the message lists the closest candidates.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 returns the matching event with the type ``events`` have.
    """
    wanted = {key.replace("__", "."): value for key, value in expected.items()}
    for event in events:
        if all(_get(event, key) == value for key, value in wanted.items()):
            return event
    summary = [
        {key: _get(event, key) for key in wanted}
        for event in events
        if event.get("kind") in ("http", "websocket")
    ]
    raise AssertionError(f"no audit event matches {wanted!r}; recorded: {summary!r}")


def assert_not_audited(events: Sequence[Mapping[str, Any]], **expected: Any) -> None:
    """Assert that no event of ``events`` matches every expectation.

    Keys are dotted paths with ``__`` or ``.`` separators, as for :func:`assert_audited`.

    Raises:
        AssertionError: an event matches; the message names it by id and action.

    .. versionadded:: 0.1.0
    """
    wanted = {key.replace("__", "."): value for key, value in expected.items()}
    for event in events:
        if all(_get(event, key) == value for key, value in wanted.items()):
            raise AssertionError(
                f"audit event {event.get('event_id')!r} ({event.get('action')!r}) "
                f"matches {wanted!r}"
            )


def assert_absent(events: Sequence[Mapping[str, Any]], *secrets: str | bytes) -> None:
    """Assert that none of ``secrets`` appears anywhere in the serialized ``events``.

    Events are serialized as stored (canonical JSON), so a secret hidden in a header,
    a query string or a body is found.  The failure message does not repeat the secret.

    Raises:
        AssertionError: a secret appears; the message names the event and the secret's
            position in ``secrets``.

    .. versionadded:: 0.1.0
    """
    from auditmw.core.canonical import dumps

    needles = [s.encode() if isinstance(s, str) else s for s in secrets]
    for event in events:
        data = dumps(event)
        for index, needle in enumerate(needles):
            if needle and needle in data:
                raise AssertionError(
                    f"secret #{index} (of {len(needles)}) appears in audit event "
                    f"{event.get('event_id')!r} ({event.get('action')!r})"
                )


def make_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    query_string: str = "",
    client: tuple[str, int] = ("127.0.0.1", 50000),
    type: str = "http",
) -> Scope:
    """Build a realistic ASGI HTTP (or WebSocket) scope.

    .. versionadded:: 0.1.0
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]
    if not any(k == b"host" for k, _ in raw):
        raw.insert(0, (b"host", b"testserver"))
    return {
        "type": type,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http" if type == "http" else "ws",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "root_path": "",
        "query_string": query_string.encode("latin-1"),
        "headers": raw,
        "client": client,
        "server": ("testserver", 80),
        "state": {},
    }


def make_environ(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query_string: str = "",
    body: bytes = b"",
    remote_addr: str = "127.0.0.1",
) -> dict[str, Any]:
    """Build a realistic WSGI environ (like werkzeug's ``create_environ``).

    .. versionadded:: 0.1.0
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query_string,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    return environ
