"""AuditMiddleware through real FastAPI apps: handlers, enrichment, background tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi import BackgroundTasks, FastAPI, HTTPException
from fastapi.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware, annotate, audited
from auditmw.testing import assert_audited
from auditmw.types import Event


@pytest.fixture
def make_app(audit_config: AuditConfig) -> Callable[[], FastAPI]:
    """Build a fresh FastAPI app behind AuditMiddleware."""

    def factory() -> FastAPI:
        app = FastAPI()
        app.add_middleware(AuditMiddleware, config=audit_config)
        return app

    return factory


class TestEnrichment:
    def test_annotate_in_async_handler(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """annotate() in an async handler sets action, resource and labels."""
        app = make_app()

        @app.post("/invoices/{invoice_id}/refund")
        async def refund(invoice_id: str) -> dict[str, str]:
            assert annotate(
                action="invoice.refund",
                resource_type="invoice",
                resource_id=invoice_id,
                ticket="T-9",
            )
            return {"ok": invoice_id}

        with TestClient(app) as client:
            assert client.post("/invoices/inv-1/refund").status_code == 200
        event = assert_audited(audit_events, action="invoice.refund")
        assert event["resource"]["type"] == "invoice"
        assert event["resource"]["id"] == "inv-1"
        assert event["annotations"] == {"ticket": "T-9"}
        assert event["operation"] == "create"

    def test_annotate_in_sync_handler_threadpool(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """annotate() works from sync handlers that FastAPI runs in a threadpool."""
        app = make_app()
        threads: list[str] = []

        @app.get("/reports/{report_id}")
        def report(report_id: int) -> dict[str, int]:
            threads.append(threading.current_thread().name)
            annotate(resource_id=f"r{report_id}", source="sync")
            return {"id": report_id}

        with TestClient(app) as client:
            client.get("/reports/5")
        assert threads
        assert threads[0] != threading.main_thread().name
        event = assert_audited(audit_events, action="reports.read")
        assert event["resource"]["id"] == "r5"
        assert event["annotations"] == {"source": "sync"}

    def test_audited_decorator(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """@audited declares the action and resource id template of a route."""
        app = make_app()

        @app.put("/accounts/{account_id}/limits")
        @audited(action="account.limit_change", resource="account:{account_id}")
        async def limits(account_id: str) -> dict[str, str]:
            return {"id": account_id}

        with TestClient(app) as client:
            client.put("/accounts/acc-7/limits")
        assert_audited(
            audit_events,
            action="account.limit_change",
            resource__type="account",
            resource__id="acc-7",
        )

    def test_audited_rejects_bad_resource_template(self) -> None:
        """A malformed resource template is a clear configuration error."""
        with pytest.raises(ValueError, match="type:\\{param\\}"):
            audited(resource="invoice:{bad-param}")

    def test_annotate_outside_request_is_a_noop(self) -> None:
        """annotate() outside a request returns False and does nothing."""
        assert annotate(action="x") is False


class TestBackgroundTasks:
    def test_background_task_runs_and_cannot_change_finished_event(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """Background tasks still run; annotating a finished event is ignored, not an error."""
        app = make_app()
        results: list[object] = []

        def task() -> None:
            results.append(annotate(action="too.late"))
            results.append(len([e for e in audit_events if e["kind"] == "http"]))

        @app.post("/jobs")
        async def jobs(background: BackgroundTasks) -> dict[str, bool]:
            background.add_task(task)
            return {"queued": True}

        with TestClient(app) as client:
            assert client.post("/jobs").json() == {"queued": True}
        # The task ran after the event was recorded, and could not alter it.
        assert results == [False, 1]
        assert_audited(audit_events, action="jobs.create", outcome="success")


class TestOutcomes:
    def test_http_exception_403_is_denied(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """An HTTPException(403) from a handler is recorded as a denial."""
        app = make_app()

        @app.delete("/orders/{order_id}")
        async def delete(order_id: int) -> None:
            raise HTTPException(status_code=403, detail="nope")

        with TestClient(app) as client:
            assert client.delete("/orders/3").status_code == 403
        event = assert_audited(audit_events, action="orders.delete", outcome="denied")
        assert (event["severity"], event["outcome_reason"]) == ("medium", "authz_denied")

    def test_validation_error_is_failure(
        self, make_app: Callable[[], FastAPI], audit_events: list[Event]
    ) -> None:
        """A 422 validation error is a failure with the route template kept."""
        app = make_app()

        @app.get("/orders/{order_id}")
        async def get(order_id: int) -> dict[str, int]:
            return {"id": order_id}  # pragma: no cover

        with TestClient(app) as client:
            assert client.get("/orders/not-a-number").status_code == 422
        assert_audited(audit_events, outcome="failure", request__route="/orders/{order_id}")
