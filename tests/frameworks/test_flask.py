"""The Flask extension: route templates, view args, users and exceptions from Flask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import flask
import flask_login  # type: ignore[import-untyped]
import pytest
from flask import Flask, abort, stream_with_context
from flask.testing import FlaskClient

from auditmw import AuditConfig, annotate, audited
from auditmw.contrib.flask import EXTENSION_KEY, Audit, flask_route
from auditmw.event import Actor, AuthInfo
from auditmw.exceptions import ConfigurationError
from auditmw.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from auditmw.types import Event


class BufferedClient(FlaskClient):
    """Werkzeug's client leaves the response iterable unread and unclosed unless buffered."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Build a fresh Flask app per test with a few typical views; close auditors after."""
    apps: list[Flask] = []

    def make(auditmw: Any = None, *, testing: bool = False, **config: Any) -> Flask:
        app = Flask("orders_app")
        app.test_client_class = BufferedClient
        app.config["TESTING"] = testing
        if auditmw is not None:
            app.config["AUDITMW"] = auditmw
        for key, value in config.items():
            app.config[key] = value

        @app.get("/orders/<int:order_id>")
        def read_order(order_id: int) -> dict[str, int]:
            annotate(ticket="T-1")
            return {"id": order_id}

        @app.post("/invoices/<invoice_id>/refund")
        @audited(action="invoice.refund", resource="invoice:{invoice_id}")
        def refund(invoice_id: str) -> tuple[str, int]:
            return "", 204

        @app.get("/forbidden")
        def forbidden() -> NoReturn:
            abort(403)

        @app.get("/boom")
        def boom() -> NoReturn:
            raise ValueError("secret detail")

        @app.get("/stream")
        def stream() -> flask.Response:
            def generate() -> Iterator[str]:
                yield "a" * 10
                annotate(streamed="yes")
                yield "b" * 5

            return flask.Response(stream_with_context(generate()))

        apps.append(app)
        return app

    yield make
    for app in apps:
        if EXTENSION_KEY in app.extensions:
            Audit.auditor(app).close(timeout=5)


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


class TestFlaskRoute:
    @pytest.mark.parametrize(
        ("rule", "expected"),
        [
            pytest.param("/orders/<int:order_id>", "/orders/{order_id}", id="int"),
            pytest.param("/u/<name>/files/<path:rest>", "/u/{name}/files/{rest}", id="path"),
            pytest.param("/<any(a, b):kind>", "/{kind}", id="converter-args"),
            pytest.param("/health", "/health", id="static"),
        ],
    )
    def test_converts_rules(self, rule: str, expected: str) -> None:
        """Flask rules become ``{param}`` templates."""
        assert flask_route(rule) == expected


class TestConfiguration:
    def test_config_dict_from_app_config(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """``app.config["AUDITMW"]`` as a dict is read by ``init_app``; state is in extensions."""
        app = make_app({"service": "orders", "audit_id_header": "X-Audit-Id"})
        ext = Audit()
        ext.init_app(app)
        assert not hasattr(ext, "app")
        response = app.test_client().get("/orders/3")
        (event,) = http_events(audit_events)
        assert response.headers["X-Audit-Id"] == event["event_id"]
        assert event["service"]["name"] == "orders"
        assert Audit.auditor(app) is app.extensions[EXTENSION_KEY]

    def test_service_defaults_to_app_name(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """Without settings the service is named after the app."""
        app = make_app()
        Audit(app)
        app.test_client().get("/orders/1")
        assert http_events(audit_events)[0]["service"]["name"] == "orders_app"

    def test_explicit_config_and_policy_object(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """An ``AuditConfig`` (here with a ``Policy`` object) wins over ``app.config``."""
        app = make_app({"service": "ignored"})
        policy = Policy({"id": "p1"})
        Audit(app, config=AuditConfig(service="explicit", policy=policy))
        app.test_client().get("/orders/1")
        (event,) = http_events(audit_events)
        assert event["service"]["name"] == "explicit"
        assert event["policy"]["id"] == "p1"

    @pytest.mark.parametrize(
        ("value", "setting"),
        [
            pytest.param({"servise": "x"}, "AUDITMW.servise", id="unknown-key"),
            pytest.param("orders", "AUDITMW", id="not-a-mapping"),
            pytest.param({"delivery": {"max_qeue": 1}}, "AUDITMW.delivery", id="nested"),
        ],
    )
    def test_bad_settings_name_the_key(
        self, make_app: Callable[..., Flask], value: object, setting: str
    ) -> None:
        """Invalid settings raise ``ConfigurationError`` naming the key."""
        with pytest.raises(ConfigurationError) as info:
            Audit(make_app(value))
        assert info.value.setting == setting

    def test_init_app_twice_is_refused(self, make_app: Callable[..., Flask]) -> None:
        """Wrapping the same app twice would record every request twice."""
        app = make_app()
        Audit(app)
        with pytest.raises(ConfigurationError, match="already audited"):
            Audit(app)


class TestRequests:
    def test_route_template_params_and_annotations(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """The event has the ``{param}`` route, the view args and the view's annotations."""
        app = make_app()
        Audit(app)
        response = app.test_client().get("/orders/42?expand=1")
        (event,) = http_events(audit_events)
        assert response.headers["Audit-Id"] == event["event_id"]
        assert event["request"]["route"] == "/orders/{order_id}"
        assert event["resource"] == {
            "type": "orders",
            "id": "42",
            "route_params": {"order_id": "42"},
        }
        assert event["action"] == "orders.read"
        assert event["annotations"] == {"ticket": "T-1"}
        assert event["response"]["bytes"] == len(response.data)

    def test_audited_decorator(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """``@audited`` under a Flask route sets action and resource id."""
        app = make_app()
        Audit(app)
        app.test_client().post("/invoices/inv-9/refund")
        (event,) = http_events(audit_events)
        assert event["action"] == "invoice.refund"
        assert event["resource"]["type"] == "invoice"
        assert event["resource"]["id"] == "inv-9"
        assert event["response"]["status_code"] == 204

    @pytest.mark.parametrize(
        ("path", "status", "outcome", "reason"),
        [
            pytest.param("/forbidden", 403, "denied", "authz_denied", id="403"),
            pytest.param("/nowhere", 404, "failure", None, id="404"),
            pytest.param("/boom", 500, "error", "exception:ValueError", id="500"),
        ],
    )
    def test_error_outcomes(
        self,
        make_app: Callable[..., Flask],
        audit_events: list[Event],
        *,
        path: str,
        status: int,
        outcome: str,
        reason: str | None,
    ) -> None:
        """Flask-built error responses carry the right outcome; a view exception its type."""
        app = make_app()
        Audit(app)
        response = app.test_client().get(path)
        (event,) = http_events(audit_events)
        assert response.status_code == status
        assert event["response"]["status_code"] == status
        assert event["outcome"] == outcome
        assert event.get("outcome_reason") == reason
        assert "secret detail" not in repr(event)

    def test_propagated_exception_recorded_once(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """With ``TESTING`` the exception reaches the client unchanged and is recorded once."""
        app = make_app(testing=True)
        Audit(app)
        with pytest.raises(ValueError, match="secret detail"):
            app.test_client().get("/boom")
        (event,) = http_events(audit_events)
        assert event["outcome_reason"] == "exception:ValueError"
        assert event["request"]["route"] == "/boom"

    def test_streamed_response_with_context(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """A streamed response is measured to its end; annotations inside the stream count."""
        app = make_app()
        Audit(app)
        response = app.test_client().get("/stream")
        assert response.data == b"a" * 10 + b"b" * 5
        (event,) = http_events(audit_events)
        assert event["response"]["bytes"] == 15
        assert event["annotations"] == {"streamed": "yes"}
        assert event["outcome"] == "success"

    def test_identity_hook_receives_flask_request(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """An ``identity`` hook is called with the Flask request object."""
        seen: list[object] = []

        def hook(req: Any) -> Actor | None:
            seen.append(req)
            return Actor(id=req.headers["X-User"], type="user", auth=AuthInfo("basic", True))

        app = make_app({"identity": hook})
        Audit(app)
        app.test_client().get("/orders/1", headers={"X-User": "ada"})
        (event,) = http_events(audit_events)
        assert isinstance(seen[0], flask.Request)
        assert event["actor"]["id"] == "ada"


class TestFlaskLogin:
    def test_current_user_read_after_the_view(
        self, make_app: Callable[..., Flask], audit_events: list[Event]
    ) -> None:
        """A user logged in by the view itself (Flask-Login) is the event's actor."""

        class User(flask_login.UserMixin):  # type: ignore[misc]
            def __init__(self, user_id: str) -> None:
                self.id = user_id
                self.username = f"name-{user_id}"

        app = make_app(SECRET_KEY="test-only")
        manager = flask_login.LoginManager(app)
        manager.user_loader(User)

        @app.post("/login/<user_id>")
        def login(user_id: str) -> str:
            flask_login.login_user(User(user_id))
            return "ok"

        Audit(app)
        client = app.test_client()
        client.post("/login/u7")
        client.get("/orders/1")
        login_event, read_event = http_events(audit_events)
        for event in (login_event, read_event):
            assert event["actor"]["id"] == "u7"
            assert event["actor"]["type"] == "user"
            assert event["actor"]["name"] == "name-u7"
            assert event["actor"]["auth"] == {"method": "session", "verified": True}
