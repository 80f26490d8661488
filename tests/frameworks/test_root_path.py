"""``request.path`` and ``request.route`` are relative to the same base: the app's root path.

The root path itself (a proxy prefix, ``FastAPI(root_path=...)``, uvicorn
``--root-path``, WSGI ``SCRIPT_NAME``) is recorded as ``request.root_path``;
mount points inside the app stay part of both the path and the route.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import FastAPIDeprecationWarning
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from auditmw import AuditConfig, AuditMiddleware
from auditmw.contrib.flask import Audit
from auditmw.sinks import MemorySink
from auditmw.testing import make_scope
from auditmw.types import Event, Message


def config() -> AuditConfig:
    return AuditConfig(service="rooted", sinks=[MemorySink()])


def the_event(events: list[Event]) -> Event:
    (event,) = [e for e in events if e["kind"] == "http"]
    return event


def fastapi_app(root_path: str = "") -> FastAPI:
    if root_path:
        with pytest.warns(FastAPIDeprecationWarning):
            app = FastAPI(root_path=root_path)
    else:
        app = FastAPI()

    @app.get("/app/{x}")
    async def get_app(x: str) -> dict[str, str]:
        return {"x": x}

    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    app.mount("/sub", sub)
    return app


def call(app: Any, path: str, root_path: str = "") -> int:
    """One GET through the ASGI app, as a server sets ``path`` and ``root_path``."""
    sent: list[Message] = []
    scope = make_scope(path)
    scope["root_path"] = root_path

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status: int = sent[0]["status"]
    return status


def request_part(event: Event) -> tuple[str, str | None, str | None]:
    request = event["request"]
    return request["path"], request.get("route"), request.get("root_path")


class TestASGIRootPath:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            pytest.param("/app/1", ("/app/1", "/app/{x}", "/api/v1"), id="proxy-stripped"),
            pytest.param("/api/v1/app/1", ("/app/1", "/app/{x}", "/api/v1"), id="full-path"),
            pytest.param(
                "/api/v1/sub/items/2",
                ("/sub/items/2", "/sub/items/{item_id}", "/api/v1"),
                id="mounted",
            ),
        ],
    )
    def test_fastapi_root_path_wrapped_outside(
        self, path: str, expected: tuple[str, str, str], audit_events: list[Event]
    ) -> None:
        """``AuditMiddleware(FastAPI(root_path=...))``: path and route share the app's root."""
        app = AuditMiddleware(fastapi_app("/api/v1"), config())
        assert call(app, path) == 200
        assert request_part(the_event(audit_events)) == expected

    def test_fastapi_root_path_added_inside(self, audit_events: list[Event]) -> None:
        """``add_middleware`` on ``FastAPI(root_path=...)``: the same event."""
        app = fastapi_app("/api/v1")
        app.add_middleware(AuditMiddleware, config=config())
        assert call(app, "/api/v1/app/1") == 200
        assert request_part(the_event(audit_events)) == ("/app/1", "/app/{x}", "/api/v1")

    @pytest.mark.parametrize(
        ("path", "root_path", "expected"),
        [
            pytest.param("/sub/items/2", "", ("/sub/items/2", "/sub/items/{item_id}", None),
                         id="mount"),
            pytest.param("/api/v1/sub/items/2", "/api/v1",
                         ("/sub/items/2", "/sub/items/{item_id}", "/api/v1"), id="server-root"),
            pytest.param("/api/v1/app/1", "/api/v1", ("/app/1", "/app/{x}", "/api/v1"),
                         id="server-root-top"),
            pytest.param("/api/v1/nowhere", "/api/v1", ("/nowhere", None, "/api/v1"),
                         id="server-root-404"),
        ],
    )  # fmt: skip
    def test_mounts_and_server_root(
        self,
        path: str,
        root_path: str,
        expected: tuple[str, str | None, str | None],
        audit_events: list[Event],
    ) -> None:
        """Mount points stay in path and route; the server's root path is set apart."""
        app = AuditMiddleware(fastapi_app(), config())
        call(app, path, root_path)
        assert request_part(the_event(audit_events)) == expected

    def test_middleware_on_mounted_sub_app(self, audit_events: list[Event]) -> None:
        """Auditing only a mounted Starlette app: path and route both keep the mount."""

        async def item(request: Request) -> Response:
            return PlainTextResponse(request.path_params["item_id"])

        sub = Starlette(routes=[Route("/items/{item_id}", item)])
        app = Starlette(routes=[Mount("/sub", AuditMiddleware(sub, config()))])
        assert call(app, "/sub/items/3") == 200
        assert request_part(the_event(audit_events)) == (
            "/sub/items/3",
            "/sub/items/{item_id}",
            None,
        )


class TestWSGIRootPath:
    def test_flask_under_script_name(self, audit_events: list[Event]) -> None:
        """Flask mounted at ``SCRIPT_NAME=/api``: path and rule relative to it."""
        app = Flask(__name__)
        app.config["AUDITMW"] = config()

        @app.get("/app/<x>")
        def get_app(x: str) -> str:
            return x

        Audit(app)
        response = app.test_client().get("/app/1", base_url="http://localhost/api")
        assert response.get_data() == b"1"
        assert request_part(the_event(audit_events)) == ("/app/1", "/app/{x}", "/api")
