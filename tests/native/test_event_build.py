"""``_core.build_http_event`` against ``Pipeline._build_python``: the same event, key for key.

Every generated exchange is built by a pipeline with the C builder and by one without it;
the events must be equal, serialize to the same sorted JSON, and have the same keys in the
same order with values of the same types, all the way down.  The C builder may decline a
request (the Python code then builds it, and ``native_fallbacks`` counts it), never build
it differently.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw import Actor, AuditConfig, AuthInfo
from auditmw.config.values import Limits
from auditmw.core.context import RequestContext
from auditmw.core.decision import Decision
from auditmw.event import Exchange, Headers
from auditmw.pipeline import Pipeline
from auditmw.pipeline.forwarded import ROOT_PATH
from tests.native.reference import shape
from tests.native.test_refcounts import flat

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

AM_CTX_PICKED, AM_CTX_PROXIES = 6, 11  # am_event.h: what ctx holds there
START_NS = 1_796_327_510_564_557_890
START_MONO = 536_831_366_269
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "proxies": {"trusted_proxies": ["10.0.0.0/8", "127.0.0.1"]},
    "record": {"record_headers": ["accept", "user-agent"]},
    "small-limits": {"limits": Limits(path=8, header=8, user_agent=8)},
}

USER = Actor(id="user-42", type="user", name="Ada", roles=("admin",))

#: text of every kind the builder must either copy or leave to the Python code
odd_text = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=4),
    st.text(st.characters(max_codepoint=0x1F), max_size=6),
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0xFF), max_size=6),
)
ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
texts = st.one_of(
    ascii_text,
    odd_text,
    st.integers(0, 3000).map(lambda n: "/" + "a" * n),
    st.sampled_from(["", "/", "/orders/42", "/a b", "/\x00", "/é", "/\udcff"]),
)
latin1 = st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
request_ids = st.one_of(
    st.sampled_from(
        ["7d5c4b8e-2f7a-4c1b-9a57-3f1e2d6c8b90", "---", "a" * 128, "a" * 129, "x.y:z/+=", "a b"]
    ),
    st.text(st.sampled_from("aZ9-._:/+= \t!é"), max_size=130),
    latin1,
)
traceparents = st.one_of(
    st.just(TRACEPARENT),
    st.sampled_from(
        [
            TRACEPARENT.upper(),
            " \t" + TRACEPARENT + "\x1c ",
            TRACEPARENT + "-extra",
            TRACEPARENT[:-1],
            "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
            "\xa0" + TRACEPARENT,
        ]
    ),
    st.text(st.sampled_from("0af-"), max_size=60),
    latin1,
)
header_values = st.one_of(
    ascii_text, latin1, st.integers(0, 1100).map(lambda n: "h" * n), st.just(AGENT)
)
HEADER_NAMES = {
    "x-request-id": request_ids,
    "host": header_values,
    "traceparent": traceparents,
    "x-forwarded-for": st.sampled_from(["203.0.113.5", "203.0.113.5, 10.0.0.2", "junk", ""]),
    "forwarded": st.sampled_from(["for=203.0.113.7", 'for="[2001:db8::1]:443"', ""]),
    "user-agent": header_values,
    "accept": st.just("application/json"),
    "X-Request-ID": request_ids,
}


@dataclass
class Request:
    """The drawn fields; ``exchange()`` makes a fresh Exchange of them for each pipeline."""

    fields: dict[str, Any]
    headers: list[tuple[str, str]]
    mapping: bool = False
    context: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def exchange(self) -> Exchange:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        headers = (
            Headers(mapping={k.lower(): v for k, v in self.headers})
            if self.mapping
            else Headers(raw)
        )
        ctx = None
        if self.context is not None:
            ctx = RequestContext("ctx")
            for name, value in self.context.items():
                setattr(ctx, name, dict(value) if isinstance(value, dict) else value)
        return Exchange(headers=headers, context=ctx, **self.fields)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    fields: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["01a23d76-9224-75dc-878a-0a787c05d153", "e-1"])),
        "kind": draw(st.sampled_from(["http"] * 6 + ["websocket", "auth"])),
        "method": draw(
            st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]), texts)
        ),
        "path": draw(texts),
        "start_ns": START_NS,
        "start_mono": START_MONO,
        "query": draw(
            st.one_of(
                st.sampled_from(["", "", "a=1", "token=x&b=2", "q=%ff", "+Key=v&a&b=&=c&"]),
                st.sampled_from(["API_KEY=1", "x=eyJhbGci.eyJzdWIi.sig", "x=eyJab+c.eyJ1234."]),
                st.sampled_from(["x=eyJabcd.efgh.", "x=eyJabcd.efg.", "pass+word=1"]),
                st.integers(0, 3000).map(lambda n: "q=" + "x" * n),
                st.text(st.sampled_from("a=&+%.eyJ-_K"), max_size=40),
                latin1,
            )
        ),
        "scheme": draw(st.sampled_from(["http", "https"])),
        "http_version": draw(st.sampled_from(["1.1", "1.0", "2", "2.0", "3", "0.9", "é"])),
        "client": draw(
            st.sampled_from(
                [None, ("127.0.0.1", 50000), ("10.0.0.9", 0), ("::1", 1), (None, 5), ("x",)]
            )
        ),
        "route": draw(st.sampled_from([None, "/orders/{order_id}", "/", "/users/{id:int}/x"])),
        "path_params": draw(
            st.one_of(
                st.none(),
                st.just({}),
                st.dictionaries(
                    st.one_of(st.sampled_from(["order_id", "id"]), odd_text),
                    st.one_of(texts, st.integers(), st.just("v" * 300)),
                    max_size=3,
                ),
            )
        ),
        "status": draw(
            st.one_of(
                st.sampled_from([200, 201, 302, 400, 401, 403, 404, 500, 503, None]),
                st.sampled_from([2**70, -(2**70), True, 0]),
            )
        ),
        "end_ns": draw(st.sampled_from([0, START_NS + 85_833, START_NS - 5])),
        "end_mono": draw(st.sampled_from([0, START_MONO + 85_833, START_MONO + 999, 2**80])),
        "request_bytes": draw(st.integers(0, 10)),
        "response_bytes": draw(st.integers(0, 10)),
        "exception": draw(st.sampled_from([None, None, None, ValueError("x")])),
        "aborted": draw(st.booleans()) and draw(st.booleans()),
        "request_body": draw(st.sampled_from([None, None, None, b'{"a": 1}'])),
        "response_body": draw(st.sampled_from([None, None, None, b"[1]"])),
        "ws_accepted": draw(st.booleans()),
        "ws_close_code": draw(st.sampled_from([None, 1000, 1006, 1011])),
        "extra": draw(
            st.sampled_from([None, None, {}, {ROOT_PATH: "/api"}, {ROOT_PATH: "/é"}, {"x": 1}])
        ),
        "trace": draw(st.sampled_from([None, None, ("a" * 32, "b" * 16)])),
    }
    names = draw(st.lists(st.sampled_from(list(HEADER_NAMES)), max_size=7))
    headers = [(name, draw(HEADER_NAMES[name])) for name in names]
    context = draw(
        st.sampled_from(
            [
                None,
                {},
                {"annotations": {"k": "v"}},
                {"resource_type": "invoice"},
                {"action": "x.y"},
                {"resource_id": "7"},
                {"resource_type": ""},
            ]
        )
    )
    return Request(fields, headers, mapping=draw(st.booleans()), context=context)


@st.composite
def plain_requests(draw: st.DrawFn) -> Request:
    """Requests the C builder mostly covers: what varies is the text, its lengths and limits."""
    request = draw(requests())
    ascii_params = st.dictionaries(
        st.sampled_from(["order_id", "id", "x"]),
        st.one_of(ascii_text, st.just("v" * 300), st.integers(), st.just(10**400)),
    )
    request.fields.update(
        kind="http",
        exception=None,
        request_body=None,
        response_body=None,
        method=draw(st.one_of(st.sampled_from(["GET", "POST", "DELETE"]), ascii_text)),
        path=draw(st.one_of(ascii_text, st.integers(0, 3000).map(lambda n: "/" + "p" * n))),
        path_params=draw(st.one_of(st.none(), ascii_params)),
        extra=draw(st.sampled_from([None, {}, {ROOT_PATH: "/api"}, {ROOT_PATH: "/" * 3000}])),
        http_version=draw(st.sampled_from(["1.1", "2", "0.9"])),
        query=draw(st.one_of(st.just(""), ascii_text, st.just(request.fields["query"]))),
    )
    ascii_values = {"host", "user-agent", "x-request-id", "traceparent"}
    request.headers = [
        (k, v if k not in ascii_values or v.isascii() else v.encode("ascii", "replace").decode())
        for k, v in request.headers
    ]
    request.context = draw(st.sampled_from([None, {}, {"resource_type": ""}]))
    return request


plain_decisions = st.builds(
    Decision,
    rule=st.sampled_from(["default", "orders"]),
    action=st.sampled_from([None, "order.view"]),
    resource_type=st.sampled_from([None, "thing"]),
    headers=st.sampled_from([None, ()]),
)


decisions = st.builds(
    Decision,
    level=st.sampled_from(["metadata", "request", "request_response"]),
    rule=st.sampled_from(["default", "orders"]),
    action=st.sampled_from([None, "order.view"]),
    resource_type=st.sampled_from([None, "thing"]),
    resource_id=st.sampled_from([None, "", "{order_id}", "{missing}"]),
    headers=st.sampled_from([None, (), ("accept",)]),
)
actors = st.sampled_from(
    [
        Actor(),
        Actor(id="user-42", type="user", name="Ada", roles=("admin",), scopes=("read",)),
        Actor(id="u", type="user", auth=AuthInfo(method="jwt", verified=True, error="expired")),
        Actor(id="u", type="user", extra=(("mfa", "otp"), ("claims", {"a": [1]}))),
        Actor(id="\udcff", type="user", name="x" * 5000),
        Actor(id="k", type="api_key", auth=AuthInfo(method="api_key", error="")),
    ]
)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as exc:  # both sides must fail alike
        return "raised", type(exc)


def dumped(event: object) -> tuple[str, Any]:
    return outcome(lambda: orjson.dumps(event, option=orjson.OPT_SORT_KEYS))


def pipelines(core: ModuleType, config: dict[str, Any]) -> tuple[Pipeline, Pipeline]:
    native = Pipeline(AuditConfig(service="bench", **config))
    native.native_build = core.build_http_event
    python = Pipeline(AuditConfig(service="bench", **config))
    python.native_build = None
    return native, python


def assert_same(native: object, python: object) -> None:
    assert native == python
    assert shape(native) == shape(python)
    assert dumped(native) == dumped(python)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    request=requests(),
    decision=decisions,
    actor=actors,
    config=st.sampled_from(list(CONFIGS)),
    warm_actor=st.booleans(),
)
def test_event_equals_python(  # noqa: PLR0917 - hypothesis arguments
    core: ModuleType,
    request: Request,
    decision: Decision,
    actor: Actor,
    config: str,
    warm_actor: bool,
) -> None:
    """The C builder builds what the Python code builds, or declines (caches cold or warm)."""
    native, python = pipelines(core, CONFIGS[config])
    if warm_actor:
        actor.to_dict()
    expected = outcome(lambda: python._build(request.exchange(), decision, actor))
    for _ in range(2):  # the first call may find the route and stamp caches empty
        got = outcome(lambda: native._build(request.exchange(), decision, actor))
        assert got[0] == expected[0]
        if got[0] == "ok":
            assert_same(got[1], expected[1])
        else:
            assert got == expected
    assert python.native_built == python.native_fallbacks == 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=plain_requests(),
    decision=plain_decisions,
    actor=st.sampled_from([Actor(), USER, Actor(id="u", auth=AuthInfo(error="expired"))]),
    config=st.sampled_from(["default", "small-limits", "proxies"]),
)
def test_plain_event_equals_python(
    core: ModuleType, request: Request, decision: Decision, actor: Actor, config: str
) -> None:
    """Requests the C builder covers (mostly): built in C, equal to the Python event."""
    native, python = pipelines(core, CONFIGS[config])
    actor.to_dict()
    expected = python._build(request.exchange(), decision, actor)
    for _ in range(2):
        assert_same(native._build(request.exchange(), decision, actor), expected)


# -- the fast path is taken where it should be, and declined where it must be -------------


def bench_request(**changes: Any) -> Request:
    """The request of the benchmarks (benchmarks/bench_asgi.py, the target variant)."""
    headers = [
        ("host", "api.example.com"),
        ("user-agent", AGENT),
        ("accept", "application/json"),
        ("x-request-id", "7d5c4b8e-2f7a-4c1b-9a57-3f1e2d6c8b90"),
        ("traceparent", TRACEPARENT),
    ]
    fields: dict[str, Any] = {
        "event_id": "01a23d76-9224-75dc-878a-0a787c05d153",
        "kind": "http",
        "method": "GET",
        "path": "/orders/42",
        "start_ns": START_NS,
        "start_mono": START_MONO,
        "end_ns": START_NS + 85_833,
        "end_mono": START_MONO + 85_833,
        "client": ("127.0.0.1", 50000),
        "route": "/orders/{order_id}",
        "path_params": {"order_id": "42"},
        "status": 200,
        "response_bytes": 2,
    }
    context = changes.pop("context", {})
    header_changes = changes.pop("headers", {})
    fields.update(changes)
    headers = [(k, header_changes.pop(k, v)) for k, v in headers] + list(header_changes.items())
    return Request(fields, headers, context=context)


def run_twice(
    core: ModuleType,
    request: Request,
    *,
    actor: Actor = USER,
    decision: Decision | None = None,
    config: dict[str, Any] | None = None,
) -> Pipeline:
    """Process ``request`` twice (the first fills the caches); both events as Python's."""
    native, python = pipelines(core, config or {})
    for _ in range(2):
        decide = decision or native.policy.decide(request.exchange(), actor)
        event = native._build(request.exchange(), decide, actor)
        assert_same(event, python._build(request.exchange(), decide, actor))
    return native


def test_benchmark_request_takes_the_fast_path(core: ModuleType) -> None:
    """The benchmark's request is built in C once the route and stamp caches are filled."""
    native = run_twice(core, bench_request())
    assert (native.native_built, native.native_fallbacks) == (1, 1)
    for _ in range(2):  # through process(): the anonymous actor's form is cached by the first
        event = native.process(bench_request().exchange())
        assert event is not None
        assert event["trace"] == {
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
        }
    assert native.native_built >= 2


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"status": None}, id="no-status"),
        pytest.param({"status": 401}, id="401"),
        pytest.param({"status": 403}, id="403"),
        pytest.param({"status": 2**70}, id="huge-status"),
        pytest.param({"aborted": True, "status": None}, id="aborted"),
        pytest.param({"client": None}, id="no-client"),
        pytest.param({"route": None, "path_params": None}, id="unmatched"),
        pytest.param({"headers": {"host": "h" * 300}}, id="long-host"),
        pytest.param({"headers": {"user-agent": "a\x00" * 400}}, id="long-agent"),
        pytest.param({"headers": {"x-forwarded-for": "203.0.113.5"}}, id="xff-untrusted"),
        pytest.param({"headers": {"x-request-id": "a b"}}, id="invalid-request-id"),
        pytest.param({"headers": {"traceparent": "junk"}}, id="invalid-traceparent"),
        pytest.param({"trace": ("a" * 32, "b" * 16)}, id="span"),
        pytest.param({"path": "/" + "p" * 3000}, id="long-path"),
        pytest.param({"extra": {ROOT_PATH: "/api"}}, id="root-path"),
        pytest.param({"path_params": {"order_id": "9" * 300}}, id="long-param"),
        pytest.param({"path_params": {"order_id": 42}}, id="int-param"),
        pytest.param({"path_params": {"order_id": -(10**299)}}, id="long-int-param"),
        pytest.param({"method": "BREW", "path": "/\x7f"}, id="odd-method"),
        pytest.param({"query": "a=1&b=x+y&c&=d&token=&"}, id="query"),
        pytest.param({"query": "q=" + "x" * 3000}, id="long-query"),
        pytest.param({"query": "API+Key=x"}, id="plus-name"),
        pytest.param({"query": "a=eyJhbGci.eyJ.s&b=eyJab.cdef."}, id="jwt-like-query"),
    ],
)
def test_covered(core: ModuleType, changes: dict[str, Any]) -> None:
    """Each of these requests is built in C (after the first, which fills the caches)."""
    native = run_twice(core, bench_request(**changes))
    assert (native.native_built, native.native_fallbacks) == (1, 1)


@pytest.mark.parametrize(
    ("changes", "actor", "decision", "config"),
    [
        pytest.param({"query": "token=x"}, USER, None, None, id="secret-param"),
        pytest.param({"query": "Pass+Word=x&API_KEY=x"}, USER, None, None, id="secret-upper"),
        pytest.param({"query": "a=eyJhbGci.eyJzdWIi.s"}, USER, None, None, id="jwt-param"),
        pytest.param({"query": "a=%41"}, USER, None, None, id="percent-query"),
        pytest.param({"query": "a=\xe9"}, USER, None, None, id="non-ascii-query"),
        pytest.param({"path": "/é"}, USER, None, None, id="non-ascii-path"),
        pytest.param({"method": "G\udcffT"}, USER, None, None, id="surrogate-method"),
        pytest.param({"headers": {"host": "\xe9"}}, USER, None, None, id="non-ascii-host"),
        pytest.param({"headers": {"user-agent": "\xff"}}, USER, None, None, id="latin1-agent"),
        pytest.param({"kind": "websocket"}, USER, None, None, id="websocket"),
        pytest.param({"exception": ValueError()}, USER, None, None, id="exception"),
        pytest.param({"request_body": b"{}"}, USER, None, None, id="request-body"),
        pytest.param({"response_body": b"{}"}, USER, None, None, id="response-body"),
        pytest.param({"path_params": {"order_id": True}}, USER, None, None, id="bool-param"),
        pytest.param({"path_params": {"order_id": 10**5000}}, USER, None, None, id="huge-int"),
        pytest.param({"path_params": {"ordré": "1"}}, USER, None, None, id="non-ascii-key"),
        pytest.param({"context": {"annotations": {"k": "v"}}}, USER, None, None, id="annotated"),
        pytest.param({"context": {"action": "a.b"}}, USER, None, None, id="action-override"),
        pytest.param({"http_version": 2}, USER, None, None, id="odd-type"),
        pytest.param(
            {"headers": {"traceparent": "\xa0" + TRACEPARENT}},
            USER,
            None,
            None,
            id="latin1-traceparent",
        ),
        pytest.param({}, Actor(extra=(("mfa", "otp"),)), None, None, id="actor-extra"),
        pytest.param({}, Actor(extra=(("n", 2**80),)), None, None, id="actor-changed"),
        pytest.param({}, USER, Decision(resource_id="{order_id}"), None, id="id-template"),
        pytest.param({}, USER, Decision(headers=("accept",)), None, id="decision-headers"),
        pytest.param({}, USER, None, {"record_headers": ["accept"]}, id="record-headers"),
        pytest.param(
            {"headers": {"x-forwarded-for": "203.0.113.5"}},
            USER,
            None,
            {"trusted_proxies": ["127.0.0.1"]},
            id="trusted-proxy",
        ),
    ],
)
def test_not_covered_falls_back(
    core: ModuleType,
    changes: dict[str, Any],
    actor: Actor,
    decision: Decision | None,
    config: dict[str, Any] | None,
) -> None:
    """The C builder declines each of these; the Python code builds them (and they count)."""
    native = run_twice(
        core, bench_request(**changes), actor=actor, decision=decision, config=config
    )
    assert (native.native_built, native.native_fallbacks) == (0, 2)


def test_wsgi_headers_mapping(core: ModuleType) -> None:
    """Headers over a mapping (WSGI) are read through their own ``pick``: still built in C."""
    request = bench_request()
    request.mapping = True
    native = run_twice(core, request)
    assert (native.native_built, native.native_fallbacks) == (1, 1)


def test_class_changed_after_caching(core: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A property put over a slot the C code has read directly is honoured (version tag)."""
    native, python = pipelines(core, {})
    request = bench_request()
    for _ in range(2):
        decision = native.policy.decide(request.exchange(), USER)
        native._build(request.exchange(), decision, USER)
    exchanges = [request.exchange(), request.exchange()]
    monkeypatch.setattr(Exchange, "path", property(lambda self: "/changed"))
    event = native._build(exchanges[0], decision, USER)
    assert event["request"]["path"] == "/changed"
    assert_same(event, python._build(exchanges[1], decision, USER))
    assert native.native_built == 2


def test_python_core_has_no_builder() -> None:
    """On the Python core the pipeline has no native builder and counts nothing."""
    from auditmw import _native

    pipeline = Pipeline(AuditConfig(service="s"))
    assert (pipeline.native_build is None) == (_native.CORE == "python")


def test_malformed_ctx_raises(core: ModuleType) -> None:
    """A ctx that is not the pipeline's tuple is a TypeError, not a crash."""
    native, _ = pipelines(core, {})
    args = (bench_request().exchange(), Decision(), USER, native.service)
    with pytest.raises(TypeError):
        core.build_http_event(*args, ())
    with pytest.raises(TypeError):
        core.build_http_event(*args)
    bad = list(native._native_ctx)
    bad[0] = 1
    with pytest.raises(TypeError):
        core.build_http_event(*args, tuple(bad))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.slow
@pytest.mark.parametrize("case", ["built", "declined", "truncated"])
def test_memory_flat(core: ModuleType, case: str) -> None:
    """Flat RSS and balanced reference counts over many calls, built or declined."""
    native, _ = pipelines(core, {"limits": Limits(path=4, header=1024, user_agent=8)})
    changes = {"declined": {"query": "token=1"}, "truncated": {"path": "/" + "x" * 40}}
    request = bench_request(**changes.get(case, {}))
    exchange = request.exchange()
    decision = native.policy.decide(exchange, USER)
    native._build_python(exchange, decision, USER)  # fills the caches
    USER.to_dict()
    ctx = native._native_ctx
    build = core.build_http_event
    # the objects of this test alone: not (), True, False, shared literals or the classes
    watched = [exchange, decision, native.service, *ctx[AM_CTX_PICKED:AM_CTX_PROXIES]]
    counts = [sys.getrefcount(o) for o in watched]
    assert (build(exchange, decision, USER, native.service, ctx) is None) == (case == "declined")

    def call() -> object:
        return build(exchange, decision, USER, native.service, ctx)

    flat(call, 300_000)
    del call
    after = [sys.getrefcount(o) for o in watched]
    assert [
        (repr(o)[:60], c, a) for o, c, a in zip(watched, counts, after, strict=True) if c != a
    ] == []
