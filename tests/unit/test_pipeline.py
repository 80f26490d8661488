"""The pipeline: exchange -> canonical event."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from auditmw import Actor, AuditConfig, AuthInfo
from auditmw.canonical import new_event_id
from auditmw.event import Exchange, Headers
from auditmw.exceptions import DropEvent
from auditmw.pipeline import Pipeline
from auditmw.types import Event

REQUIRED = {
    "schema_version", "event_id", "time", "end_time", "duration_us", "kind", "action",
    "operation", "outcome", "severity", "actor", "source", "request", "response",
    "resource", "service", "policy",
}  # fmt: skip


def make_exchange(
    method: str = "GET",
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    raw_headers: list[tuple[bytes, bytes]] | None = None,
    **fields: Any,
) -> Exchange:
    now = time.time_ns()
    raw = raw_headers or [(k.encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    fields.setdefault("client", ("198.51.100.9", 40000))
    fields.setdefault("status", 200)
    return Exchange(
        event_id=new_event_id(now),
        kind=fields.pop("kind", "http"),
        method=method,
        path=path,
        headers=Headers(raw),
        start_ns=now,
        start_mono=time.perf_counter_ns(),
        end_ns=now + 1_500_000,
        end_mono=time.perf_counter_ns() + 1_500_000,
        **fields,
    )


def build(exchange: Exchange, **config: Any) -> Event:
    config.setdefault("service", "orders-api")
    event = Pipeline(AuditConfig(**config)).process(exchange)
    assert event is not None
    return event


class TestRequiredFields:
    def test_http_event_has_every_required_field(self) -> None:
        """An HTTP event carries every field DESIGN §3 marks required."""
        event = build(make_exchange(route="/orders/{order_id}", path_params={"order_id": "7"}))
        assert event.keys() >= REQUIRED
        assert event["schema_version"] == "1.0"
        assert event["service"]["name"] == "orders-api"
        assert "/" in event["service"]["instance"]

    def test_event_serializes_as_one_json_line(self) -> None:
        """The event is JSON with no floats and no newline."""
        line = orjson.dumps(build(make_exchange(path="/a\nb")), option=orjson.OPT_SORT_KEYS)
        assert b"\n" not in line
        assert b"." not in line.split(b'"duration_us":')[1].split(b",")[0]


class TestOutcome:
    @pytest.mark.parametrize(
        ("status", "outcome", "severity", "reason"),
        [
            pytest.param(200, "success", "info", None, id="200"),
            pytest.param(302, "success", "info", None, id="302"),
            pytest.param(401, "denied", "medium", "authn_required", id="401"),
            pytest.param(403, "denied", "medium", "authz_denied", id="403"),
            pytest.param(404, "failure", "low", None, id="404"),
            pytest.param(422, "failure", "low", None, id="422"),
            pytest.param(500, "error", "high", None, id="500"),
            pytest.param(503, "error", "high", None, id="503"),
        ],
    )
    def test_status_mapping(
        self, status: int, outcome: str, severity: str, reason: str | None
    ) -> None:
        """Outcome and severity follow the status class."""
        event = build(make_exchange(status=status))
        assert (event["outcome"], event["severity"]) == (outcome, severity)
        assert event.get("outcome_reason") == reason
        assert event["response"]["status_code"] == status

    def test_exception_records_type_not_message(self) -> None:
        """An exception is an error with its type; the message never appears."""
        event = build(make_exchange(status=None, exception=KeyError("card 4111111111111111")))
        assert event["outcome"] == "error"
        assert event["outcome_reason"] == "exception:KeyError"
        assert event["response"]["status_code"] == 500
        assert b"4111" not in orjson.dumps(event)

    def test_aborted(self) -> None:
        """A client disconnect is 'aborted'."""
        event = build(make_exchange(status=200, aborted=True))
        assert (event["outcome"], event["outcome_reason"]) == ("aborted", "client_disconnected")

    def test_no_response(self) -> None:
        """An app that never answered is an error (the server sends 500)."""
        event = build(make_exchange(status=None))
        assert (event["outcome"], event["outcome_reason"]) == ("error", "no_response")

    def test_invalid_token_401(self) -> None:
        """A 401 with a failed credential says the token was invalid."""

        class Forged:
            def resolve(self, exchange: Exchange) -> Actor:
                return Actor(auth=AuthInfo(method="jwt", error="invalid_signature"))

        event = build(make_exchange(status=401), resolvers=[Forged()])
        assert event["outcome_reason"] == "authn_invalid_token"
        assert event["actor"]["auth"] == {
            "method": "jwt",
            "verified": False,
            "error": "invalid_signature",
        }

    @pytest.mark.parametrize(
        ("method", "operation"),
        [
            pytest.param("GET", "read", id="get"),
            pytest.param("HEAD", "read", id="head"),
            pytest.param("POST", "create", id="post"),
            pytest.param("PUT", "update", id="put"),
            pytest.param("PATCH", "update", id="patch"),
            pytest.param("DELETE", "delete", id="delete"),
            pytest.param("OPTIONS", "other", id="options"),
        ],
    )
    def test_operation_from_method(self, method: str, operation: str) -> None:
        """The operation follows the HTTP method."""
        assert build(make_exchange(method))["operation"] == operation


class TestResource:
    @pytest.mark.parametrize(
        ("route", "params", "rtype", "rid"),
        [
            pytest.param("/orders/{order_id}", {"order_id": 42}, "orders", "42", id="param"),
            pytest.param("/api/v1/orders", {}, "orders", None, id="collection"),
            pytest.param(
                "/orders/{order_id}/items/{item_id}",
                {"order_id": 1, "item_id": 2},
                "items",
                "2",
                id="nested",
            ),
            pytest.param("/orders/{order_id}/cancel", {"order_id": 5}, "orders", "5", id="verb"),
            pytest.param("/files/{path:path}", {"path": "a/b"}, "files", "a/b", id="converter"),
            pytest.param("/", {}, "root", None, id="root"),
            pytest.param("/Big Things/{x}", {"x": "1"}, "big_things", "1", id="sanitized"),
            pytest.param(None, {}, "unmatched", None, id="no-route"),
        ],
    )
    def test_resource_from_route_template(
        self, route: str | None, params: dict[str, Any], rtype: str, rid: str | None
    ) -> None:
        """Resource type and id come from the route template, never from the raw path."""
        event = build(make_exchange(path="/whatever/999", route=route, path_params=params))
        assert event["resource"]["type"] == rtype
        assert event["resource"].get("id") == rid
        assert event["action"] == f"{rtype}.read"

    def test_non_ascii_param_names_are_escaped(self) -> None:
        """Event keys stay ASCII so that sorted output stays RFC 8785 canonical."""
        event = build(make_exchange(route="/x/{é}", path_params={"é": "1"}))
        assert all(key.isascii() for key in event["resource"]["route_params"])

    def test_param_without_text_keeps_the_event(self) -> None:
        """A route parameter whose ``str()`` raises (a custom converter's object, an
        integer beyond the digit limit) is recorded as ``<type>``: the event is built."""

        class Odd:
            def __str__(self) -> str:
                raise RuntimeError("no text")

        params = {"a": Odd(), "b": 10**5000, "c": 7}
        event = build(make_exchange(route="/x/{a}/{b}/{c}", path_params=params))
        assert event["resource"]["route_params"] == {"a": "<Odd>", "b": "<int>", "c": "7"}


class TestRouteCache:
    def test_client_chosen_methods_do_not_grow_the_cache(self) -> None:
        """Per-route parts are cached by operation: junk methods share one entry."""
        pipeline = Pipeline(AuditConfig(service="orders-api"))
        route = "/orders/{order_id}"
        for n in range(50):
            exchange = make_exchange(f"JUNK{n}", "/orders/7", route=route)
            exchange.path_params = {"order_id": "7"}
            event = pipeline.process(exchange)
            assert event is not None
            assert event["action"] == "orders.other"
            assert event["resource"] == {
                "type": "orders",
                "id": "7",
                "route_params": {"order_id": "7"},
            }
        for method, action in (("GET", "orders.read"), ("DELETE", "orders.delete")):
            event = pipeline.process(make_exchange(method, "/orders/7", route=route))
            assert event is not None
            assert event["action"] == action
        assert len(pipeline._routes) == 3


class TestRequestId:
    @pytest.mark.parametrize(
        ("inbound", "accepted"),
        [
            pytest.param("req-123", True, id="simple"),
            pytest.param("3f2a:ab/cd+ef=", True, id="charset"),
            pytest.param("x" * 128, True, id="max-length"),
            pytest.param("x" * 129, False, id="too-long"),
            pytest.param("bad id", False, id="space"),
            pytest.param("evil\nline", False, id="newline"),
            pytest.param("", False, id="empty"),
        ],
    )
    def test_inbound_request_id(self, inbound: str, accepted: bool) -> None:
        """A valid X-Request-ID is kept; anything else is replaced by the event id."""
        exchange = make_exchange(headers={"x-request-id": inbound})
        event = build(exchange)
        expected = inbound if accepted else exchange.event_id
        assert event["request"]["id"] == expected


class TestTrace:
    @pytest.mark.parametrize(
        ("header", "trace"),
        [
            pytest.param(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
                id="valid",
            ),
            pytest.param("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None, id="zero-trace"),
            pytest.param(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None, id="zero-span"
            ),
            pytest.param("00-XYZ-00f067aa0ba902b7-01", None, id="garbage"),
            pytest.param("", None, id="empty"),
        ],
    )
    def test_traceparent(self, header: str, trace: tuple[str, str] | None) -> None:
        """Trace ids come from a valid W3C traceparent only."""
        event = build(make_exchange(headers={"traceparent": header}))
        got = event.get("trace")
        assert (None if got is None else (got["trace_id"], got["span_id"])) == trace


class TestClientAddress:
    @pytest.mark.parametrize(
        ("peer", "headers", "trusted", "ip"),
        [
            pytest.param("203.0.113.5", {"x-forwarded-for": "1.2.3.4"}, [], "203.0.113.5", id="untrusted-xff"),
            pytest.param("10.0.0.2", {"x-forwarded-for": "1.2.3.4"}, ["10.0.0.0/8"], "1.2.3.4", id="trusted-xff"),
            pytest.param(
                "10.0.0.2",
                {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.9"},
                ["10.0.0.0/8"],
                "1.2.3.4",
                id="rightmost-untrusted",
            ),
            pytest.param(
                "10.0.0.2", {"forwarded": 'for="[2001:db8::1]:443";proto=https'}, ["10.0.0.0/8"], "2001:db8::1", id="forwarded-v6"
            ),
            pytest.param("10.0.0.2", {"forwarded": "for=192.0.2.60;proto=http"}, ["10.0.0.0/8"], "192.0.2.60", id="forwarded"),
            pytest.param("10.0.0.2", {"x-forwarded-for": "not-an-ip"}, ["10.0.0.0/8"], "10.0.0.2", id="garbage-hop"),
            pytest.param("10.0.0.2", {}, ["10.0.0.0/8"], "10.0.0.2", id="no-header"),
        ],
    )  # fmt: skip
    def test_forwarded_headers_only_from_trusted_proxies(
        self, peer: str, headers: dict[str, str], trusted: list[str], ip: str
    ) -> None:
        """X-Forwarded-For / Forwarded are believed only from trusted proxies."""
        event = build(make_exchange(headers=headers, client=(peer, 1234)), trusted_proxies=trusted)
        assert event["source"]["ip"] == ip
        if headers:
            assert event["source"]["forwarded_for"] == next(iter(headers.values()))

    def test_bad_trusted_proxy_is_a_clear_error(self) -> None:
        """A malformed trusted proxy names the setting."""
        with pytest.raises(ValueError, match="trusted_proxies") as info:
            AuditConfig(service="x", trusted_proxies=["10.0.0.0/33"])
        assert getattr(info.value, "setting", None) == "trusted_proxies"


class TestHostileInput:
    def test_huge_header_is_capped_and_marked(self) -> None:
        """A 64 KiB user agent is cut to the limit and listed in 'truncated'."""
        event = build(make_exchange(headers={"user-agent": "A" * 65536}))
        assert len(event["source"]["user_agent"]) == 512
        assert "/source/user_agent" in event["truncated"]

    def test_huge_path_is_capped(self) -> None:
        """A long path is capped at the path limit."""
        event = build(make_exchange(path="/" + "p" * 10_000))
        assert len(event["request"]["path"]) == 2048
        assert "/request/path" in event["truncated"]

    def test_non_utf8_header_bytes_are_escaped(self) -> None:
        """Bytes that are not UTF-8 become visible escapes, never invalid JSON."""
        raw = [(b"user-agent", b"bad \xff\xfe bytes"), (b"host", b"h\xc3\xa9llo")]
        event = build(make_exchange(raw_headers=raw))
        assert event["source"]["user_agent"] == "bad \\xff\\xfe bytes"
        assert event["request"]["host"] == "héllo"
        orjson.loads(orjson.dumps(event))

    def test_lone_surrogate_in_path(self) -> None:
        """A path with a lone surrogate still serializes."""
        event = build(make_exchange(path="/a\udcff"))
        assert b"\\udcff" in orjson.dumps(event) or b"\\\\udcff" in orjson.dumps(event)


class TestSecrets:
    def test_secret_query_params_are_redacted(self) -> None:
        """Known secret parameters and JWT-looking values are replaced and listed."""
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
        event = build(make_exchange(query=f"token=abc&x=1&Password=hunter2&next={jwt}"))
        query = event["request"]["query"]
        assert "abc" not in query
        assert "hunter2" not in query
        assert jwt not in query
        assert "x=1" in query
        assert event["redactions"] == [
            "/request/query/token",
            "/request/query/password",
            "/request/query/next",
        ]

    def test_secret_headers_are_never_recorded(self) -> None:
        """Authorization and Cookie stay out even when allow-listed."""
        headers = {"authorization": "Bearer s3cret", "cookie": "sid=s3cret", "content-type": "a/b"}
        event = build(
            make_exchange(headers=headers),
            record_headers=["Authorization", "Cookie", "Content-Type"],
        )
        assert event["request"]["headers"] == {"content-type": "a/b"}
        assert b"s3cret" not in orjson.dumps(event)


class TestProcessors:
    def test_processor_can_change_and_drop(self) -> None:
        """Processors run in order; DropEvent discards the event."""

        def tag(event: Event) -> Event:
            event["annotations"] = {"tagged": "yes"}
            return event

        def drop_health(event: Event) -> Event:
            if event["request"]["path"] == "/health":
                raise DropEvent
            return event

        config = AuditConfig(service="s", processors=[tag, drop_health])
        pipeline = Pipeline(config)
        kept = pipeline.process(make_exchange(path="/orders"))
        assert kept is not None
        assert kept["annotations"] == {"tagged": "yes"}
        assert pipeline.process(make_exchange(path="/health")) is None


class TestLifecycle:
    def test_lifecycle_event_shape(self) -> None:
        """Lifecycle events carry kind, details and the policy stamp, no request."""
        pipeline = Pipeline(AuditConfig(service="s"))
        event = pipeline.lifecycle("audit.started", {})
        assert event["kind"] == event["action"] == "audit.started"
        assert event["actor"]["type"] == "service"
        assert event["policy"]["rule"] == "lifecycle"
        assert "request" not in event
        assert event["details"]["pid"] > 0
