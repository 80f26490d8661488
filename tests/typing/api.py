"""Type-checked examples of the public API (checked by ``mypy --strict``, never run)."""

from __future__ import annotations

from auditmw import (
    Actor,
    AuditConfig,
    AuditMiddleware,
    Auditor,
    AuditWSGIMiddleware,
    AuthInfo,
    DeliveryOptions,
    DropEvent,
    Exchange,
    ServiceInfo,
    annotate,
    audited,
)
from auditmw.event_types import ActorDict, AuditEvent, TraceDict
from auditmw.sinks import FileSink, MemorySink, StdoutSink
from auditmw.testing import (
    AuditTrail,
    assert_absent,
    assert_audited,
    assert_not_audited,
    capture_events,
    make_scope,
)
from auditmw.types import ASGIApp, Event, Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A minimal ASGI app."""


class HeaderResolver:
    """A custom resolver satisfies the Resolver protocol structurally."""

    def resolve(self, exchange: Exchange) -> Actor | None:
        user = exchange.headers.get("x-user")
        if user is None:
            return None
        return Actor(id=user, type="user", auth=AuthInfo(method="session", verified=True))


def drop_health(event: Event) -> Event:
    """A processor."""
    if event.get("request", {}).get("path") == "/health":
        raise DropEvent
    return event


def build() -> ASGIApp:
    """Every configuration knob, typed."""
    config = AuditConfig(
        service=ServiceInfo("orders-api", version="1.2.3", environment="prod"),
        sinks=[FileSink("audit.jsonl", fsync="batch"), StdoutSink("stderr"), MemorySink()],
        resolvers=[HeaderResolver()],
        identity=lambda scope: None,
        trusted_proxies=["10.0.0.0/8"],
        audit_id_header=None,
        record_headers=["content-type"],
        processors=[drop_health],
        delivery=DeliveryOptions(max_queue=1000, overflow="drop_and_record"),
    )
    shared = Auditor(config)
    first: ASGIApp = AuditMiddleware(app, auditor=shared)
    return AuditMiddleware(first, config)


@audited(action="invoice.refund", resource="invoice:{invoice_id}")
async def refund(invoice_id: str) -> dict[str, str]:
    """A decorated handler keeps its signature."""
    recorded: bool = annotate(resource_id=invoice_id, ticket="T-1")
    return {"ok": str(recorded)}


def check() -> None:
    """The test helpers."""
    with capture_events() as events:
        scope: Scope = make_scope("/orders/1", method="PUT", headers={"x-user": "ada"})
        del scope
    event: AuditEvent = assert_audited(events, actor__id="ada", outcome="success")
    del event


def typed_events() -> None:
    """Captured events are typed: mypy checks the fields a test reads."""
    with capture_events() as events:
        pass
    for event in events:
        actor: ActorDict = event["actor"]
        kind: str = event["kind"]
        if "trace" in event:
            trace: TraceDict = event["trace"]
            trace_id: str = trace["trace_id"]
            del trace_id
        status: int | None = event.get("response", {}).get("status_code")
        del actor, kind, status
    found: AuditEvent = assert_audited(events, kind="http")
    assert_not_audited(events, outcome="error")
    assert_absent(events, "secret")
    del found


def plain_events(lines: list[Event], trail: AuditTrail) -> None:
    """Plain dicts (events read back from a file) still go through the helpers."""
    event: Event = assert_audited(lines, kind="http")
    assert_not_audited(lines, outcome="error")
    requests: list[AuditEvent] = trail.http()
    del event, requests


def wsgi(app: object) -> object:
    """The WSGI shell, Flask extension and Django settings, typed."""
    from auditmw.contrib.django import AuditSettings
    from auditmw.contrib.flask import Audit

    config = AuditConfig(service="orders-api")
    wrapped = AuditWSGIMiddleware(app, config)  # type: ignore[arg-type]
    audit = Audit(config=config)
    settings: AuditSettings = {"service": "orders-api"}
    del audit, settings
    return wrapped


def log_correlation() -> None:
    """The audit id on the app's log lines."""
    import logging

    import structlog

    from auditmw import current_audit_id
    from auditmw.logs import AuditIdFilter, add_audit_id

    audit_id: str | None = current_audit_id()
    handler = logging.StreamHandler()
    handler.addFilter(AuditIdFilter(default="none"))
    handler.setFormatter(logging.Formatter("%(audit_id)s %(message)s"))
    structlog.configure(processors=[add_audit_id, structlog.processors.JSONRenderer()])
    del audit_id
