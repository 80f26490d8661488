"""``_core.headers_pick`` / ``headers_index`` against the Python ``Headers``, value for value."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.core import event
from auditmw.core.event import Headers

if TYPE_CHECKING:
    from types import ModuleType

#: the names the pipeline picks on every request, as pipeline/builder.py passes them
PICKED = ("x-request-id", "host", "traceparent", "x-forwarded-for", "forwarded", "user-agent")
RAW_PICKED = tuple(name.encode() for name in PICKED)

NAMES = [*RAW_PICKED, b"cookie", b"content-type", b"x-api-key", b""]
#: the names, in every case the tests care about, and arbitrary bytes
name_bytes = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(bytes.upper),
    st.sampled_from(NAMES).map(lambda n: n.title()),
    st.binary(max_size=12),
)
value_bytes = st.one_of(st.binary(max_size=40), st.binary(min_size=1000, max_size=5000))
pairs = st.lists(st.tuples(name_bytes, value_bytes), max_size=24)
picked_names = st.lists(st.sampled_from([*NAMES, b"Host", b"COOKIE"]), max_size=8).map(tuple)


def python_headers(raw: Any) -> Headers:
    return Headers(raw)


def run(fn: Any, *args: Any) -> tuple[str, Any]:
    """The result, or the exception's type: both sides must raise alike."""
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return "raised", type(exc)


def reference_pick(raw: Any, raw_names: tuple[bytes, ...]) -> tuple[str, Any]:
    names = tuple(n.decode("latin-1") for n in raw_names)
    with (
        mock.patch.object(event, "_native_pick", None),
        mock.patch.object(event, "_native_index", None),
    ):
        return run(Headers(raw).pick, names, raw_names)


def reference_index(raw: Any) -> tuple[str, Any]:
    with mock.patch.object(event, "_native_index", None):
        return run(Headers(raw)._index)


def reference_get(raw: Any, name: str) -> tuple[str, Any]:
    with mock.patch.object(event, "_native_index", None):
        return run(Headers(raw).get, name)


@settings(max_examples=600, deadline=None)
@given(raw=pairs, raw_names=picked_names, as_tuple=st.booleans())
def test_pick_equals_python(
    core: ModuleType, raw: list[tuple[bytes, bytes]], raw_names: tuple[bytes, ...], as_tuple: bool
) -> None:
    source = tuple(raw) if as_tuple else raw
    want = reference_pick(source, raw_names)
    assert want[0] == "ok"
    assert core.headers_pick(source, raw_names) == want[1]
    # and through Headers, on whichever core runs
    names = tuple(n.decode("latin-1") for n in raw_names)
    assert Headers(source).pick(names, raw_names) == want[1]


@settings(max_examples=600, deadline=None)
@given(raw=pairs, as_tuple=st.booleans())
def test_index_equals_python(
    core: ModuleType, raw: list[tuple[bytes, bytes]], as_tuple: bool
) -> None:
    source = tuple(raw) if as_tuple else raw
    want = reference_index(source)
    got = core.headers_index(source)
    assert want[0] == "ok"
    assert got == want[1]
    assert list(got) == list(want[1])  # the same order (Headers.items())
    for name in ("host", "cookie", "HOST", "x-forwarded-for", "nope"):
        assert run(Headers(source).get, name) == reference_get(source, name)


def other_inputs() -> list[Any]:
    """What the C code leaves to Python: it answers None, Headers runs the Python code."""
    return [
        [("host", "a")],  # str names and values (a non-compliant server)
        [(b"host", "a")],
        [("Host", b"a"), (b"host", b"b")],
        [(bytearray(b"host"), b"a")],  # unhashable: Python raises TypeError
        [(b"host", bytearray(b"a"))],
        [(b"host", memoryview(b"a"))],
        [[b"host", b"a"]],  # pairs as lists
        [(b"host", b"a", b"b")],  # not a pair
        [(b"host",)],
        [b"ho"],
        [None],
        iter([(b"host", b"a")]),
        ((b"host", b"a") for _ in range(2)),
        {b"host": b"a"},
        b"",
        0,
    ]


@pytest.mark.parametrize("index", range(len(other_inputs())))
def test_other_inputs_fall_back(core: ModuleType, index: int) -> None:
    def fresh() -> Any:
        return other_inputs()[index]

    assert core.headers_pick(fresh(), RAW_PICKED) is None or fresh() in (b"", 0)
    assert core.headers_index(fresh()) is None or fresh() in (b"", 0)
    want = reference_pick(fresh(), (b"host",))
    assert run(Headers(fresh()).pick, ("host",), (b"host",)) == want
    assert run(Headers(fresh()).get, "host") == reference_get(fresh(), "host")


class BytesSub(bytes):
    pass


def test_subclasses_fall_back(core: ModuleType) -> None:
    class ListSub(list[tuple[bytes, bytes]]):
        pass

    assert core.headers_pick(ListSub([(b"host", b"a")]), (b"host",)) is None
    assert core.headers_pick([(BytesSub(b"host"), b"a")], (b"host",)) is None
    assert core.headers_pick([(b"host", b"a")], (BytesSub(b"host"),)) is None
    assert core.headers_pick([(b"host", b"a")], [b"host"]) is None
    assert core.headers_pick([(b"host", b"a")], (b"host", "host")) is None
    assert Headers(ListSub([(b"Host", b"a")])).pick(("host",), (b"host",)) == ["a"]


def test_edge_cases(core: ModuleType) -> None:
    assert core.headers_pick(None, RAW_PICKED) == [None] * 6
    assert core.headers_pick([], ()) == []
    assert core.headers_index(None) == {}
    assert core.headers_index(()) == {}
    raw = [(b"Cookie", b"a=1"), (b"cookie", b"b=2"), (b"X-A", b""), (b"x-a", b"")]
    assert core.headers_pick(raw, (b"cookie", b"x-a", b"X-A")) == ["a=1; b=2", ", ", None]
    assert core.headers_index(raw) == {b"cookie": b"a=1; b=2", b"x-a": b", "}
    binary = bytes(range(256))
    assert core.headers_pick([(b"h", binary)], (b"h",)) == [binary.decode("latin-1")]
    big = b"x" * (1 << 20)
    assert core.headers_pick([(b"h", big)] * 3, (b"h",)) == [", ".join([big.decode()] * 3)]
    many = [(b"n%d" % i, b"v%d" % i) for i in range(1000)]
    assert core.headers_pick(many, (b"n999", b"n0")) == ["v999", "v0"]
    assert core.headers_index(many) == dict(many)


def test_pick_then_get_agree() -> None:
    """A pick on a fresh Headers (C) leaves get() and items() (index) consistent."""
    raw = [(b"Host", b"a"), (b"host", b"b"), (b"cookie", b"c")]
    headers = Headers(raw)
    assert headers.pick(("host",), (b"host",)) == ["a, b"]
    assert headers.get("host") == "a, b"
    assert headers.items() == [("host", "a, b"), ("cookie", "c")]
    assert headers.pick(("cookie",), (b"cookie",)) == ["c"]


def test_a_collecting_finalizer_cannot_change_the_list(core: ModuleType) -> None:
    """The one allocation that may run the garbage collector comes before any read."""
    raw: list[Any] = [(b"host", b"a")]

    class Mutator:
        def __del__(self) -> None:
            raw.clear()

    for _ in range(200):
        cycle: list[Any] = [Mutator()]
        cycle.append(cycle)
        del cycle
        result = core.headers_pick(raw, (b"host",))
        assert result in ([None], ["a"])
        raw[:] = [(b"host", b"a")]
    gc.collect()
