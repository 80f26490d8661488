"""The audit id on the app's own log lines, with stdlib logging and with structlog.

    python examples/log_correlation.py          # serves two requests in-process, prints the logs
    uvicorn examples.log_correlation:app        # or serve it

Each log line written while a request is handled carries the id of that request's
audit event: the value of the ``Audit-Id`` response header and of ``event_id`` in
the audit log.  Search the app's logs for an audit record's ``event_id`` to find
everything the app said while serving it.
"""

from __future__ import annotations

import logging
import sys

import structlog
from fastapi import BackgroundTasks, FastAPI

from auditmw import AuditConfig, AuditMiddleware
from auditmw.logs import AuditIdFilter, add_audit_id
from auditmw.sinks import StdoutSink

# stdlib logging: the filter adds ``audit_id`` to every record of the handler.
handler = logging.StreamHandler(sys.stdout)
handler.addFilter(AuditIdFilter())
handler.setFormatter(logging.Formatter("log audit_id=%(audit_id)s %(message)s"))
log = logging.getLogger("orders")
log.addHandler(handler)
log.setLevel(logging.INFO)

# structlog: the processor adds ``audit_id`` to the event dict.
structlog.configure(
    processors=[add_audit_id, structlog.processors.KeyValueRenderer(key_order=["audit_id"])],
    logger_factory=structlog.PrintLoggerFactory(sys.stdout),
)
slog = structlog.get_logger()

api = FastAPI()


def send_receipt(order_id: int) -> None:
    log.info("receipt sent for order %d", order_id)  # a background task: same audit id


@api.post("/orders/{order_id}/pay")
async def pay(order_id: int, tasks: BackgroundTasks) -> dict[str, str]:
    log.info("charging order %d", order_id)
    slog.info("payment accepted", order_id=order_id)
    tasks.add_task(send_receipt, order_id)
    return {"status": "paid"}


app = AuditMiddleware(api, AuditConfig(service="orders-api", sinks=[StdoutSink()]))


def main() -> None:
    """Serve two requests in-process and print what was logged."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        for order_id in (1, 2):
            response = client.post(f"/orders/{order_id}/pay")
            print(f"response Audit-Id={response.headers['audit-id']}", flush=True)


if __name__ == "__main__":
    main()
