"""The pytest example of docs/evidence.md, as written there."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware
from auditmw.sinks import MemorySink
from auditmw.testing import assert_absent, assert_audited, assert_not_audited, capture_events

app = FastAPI()
app.add_middleware(AuditMiddleware, config=AuditConfig(service="orders", sinks=[MemorySink()]))


@app.delete("/orders/{order_id}")
async def delete_order(order_id: int) -> None:
    raise HTTPException(status_code=403, detail="only admins delete orders")


def test_delete_is_denied_and_audited() -> None:
    """A denied delete is audited as denied, and the bearer token is nowhere in it."""
    client = TestClient(app)
    with capture_events() as events:
        client.delete("/orders/1", headers={"authorization": "Bearer s3cret"})
    assert_audited(events, action="orders.delete", outcome="denied", resource__id="1")
    assert_not_audited(events, kind="http", outcome="success")
    assert_absent(events, "s3cret")
