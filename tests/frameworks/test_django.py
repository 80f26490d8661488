"""The Django middleware and login signals, through Django's real sync and async handlers."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from asgiref.sync import async_to_sync

from tests.frameworks import django_app
from tests.frameworks._helpers import asgi_request, make_token

django_app.setup()

from django.conf import settings  # noqa: E402 - needs django.setup()
from django.contrib.auth.models import User  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.exceptions import MiddlewareNotUsed  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import AsyncClient, Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from auditmw.contrib.django import AuditMiddleware, django_route, get_auditor  # noqa: E402
from auditmw.exceptions import ConfigurationError  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from django.http import StreamingHttpResponse

    from auditmw.types import Event

HEADERS = {"Host": "api.example.com", "User-Agent": "probe/1"}


def http_events(events: list[Event], kind: str = "http") -> list[Event]:
    return [e for e in events if e["kind"] == kind]


PASSWORD = "pw-123456"


def streaming(response: object) -> Iterator[bytes]:
    return cast("Iterator[bytes]", cast("StreamingHttpResponse", response).streaming_content)


def astreaming(response: object) -> AsyncIterator[bytes]:
    return cast("AsyncIterator[bytes]", cast("StreamingHttpResponse", response).streaming_content)


def make_user() -> User:
    return User.objects.create_user(f"user-{uuid.uuid4().hex[:8]}", password=PASSWORD)


@pytest.fixture(autouse=True)
def _flush_auditor() -> Any:
    yield
    get_auditor().flush(timeout=5)


class TestDjangoRoute:
    @pytest.mark.parametrize(
        ("route", "expected"),
        [
            pytest.param("orders/<int:order_id>/", "/orders/{order_id}/", id="path"),
            pytest.param("orders/<order_id>", "/orders/{order_id}", id="no-converter"),
            pytest.param("", "/", id="root"),
            pytest.param(r"^archive/(?P<year>[0-9]{4})/$", "/archive/{year}/", id="re_path"),
            pytest.param(r"api/^v1/(?P<pk>\d+)$", "/api/v1/{pk}", id="include"),
            pytest.param(r"^x/(?P<a>(b|c))/$", "/x/{a}/", id="nested-group"),
        ],
    )
    def test_converts_routes(self, route: str, expected: str) -> None:
        """Django routes become ``{param}`` templates with a leading slash."""
        assert django_route(route) == expected


class TestSettings:
    def test_disabled_raises_middleware_not_used(self) -> None:
        """``AUDITMW = {"enabled": False}`` removes the middleware."""
        with (
            override_settings(AUDITMW={"enabled": False}),
            pytest.raises(MiddlewareNotUsed),
        ):
            AuditMiddleware(lambda request: HttpResponse())

    def test_disabled_project_still_serves(self, audit_events: list[Event]) -> None:
        """With auditing disabled requests are served and nothing is recorded."""
        with override_settings(AUDITMW={"enabled": False}):
            response = Client(headers=HEADERS).get("/orders/1")
        assert response.status_code == 200
        assert "Audit-Id" not in response.headers
        assert http_events(audit_events) == []

    @pytest.mark.parametrize(
        ("value", "setting"),
        [
            pytest.param({}, "AUDITMW.service", id="no-service"),
            pytest.param({"service": "x", "sinkz": []}, "AUDITMW.sinkz", id="unknown-key"),
            pytest.param("orders-api", "AUDITMW", id="not-a-dict"),
        ],
    )
    def test_bad_settings_name_the_key(self, value: object, setting: str) -> None:
        """Invalid settings raise ``ConfigurationError`` naming the key."""
        with override_settings(AUDITMW=value), pytest.raises(ConfigurationError) as info:
            AuditMiddleware(lambda request: HttpResponse())
        assert info.value.setting == setting


class TestSyncRequests:
    def test_route_params_annotations_and_header(self, audit_events: list[Event]) -> None:
        """Route template, URL kwargs, view annotations and the URL name are recorded."""
        response = Client(headers=HEADERS).get("/orders/7?expand=1")
        (event,) = http_events(audit_events)
        assert response["Audit-Id"] == event["event_id"]
        assert event["request"]["route"] == "/orders/{order_id}"
        assert event["request"]["query"] == "expand=1"
        assert event["request"]["host"] == "api.example.com"
        assert event["source"]["ip"] == "127.0.0.1"
        assert event["resource"] == {"type": "orders", "id": "7", "route_params": {"order_id": "7"}}
        assert event["annotations"] == {"ticket": "T-1", "route_name": "order-detail"}
        assert event["response"] == {"status_code": 200, "bytes": 7}
        assert event["actor"]["type"] == "anonymous"

    def test_body_bytes_and_bearer_identity(self, audit_events: list[Event]) -> None:
        """Bytes the view read are counted; configured resolvers see the headers."""
        client = Client(headers={**HEADERS, "Authorization": f"Bearer {make_token('42')}"})
        client.put("/orders/7", b'{"qty": 2}', content_type="application/json")
        (event,) = http_events(audit_events)
        assert event["request"]["bytes"] == 10
        assert event["operation"] == "update"
        assert event["actor"]["id"] == "42"
        assert "Bearer" not in repr(event)

    def test_view_exception_becomes_500_with_exception_type(
        self, audit_events: list[Event]
    ) -> None:
        """Django's 500 page is recorded with ``exception:ValueError`` (via process_exception)."""
        response = Client(raise_request_exception=False).get("/boom")
        (event,) = http_events(audit_events)
        assert response.status_code == 500
        assert event["outcome"] == "error"
        assert event["outcome_reason"] == "exception:ValueError"
        assert "secret detail" not in repr(event)

    def test_reraised_exception_recorded_once(self, audit_events: list[Event]) -> None:
        """With the test client re-raising, the exception is unchanged and recorded once."""
        with pytest.raises(ValueError, match="secret detail"):
            Client().get("/boom")
        assert len(http_events(audit_events)) == 1

    def test_unmatched_and_regex_routes(self, audit_events: list[Event]) -> None:
        """A 404 has no route; a ``re_path`` route is converted."""
        client = Client()
        client.get("/nowhere")
        client.get("/archive/2024/")
        missing, archive = http_events(audit_events)
        assert "route" not in missing["request"]
        assert missing["outcome"] == "failure"
        assert archive["request"]["route"] == "/archive/{year}/"
        assert archive["resource"]["route_params"] == {"year": "2024"}

    def test_streaming_response_finished_at_end(self, audit_events: list[Event]) -> None:
        """A streamed response is recorded once its stream is consumed."""
        response = Client().get("/stream")
        assert http_events(audit_events) == []
        assert b"".join(streaming(response)) == b"chunk-0chunk-1chunk-2"
        (event,) = http_events(audit_events)
        assert event["response"]["bytes"] == 21
        assert event["outcome"] == "success"

    def test_broken_upload_is_aborted(self, audit_events: list[Event]) -> None:
        """The server's input fails mid-upload: Django answers 500, the event says aborted."""

        class FailingInput:
            def read(self, *args: Any) -> bytes:
                raise ConnectionResetError("peer reset")

            readline = read

        client = Client(raise_request_exception=False)
        environ = {"wsgi.input": FailingInput(), "CONTENT_LENGTH": "100"}
        response = client.put("/orders/1", b"x", "text/plain", **environ)  # type: ignore[arg-type]
        assert response.status_code == 500
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"

    def test_unread_stream_recorded_when_dropped(self, audit_events: list[Event]) -> None:
        """Django's test client drops an unread stream unclosed: one event, marked."""
        response = Client().get("/stream")
        assert response.status_code == 200
        assert http_events(audit_events) == []
        del response
        gc.collect()  # the verdict must not depend on when the interpreter frees it
        (event,) = http_events(audit_events)
        assert event["annotations"]["auditmw.response"] == "not_closed"
        assert event["outcome"] == "success"

    def test_stream_closed_early_is_aborted(self, audit_events: list[Event]) -> None:
        """Closing an endless stream before its end records ``aborted``."""
        response = Client().get("/endless")
        chunks = iter(streaming(response))
        next(chunks)
        response.close()
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["response"]["bytes"] == 4

    def test_file_response(self, audit_events: list[Event], tmp_path: Path) -> None:
        """A FileResponse keeps its file and is recorded with the file's size when closed."""
        data = tmp_path / "report.bin"
        data.write_bytes(b"r" * 3000)
        response = Client().get("/download", {"path": str(data)})
        assert b"".join(streaming(response)) == b"r" * 3000
        (event,) = http_events(audit_events)
        assert event["response"] == {"status_code": 200, "bytes": 3000}


class TestUsers:
    def test_session_user_read_after_the_view(self, audit_events: list[Event]) -> None:
        """``request.user`` (session) is the actor."""
        user = make_user()
        client = Client()
        client.force_login(user)
        client.get("/whoami")
        event = http_events(audit_events)[-1]
        assert event["actor"]["id"] == str(user.pk)
        assert event["actor"]["name"] == user.username
        assert event["actor"]["auth"] == {"method": "session", "verified": True}

    def test_drf_user_authenticated_inside_the_view(self, audit_events: list[Event]) -> None:
        """A user authenticated by DRF inside the view is seen after it."""
        user = make_user()
        response = Client(headers={"X-DRF-User": user.username}).get("/drf/whoami")
        assert response.json() == {"user": user.pk}
        (event,) = http_events(audit_events)
        assert event["actor"]["id"] == str(user.pk)
        assert event["actor"]["type"] == "user"


class TestAuthEvents:
    def test_login_and_logout_events(self, audit_events: list[Event]) -> None:
        """Successful login and logout produce ``auth`` events for the user."""
        user = make_user()
        client = Client(headers=HEADERS)
        client.post("/login", {"username": user.username, "password": PASSWORD})
        client.post("/logout")
        login, logout = http_events(audit_events, "auth")
        assert login["action"] == "auth.login"
        assert login["operation"] == "login"
        assert login["outcome"] == "success"
        assert login["actor"]["id"] == str(user.pk)
        assert login["request"]["path"] == "/login"
        assert login["source"]["ip"] == "127.0.0.1"
        assert "response" not in login
        assert logout["action"] == "auth.logout"
        assert logout["actor"]["id"] == str(user.pk)
        post_login = http_events(audit_events)[0]
        assert post_login["actor"]["id"] == str(user.pk)

    def test_failed_login_records_a_pseudonym_never_the_password(
        self, audit_events: list[Event]
    ) -> None:
        """The attempted username is an HMAC pseudonym; the password appears nowhere."""
        Client().post("/login", {"username": "mallory", "password": "hunter2-secret"})
        (failed,) = http_events(audit_events, "auth")
        assert failed["outcome"] == "denied"
        assert failed["outcome_reason"] == "authn_failed"
        assert failed["severity"] == "medium"
        assert failed["actor"]["auth"]["error"] == "invalid_credentials"
        claimed = failed["actor"]["claimed_id"]
        assert claimed.startswith("hmac-sha256:")
        assert len(claimed) == len("hmac-sha256:") + 64
        assert "mallory" not in repr(audit_events)
        assert "hunter2" not in repr(audit_events)

    def test_pseudonym_is_keyed_and_stable(self, audit_events: list[Event]) -> None:
        """The same username gives the same pseudonym under one key and another under another."""
        settings_a = {"service": "parity", "pseudonym_key": "k-a"}
        settings_b = {"service": "parity", "pseudonym_key": "k-b"}
        for options in (settings_a, settings_a, settings_b):
            with override_settings(AUDITMW=options):
                Client().post("/login", {"username": "mallory", "password": "x"})
        first, second, third = (e["actor"]["claimed_id"] for e in http_events(audit_events, "auth"))
        assert first == second
        assert first != third

    def test_raw_usernames_when_allowed(self, audit_events: list[Event]) -> None:
        """``record_usernames`` keeps the attempted username as typed."""
        with override_settings(AUDITMW={"service": "parity", "record_usernames": True}):
            Client().post("/login", {"username": "mallory", "password": "hunter2-secret"})
        (failed,) = http_events(audit_events, "auth")
        assert failed["actor"]["claimed_id"] == "mallory"
        assert "hunter2" not in repr(audit_events)


class TestAsyncRequests:
    def test_async_handler_records_the_same_fields(self, audit_events: list[Event]) -> None:
        """Through Django's real ASGI handler the event has the same route and resource."""
        response = asgi_request(get_asgi_application(), "GET", "/orders/7", headers=HEADERS)
        (event,) = http_events(audit_events)
        assert response.headers["Audit-Id"] == event["event_id"]
        assert event["request"]["route"] == "/orders/{order_id}"
        assert event["resource"]["id"] == "7"
        assert event["annotations"]["ticket"] == "T-1"
        assert event["request"]["host"] == "api.example.com"
        assert event["source"] == {"ip": "127.0.0.1", "port": 50000, "user_agent": "probe/1"}

    def test_async_stream(self, audit_events: list[Event]) -> None:
        """An async streaming response is recorded when its stream ends."""

        async def fetch() -> bytes:
            response = await AsyncClient().get("/stream")
            return b"".join([chunk async for chunk in astreaming(response)])

        assert async_to_sync(fetch)() == b"chunk-0chunk-1chunk-2"
        (event,) = http_events(audit_events)
        assert event["response"]["bytes"] == 21
        assert event["outcome"] == "success"

    def test_async_session_user(self, audit_events: list[Event]) -> None:
        """A lazy session user is loaded with ``auser()`` on the async path."""
        user = make_user()

        async def fetch() -> None:
            client = AsyncClient()
            await client.aforce_login(user)
            await client.get("/forbidden")

        async_to_sync(fetch)()
        event = http_events(audit_events)[-1]
        assert event["actor"]["id"] == str(user.pk)
        assert event["outcome"] == "denied"

    def test_sync_mode_under_asgi_with_lazy_user_and_async_stream(
        self, audit_events: list[Event]
    ) -> None:
        """Below a sync-only middleware the user is loaded on the request thread, not the loop."""
        user = make_user()
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(1, "tests.frameworks.django_app.views.sync_only_middleware")

        async def fetch() -> bytes:
            client = AsyncClient()
            await client.aforce_login(user)
            response = await client.get("/stream")
            return b"".join([chunk async for chunk in astreaming(response)])

        with override_settings(MIDDLEWARE=middleware):
            assert async_to_sync(fetch)() == b"chunk-0chunk-1chunk-2"
        event = http_events(audit_events)[-1]
        assert event["response"]["bytes"] == 21
        assert event["actor"]["id"] == str(user.pk)

    def test_async_exception(self, audit_events: list[Event]) -> None:
        """A view exception under the async handler is recorded with its type."""
        response = async_to_sync(AsyncClient(raise_request_exception=False).get)("/boom")
        (event,) = http_events(audit_events)
        assert response.status_code == 500
        assert event["outcome_reason"] == "exception:ValueError"


@pytest.mark.service("postgres")
def test_suite_on_postgresql() -> None:
    """The Django tests above also pass with PostgreSQL as the database."""
    if os.environ.get("AUDITMW_TEST_DB") == "postgres":
        pytest.skip("already running on PostgreSQL")
    env = {**os.environ, "AUDITMW_TEST_DB": "postgres"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", __file__],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
