"""Fixtures for configuration tests: a real Flask app built from ``app.config["AUDITMW"]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auditmw.contrib.flask import Audit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class BufferedClient(FlaskClient):
    """Read and close every response, so that each request's event is finished."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def flask_app() -> Iterator[Callable[[Any], Flask]]:
    """Build a Flask app audited from the given ``AUDITMW`` value; close its auditor after."""
    apps: list[Flask] = []

    def make(settings: Any) -> Flask:
        app = Flask("orders_app")
        app.test_client_class = BufferedClient
        app.config["AUDITMW"] = settings

        @app.get("/orders/<int:order_id>")
        def read_order(order_id: int) -> dict[str, int]:
            return {"id": order_id}

        @app.post("/orders")
        def create_order() -> tuple[str, int]:
            return "", 201

        Audit(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        Audit.auditor(app).close()
