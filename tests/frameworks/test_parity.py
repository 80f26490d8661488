"""Parity: the same request gives the same event on FastAPI, Flask, Django-WSGI and Django-ASGI.

Fields allowed to differ (framework- or run-specific), and why:

* ``event_id``, ``time``, ``end_time``, ``duration_us``: unique per request / clock;
* ``annotations.route_name``: Django's URL name, which the other frameworks do not have;
* ``response.bytes`` for the 404 and the 500: each framework renders its own error page.

Everything else — route templates (all normalised to ``/path/{param}``), resource,
actor, outcome and reason, source (address and port), request id, host, protocol,
byte counts, service and policy — must be equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, cast

import pytest

from tests.frameworks import django_app
from tests.frameworks._helpers import (
    API_KEY,
    BASE_URL,
    asgi_request,
    make_token,
    parity_resolvers,
)

django_app.setup()

import flask  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import Response, StreamingResponse  # noqa: E402

from auditmw import AuditConfig, AuditMiddleware, Policy, annotate  # noqa: E402
from auditmw.contrib.django import get_auditor  # noqa: E402
from auditmw.contrib.flask import Audit  # noqa: E402

if TYPE_CHECKING:
    from auditmw.types import Event

ALWAYS_DIFFERENT = frozenset({"event_id", "time", "end_time", "duration_us"})
FRAMEWORK_SPECIFIC = frozenset({"annotations.route_name"})
CHUNKS = [b"chunk-0", b"chunk-1", b"chunk-2"]

#: method, path, extra headers, body, fields that may differ, fields every framework must have
Scenario = tuple[str, str, dict[str, str], bytes | None, frozenset[str], dict[str, Any]]
ERROR_PAGE = frozenset({"response.bytes"})
SCENARIOS = [
    pytest.param(
        ("GET", "/orders/7", {}, None, frozenset(),
         {"actor.type": "anonymous", "resource.id": "7", "annotations.ticket": "T-1"}),
        id="anonymous-get",
    ),
    pytest.param(
        ("PUT", "/orders/7", {"Authorization": f"Bearer {make_token('42')}"}, b'{"qty": 2}',
         frozenset(), {"actor.id": "42", "actor.auth.method": "jwt", "request.bytes": 10}),
        id="jwt-user-update",
    ),
    pytest.param(
        ("DELETE", "/keys/k1", {"X-API-Key": API_KEY}, None, frozenset(),
         {"actor.id": "svc-1", "actor.auth.key_id": "k1", "response.status_code": 204}),
        id="api-key-delete",
    ),
    pytest.param(
        ("GET", "/orders/7", {"Authorization": f"Bearer {make_token('42', b'x' * 40)}"}, None,
         frozenset(), {"actor.type": "anonymous", "actor.auth.error": "invalid_signature"}),
        id="forged-jwt",
    ),
    pytest.param(
        ("GET", "/forbidden", {}, None, frozenset(), {"outcome": "denied"}), id="403"
    ),
    pytest.param(
        ("GET", "/missing", {}, None, ERROR_PAGE, {"outcome": "failure", "resource.type": "unmatched"}),
        id="404",
    ),
    pytest.param(
        ("GET", "/boom", {}, None, ERROR_PAGE, {"outcome_reason": "exception:ValueError"}),
        id="500-exception",
    ),
    pytest.param(
        ("GET", "/stream", {}, None, frozenset(), {"response.bytes": 21, "outcome": "success"}),
        id="streaming",
    ),
]  # fmt: skip
Send = Callable[[str, str, dict[str, str], "bytes | None"], None]


def fastapi_app(policy: Policy | None) -> FastAPI:
    app = FastAPI()

    @app.api_route("/orders/{order_id}", methods=["GET", "PUT"])
    async def order(order_id: int, request: Request) -> Response:
        if request.method == "PUT":
            await request.body()
            return Response(b"updated", media_type="text/plain")
        annotate(ticket="T-1")
        return Response(f"order {order_id}".encode(), media_type="text/plain")

    @app.delete("/keys/{key_id}")
    async def delete_key(key_id: str) -> Response:
        return Response(status_code=204)

    @app.get("/forbidden")
    async def forbidden() -> Response:
        return Response(b"forbidden", status_code=403, media_type="text/plain")

    @app.get("/boom")
    async def boom() -> Response:
        raise ValueError("secret detail")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> Any:
            for chunk in CHUNKS:
                yield chunk

        return StreamingResponse(gen(), media_type="text/plain")

    config = AuditConfig(service="parity", resolvers=parity_resolvers(), policy=policy)
    app.add_middleware(AuditMiddleware, config=config)
    return app


def flask_app(policy: Policy | None) -> flask.Flask:
    app = flask.Flask("parity")

    @app.route("/orders/<int:order_id>", methods=["GET", "PUT"])
    def order(order_id: int) -> flask.Response:
        if flask.request.method == "PUT":
            flask.request.get_data()
            return flask.Response(b"updated", mimetype="text/plain")
        annotate(ticket="T-1")
        return flask.Response(f"order {order_id}".encode(), mimetype="text/plain")

    @app.delete("/keys/<key_id>")
    def delete_key(key_id: str) -> tuple[str, int]:
        return "", 204

    @app.get("/forbidden")
    def forbidden() -> flask.Response:
        return flask.Response(b"forbidden", status=403, content_type="text/plain")

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("secret detail")

    @app.get("/stream")
    def stream() -> flask.Response:
        return flask.Response(iter(CHUNKS), content_type="text/plain")

    Audit(app, config=AuditConfig(service="parity", resolvers=parity_resolvers(), policy=policy))
    return app


@pytest.fixture
def make_senders() -> Iterator[Callable[[Policy | None], dict[str, Send]]]:
    """One request function per framework, each with a fresh app under one policy."""
    with ExitStack() as stack:

        def make(policy: Policy | None = None) -> dict[str, Send]:
            return _senders(policy, stack)

        yield make
    get_auditor().flush(timeout=5)


def _senders(policy: Policy | None, stack: ExitStack) -> dict[str, Send]:
    fast = fastapi_app(policy)
    fl = flask_app(policy)
    stack.callback(Audit.auditor(fl).close, timeout=5)
    stack.enter_context(
        override_settings(
            AUDITMW={"service": "parity", "resolvers": parity_resolvers(), "policy": policy}
        )
    )
    django_asgi = get_asgi_application()
    base = {"User-Agent": "probe/1"}

    def via_fastapi(method: str, path: str, headers: dict[str, str], body: bytes | None) -> None:
        asgi_request(
            fast,
            method,
            path,
            headers={**base, **headers},
            content=body,
            raise_app_exceptions=False,
        )

    def via_flask(method: str, path: str, headers: dict[str, str], body: bytes | None) -> None:
        client = fl.test_client()
        client.environ_base.update(REMOTE_PORT="50000")
        client.open(
            path,
            method=method,
            headers={**base, **headers},
            data=body,
            base_url=BASE_URL,
            buffered=True,
        )

    def via_django_wsgi(
        method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> None:
        client = Client(
            raise_request_exception=False,
            headers={**base, **headers, "Host": "api.example.com"},
            REMOTE_PORT="50000",
        )
        content_type = headers.get("Content-Type", "application/octet-stream")
        response: Any = client.generic(method, path, body or b"", content_type=content_type)
        if isinstance(response, StreamingHttpResponse):
            b"".join(cast("Iterator[bytes]", response.streaming_content))
            response.close()

    def via_django_asgi(
        method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> None:
        asgi_request(django_asgi, method, path, headers={**base, **headers}, content=body)

    return {
        "fastapi": via_fastapi,
        "flask": via_flask,
        "django-wsgi": via_django_wsgi,
        "django-asgi": via_django_asgi,
    }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def run_everywhere(
    senders: dict[str, Send], audit_events: list[Event], scenario: Scenario
) -> dict[str, Any]:
    """Send the scenario to every framework; return FastAPI's event after comparing the rest."""
    method, path, headers, body, may_differ, expected = scenario
    recorded: dict[str, dict[str, Any]] = {}
    for name, send in senders.items():
        start = len(audit_events)
        send(method, path, {**headers, "X-Request-ID": f"req-{name}"}, body)
        events = [e for e in audit_events[start:] if e["kind"] == "http"]
        assert len(events) == 1, f"{name}: {len(events)} events"
        flat = flatten(events[0])
        assert flat.pop("request.id") == f"req-{name}"
        recorded[name] = {
            k: v
            for k, v in flat.items()
            if k not in ALWAYS_DIFFERENT | FRAMEWORK_SPECIFIC | may_differ
        }
    reference = recorded.pop("fastapi")
    assert {key: reference.get(key) for key in expected} == expected
    assert "secret" not in repr(reference)
    assert API_KEY not in repr(reference)
    assert "eyJ" not in repr(reference)
    for name, fields in recorded.items():
        differences = {
            key: (reference.get(key), fields.get(key))
            for key in reference.keys() | fields.keys()
            if reference.get(key) != fields.get(key)
        }
        assert differences == {}, f"{name} differs from fastapi: {differences}"
    return reference


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_event_on_every_framework(
    make_senders: Callable[[Policy | None], dict[str, Send]],
    audit_events: list[Event],
    scenario: Scenario,
) -> None:
    """Field by field, every framework records the FastAPI event (apart from listed fields)."""
    run_everywhere(make_senders(None), audit_events, scenario)


BODY_POLICY = {
    "id": "bodies",
    "rules": [
        {"id": "orders", "routes": ["/orders/{order_id}"], "level": "request_response",
         "max_body_bytes": 1024},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(
            ("PUT", "/orders/7", {"Content-Type": "application/json"}, b'{"qty": 2}',
             frozenset(), {"request.body.json.qty": 2, "response.body.size": 7}),
            id="route-selected-bodies",
        ),
        pytest.param(
            ("GET", "/stream", {}, None, frozenset(), {"response.bytes": 21}),
            id="other-route-no-bodies",
        ),
    ],
)  # fmt: skip
def test_bodies_captured_the_same_way(
    make_senders: Callable[[Policy | None], dict[str, Send]],
    audit_events: list[Event],
    scenario: Scenario,
) -> None:
    """A route-selected ``request_response`` rule captures the same bodies everywhere."""
    reference = run_everywhere(make_senders(Policy(BODY_POLICY)), audit_events, scenario)
    if scenario[1] == "/stream":
        assert not any(key.startswith(("request.body", "response.body")) for key in reference)
    else:
        assert reference["response.body.content_type"].startswith("text/plain")
