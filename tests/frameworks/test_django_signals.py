"""Django's login signals and middleware hooks never raise into the application.

``user_login_failed`` fires inside ``django.contrib.auth.authenticate()`` with
whatever request the caller had: none, a bare ``HttpRequest``, or DRF's
``APIRequestFactory`` request with no client address.  Each must leave the app's
login working and still be audited; an internal failure becomes an
``audit.internal_error`` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.frameworks import django_app
from tests.frameworks.test_django import PASSWORD, make_user

django_app.setup()

from django.contrib.auth import authenticate, signals  # noqa: E402 - needs django.setup()
from django.contrib.auth.models import User  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402

if TYPE_CHECKING:
    from auditmw.types import Event


@pytest.fixture(autouse=True)
def _middleware_loaded() -> None:
    """The middleware connects the receivers when Django first builds it."""
    Client().get("/orders/1")


def _auth_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "auth"]


def _drf_request() -> Any:
    request = APIRequestFactory().post("/login", {"username": "x"})
    request.META.pop("REMOTE_ADDR", None)
    return request


def _scoped_request(client: object) -> Any:
    """An ASGI-style request whose scope carries an odd ``client`` (a non-compliant server)."""
    request = HttpRequest()
    request.scope = {"type": "http", "path": "/login", "headers": [], "client": client}  # type: ignore[attr-defined]
    return request


def _bare_request() -> HttpRequest:
    return HttpRequest()  # no META at all: no client, no host


class TestFailedLoginWithoutClient:
    @pytest.mark.parametrize(
        "make_request",
        [
            pytest.param(_drf_request, id="drf-factory-no-remote-addr"),
            pytest.param(_bare_request, id="bare-httprequest"),
            pytest.param(lambda: None, id="request-none"),
            pytest.param(lambda: _scoped_request(("10.0.0.1",)), id="scope-client-one-item"),
            pytest.param(lambda: _scoped_request(iter(())), id="scope-client-empty-iterator"),
            pytest.param(lambda: _scoped_request((None, None)), id="scope-client-none-host"),
        ],
    )
    def test_authenticate_returns_none_and_the_failure_is_audited(
        self, audit_events: list[Event], make_request: Any
    ) -> None:
        """authenticate() with a wrong password returns None (no exception) and is recorded."""
        user = make_user()
        result = authenticate(make_request(), username=user.username, password="wrong")
        assert result is None
        (failed,) = _auth_events(audit_events)
        assert failed["outcome"] == "denied"
        assert failed["outcome_reason"] == "authn_failed"
        assert not [e for e in audit_events if e["kind"] == "audit.internal_error"]

    def test_authenticate_succeeds_with_a_drf_request(self, audit_events: list[Event]) -> None:
        """A correct password still authenticates with a request that has no client."""
        user = make_user()
        assert authenticate(_drf_request(), username=user.username, password=PASSWORD) == user


class TestBrokenSignalInputs:
    @pytest.mark.parametrize(
        ("signal", "kwargs"),
        [
            pytest.param(signals.user_login_failed, {}, id="failed-no-arguments"),
            pytest.param(
                signals.user_login_failed, {"credentials": None}, id="failed-credentials-none"
            ),
            pytest.param(
                signals.user_login_failed,
                {"credentials": {"username": object()}, "request": object()},
                id="failed-odd-username-and-request",
            ),
            pytest.param(
                signals.user_login_failed,
                {"credentials": {"username": "a\udc80b"}, "request": _bare_request()},
                id="failed-surrogate-username",
            ),
            pytest.param(signals.user_logged_in, {}, id="login-no-arguments"),
            pytest.param(
                signals.user_logged_in, {"request": None, "user": object()}, id="login-odd-user"
            ),
            pytest.param(
                signals.user_logged_out, {"request": _drf_request(), "user": None}, id="logout"
            ),
        ],
    )
    def test_receivers_never_raise(
        self, audit_events: list[Event], signal: Any, kwargs: dict[str, Any]
    ) -> None:
        """Whatever a sender passes, the auditmw receivers return normally.

        auditmw's receivers are called as the signal calls them (Django's own
        ``update_last_login`` would fail on some of these inputs by itself).
        """
        receivers = [
            r for r in signal._live_receivers(User)[0] if r.__module__.startswith("auditmw")
        ]
        assert receivers
        for receiver in receivers:
            receiver(sender=User, signal=signal, **kwargs)

    def test_an_internal_failure_becomes_an_event_and_login_proceeds(
        self, audit_events: list[Event]
    ) -> None:
        """A processor that raises: the login answers as usual; audit.internal_error is recorded."""

        def broken(event: Event) -> Event:
            raise RuntimeError("secret detail that must not be recorded")

        with override_settings(AUDITMW={"service": "signals", "processors": [broken]}):
            user = make_user()
            client = Client()
            response = client.post("/login", {"username": user.username, "password": PASSWORD})
            assert response.status_code == 200
            assert authenticate(None, username=user.username, password="wrong") is None
        errors = [e for e in audit_events if e["kind"] == "audit.internal_error"]
        assert errors, "the failures were recorded"
        assert {e["details"]["error"] for e in errors} == {"RuntimeError"}
        assert all("secret" not in str(e) for e in audit_events)
