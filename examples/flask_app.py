"""A small Flask orders API audited by auditmw.

Run it under gunicorn; every request is audited to the JSONL file named by
``AUDITMW_FLASK_LOG`` (default ``audit-flask.jsonl``)::

    AUDITMW_FLASK_LOG=audit.jsonl gunicorn -w 4 --chdir examples flask_app:app

Identity here is a toy (``X-Demo-User: ada``); use a real resolver in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from flask import Flask, Request, Response, abort, send_file

from auditmw import Actor, AuthInfo, annotate
from auditmw.contrib.flask import Audit
from auditmw.sinks import FileSink

LOG_PATH = os.environ.get("AUDITMW_FLASK_LOG", "audit-flask.jsonl")
REPORT = Path(__file__).resolve()


def demo_identity(request: Request) -> Actor | None:
    """Toy identity for the demo: ``X-Demo-User: ada`` is user ada (unverified)."""
    name = request.headers.get("X-Demo-User")
    if not name:
        return None
    return Actor(id=name, type="user", auth=AuthInfo(method="session", verified=False))


app = Flask(__name__)
app.config["AUDITMW"] = {
    "service": "orders-api",
    "sinks": [FileSink(LOG_PATH)],
    "identity": demo_identity,
    "delivery": {"max_wait_ms": 20},
}
Audit(app)


@app.get("/health")
def health() -> str:
    return "ok"


@app.route("/orders/<int:order_id>", methods=["GET", "PUT"])
def order(order_id: int) -> dict[str, Any]:
    annotate(ticket="T-1")
    return {"id": order_id}


@app.delete("/orders/<int:order_id>")
def delete_order(order_id: int) -> NoReturn:
    abort(403)


@app.post("/orders/<int:order_id>/fail")
def fail(order_id: int) -> NoReturn:
    raise RuntimeError("the order service failed")


@app.get("/report")
def report() -> Response:
    # send_file hands the file to the server's wsgi.file_wrapper (sendfile under gunicorn).
    return send_file(REPORT, mimetype="text/plain")


@app.get("/stream")
def stream() -> Response:
    def generate() -> Iterator[bytes]:
        for i in range(5):
            yield f"line {i}\n".encode()

    return Response(generate(), mimetype="text/plain")


if __name__ == "__main__":
    app.run(port=8000)
