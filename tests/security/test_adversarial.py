"""One request must never switch auditing off (issues 15.1, 21.7).

Each test sends a hostile request through a real FastAPI, Flask or Django app, then
an ordinary one, and checks that both are in the file and that the file verifies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw.event import Actor
from tests.security._apps import FRAMEWORKS, LEVELS, make_config, make_target

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.event import Exchange
    from auditmw.types import Event

MAX_DEPTH = 64  # auditmw.canonical.MAX_DEPTH, the documented cut (docs/failure.md)
NESTED_300 = b"[" * 300 + b"]" * 300  # 600 bytes: deeper than orjson will serialize
JSON = {"content-type": "application/json"}


def _by_id(events: list[Event], audit_id: str | None) -> Event:
    (event,) = [e for e in events if e.get("event_id") == audit_id]
    return event


def _exchange(
    tmp_path: Path,
    framework: str,
    level: str,
    body: bytes,
    headers: dict[str, str],
    *,
    mode: str = "async",
    url: str = "/orders/1",
) -> tuple[Event, Event]:
    """Send ``body``, then an ordinary request; return both events; the file must verify."""
    path = tmp_path / "audit.jsonl"
    config, registry = make_config(path, level, mode=mode)
    target = make_target(framework, config, path, registry)
    try:
        hostile = target.call("PUT", url, body, dict(headers))
        ordinary = target.call("PUT", "/orders/1", b'{"ok": 1}', dict(JSON))
    finally:
        report = target.close()
    assert hostile.status in (200, 404)  # an odd route parameter may not match
    assert ordinary.status == 200
    assert report.clean, report.codes()
    events = target.events()
    assert "audit.internal_error" not in [e["kind"] for e in events]
    return _by_id(events, hostile.audit_id), _by_id(events, ordinary.audit_id)


class TestNestedBody:
    @pytest.mark.parametrize("framework", FRAMEWORKS)
    @pytest.mark.parametrize("level", ["request", "request_response"])
    def test_deep_json_body_async(self, tmp_path: Path, framework: str, level: str) -> None:
        """A 300-deep JSON body is recorded cut at depth, and later requests are still audited."""
        hostile, ordinary = _exchange(tmp_path, framework, level, NESTED_300, JSON)
        pointer = "/request/body/json" + "/0" * MAX_DEPTH
        assert hostile["truncated"] == [pointer]
        assert ordinary["request"]["body"]["json"] == {"ok": 1}

    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_many_changed_values_list_a_bounded_number(
        self, tmp_path: Path, framework: str
    ) -> None:
        """Hundreds of huge integers: each stored as a string, at most 64 pointers listed."""
        body = (
            b"[" + b",".join([b"%d" % (2**60 + n) for n in range(300)]) + b"]"
        )  # 6 KB: under the body cap
        headers = {"content-type": "application/json"}
        hostile, _ = _exchange(tmp_path, framework, "request", body, headers)
        assert hostile["request"]["body"]["json"][5] == str(2**60 + 5)
        assert len(hostile["truncated"]) == 64
        assert hostile["truncated"][-1] == "/request/body/json"

    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_deep_json_body_durable(self, tmp_path: Path, framework: str) -> None:
        """Durable mode: the hostile request and the next one get 200, not 503."""
        hostile, _ = _exchange(tmp_path, framework, "request", NESTED_300, JSON, mode="durable")
        assert hostile["outcome"] == "success"


class TestPaths:
    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_non_latin1_path(self, tmp_path: Path, framework: str) -> None:
        """A path outside Latin-1 (Django's test client puts it decoded in PATH_INFO) is audited."""
        hostile, _ = _exchange(tmp_path, framework, "metadata", b"", {}, url="/orders/%F0%9F%98%80")
        assert hostile["request"]["path"] in ("/orders/\U0001f600", "/orders/%F0%9F%98%80")


class TestAnnotations:
    @pytest.mark.parametrize("framework", ["fastapi", "flask"])
    def test_lone_surrogate_in_an_annotation(self, tmp_path: Path, framework: str) -> None:
        """A filename from os.fsdecode (lone surrogate) is escaped, not fatal."""
        # The app annotates os.fsdecode(b"report-\xff.pdf"): the lone surrogate \udcff.
        headers = {**JSON, "x-note": b"report-\xff.pdf".hex()}
        hostile, _ = _exchange(tmp_path, framework, "metadata", b"{}", headers)
        assert hostile["annotations"]["note"] == "report-\\udcff.pdf"


class TestClaims:
    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_claims_json_cannot_hold(self, tmp_path: Path, framework: str) -> None:
        """Verified tokens whose claims hold lone surrogates, huge numbers, deep nesting."""
        import jwt

        from auditmw.identity.jwt import JWTResolver

        secret = "s" * 64
        deep: Any = "leaf"
        for _ in range(300):
            deep = {"d": deep}
        tokens = [
            jwt.encode(claims, secret, algorithm="HS256")
            for claims in (
                {"sub": "user-\udc80", "name": "n\ud800"},  # refused as malformed
                {"sub": "u1", "roles": [2**70, "admin"], "scope": "a b", "x": deep},
                {"sub": 2**70, "name": "k" * 5000, "email": ["not", "a", "string"]},
            )
        ]
        path = tmp_path / "audit.jsonl"
        resolver = JWTResolver(algorithms=["HS256"], secret=secret)
        config, registry = make_config(path, "metadata", resolvers=[resolver])
        target = make_target(framework, config, path, registry)
        try:
            calls = [
                target.call("PUT", "/orders/1", b"", {"authorization": f"Bearer {token}"})
                for token in tokens
            ]
            ordinary = target.call("PUT", "/orders/1", b"", {})
        finally:
            report = target.close()
        assert [c.status for c in [*calls, ordinary]] == [200] * 4
        assert report.clean, report.codes()
        events = target.events()
        for call in calls:
            _by_id(events, call.audit_id)
        assert _by_id(events, calls[0].audit_id)["actor"]["auth"]["error"] == "malformed"
        assert _by_id(events, ordinary.audit_id)["actor"]["type"] == "anonymous"
        assert "audit.internal_error" not in [e["kind"] for e in events]


class OddResolver:
    """A custom resolver whose actor holds what JSON cannot: surrogates, 2**70, odd keys."""

    def resolve(self, exchange: Exchange) -> Actor | None:
        deep: Any = 1
        for _ in range(300):
            deep = [deep]
        return Actor(
            id="svc\udc80",
            type="service",
            name="n\ud800",
            roles=("r\udfff",),
            extra=(("claims", {1: 2**70, "nan": math.nan, "deep": deep, "o": object()}),),
        )


class TestCustomResolver:
    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_actor_values_are_made_serializable(self, tmp_path: Path, framework: str) -> None:
        """The actor's values are cleaned once, listed under /actor in truncated."""
        path = tmp_path / "audit.jsonl"
        config, registry = make_config(path, "metadata", resolvers=[OddResolver()])
        target = make_target(framework, config, path, registry)
        try:
            first = target.call("PUT", "/orders/1", b"", {})
            second = target.call("PUT", "/orders/1", b"", {})
        finally:
            report = target.close()
        assert (first.status, second.status) == (200, 200)
        assert report.clean, report.codes()
        events = target.events()
        for response in (first, second):
            event = _by_id(events, response.audit_id)
            actor = event["actor"]
            assert (actor["id"], actor["name"], actor["roles"]) == (
                "svc\\udc80",
                "n\\ud800",
                ["r\\udfff"],
            )
            assert actor["claims"]["1"] == str(2**70)
            assert {"/actor/claims/1", "/actor/claims/nan", "/actor/claims/o"} <= set(
                event["truncated"]
            )


def _weird_processor(event: Event) -> Event:
    """A processor that puts what JSON cannot hold into the event."""
    if event.get("kind") == "http" and event["request"]["path"].endswith("/666"):
        nested: Any = "leaf"
        for _ in range(400):
            nested = [nested]
        event["weird"] = {
            "big": 2**80,
            "nan": math.nan,
            1: "int key",
            "obj": object(),
            "deep": nested,
            "text": "a\ud800b",
        }
    return event


class TestWriterGuard:
    @pytest.mark.parametrize("framework", FRAMEWORKS)
    def test_unserializable_values_from_a_processor(self, tmp_path: Path, framework: str) -> None:
        """The writer's last-resort guard degrades the event; delivery goes on; the log verifies."""
        path = tmp_path / "audit.jsonl"
        config, registry = make_config(path, "metadata", processors=[_weird_processor])
        target = make_target(framework, config, path, registry)
        try:
            hostile = target.call("PUT", "/orders/666", b"", {})
            ordinary = target.call("PUT", "/orders/1", b"", {})
        finally:
            report = target.close()
        assert (hostile.status, ordinary.status) == (200, 200)
        assert report.clean, report.codes()
        events = target.events()
        degraded = _by_id(events, hostile.audit_id)
        assert degraded["weird"]["big"] == str(2**80)
        assert degraded["weird"]["nan"] == "NaN"
        assert degraded["weird"]["obj"] == "[TRUNCATED]"
        assert degraded["weird"]["text"] == "a\\ud800b"
        assert {"/weird/big", "/weird/nan", "/weird/1", "/weird/obj"} <= set(degraded["truncated"])
        assert _by_id(events, ordinary.audit_id)["outcome"] == "success"


# -- the property: any hostile request, any framework, any level --------------------------

_depth = st.integers(min_value=200, max_value=1500)
hostile_json = st.one_of(
    _depth.map(lambda n: b"[" * n + b"]" * n),
    _depth.map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(min_value=2**53, max_value=2**200).map(lambda n: b'{"n":%d}' % n),
    st.sampled_from([b"NaN", b'{"x":Infinity}', b"[-Infinity]", b'{"x":1e999}']),
    st.sampled_from([b'"\\ud800"', b'{"\\udc80":1}', b'{"k":"\\udfff\\ud800"}']),
    st.integers(min_value=1_000, max_value=60_000).map(lambda n: b'{"' + b"k" * n + b'":1}'),
    st.binary(max_size=200).map(lambda b: b'{"x":"' + b + b'"}'),
    st.binary(max_size=300),
)
route_params = st.sampled_from(
    ["1", "%ff%fe", "%ed%a0%80", "%00%0a", "x" * 3000, "%F0%9F%98%80", "a%2Fb"]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
        "text/plain; charset=utf-8",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/json; charset=latin-1",
    ]
)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    case=st.tuples(st.sampled_from(LEVELS), hostile_json, content_types, route_params),
    mode=st.sampled_from(["async", "durable"]),
)
def test_any_hostile_request_leaves_auditing_on(
    tmp_path_factory: pytest.TempPathFactory,
    framework: str,
    case: tuple[str, bytes, str, str],
    mode: str,
) -> None:
    """Whatever the body and route parameter, the next request is audited; the log verifies."""
    level, body, content_type, item = case
    tmp_path = tmp_path_factory.mktemp("adv")
    headers = {"content-type": content_type}
    _exchange(tmp_path, framework, level, body, headers, mode=mode, url=f"/orders/{item}")
