"""Reference counts balanced and memory flat over a million calls of each entry point."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING

import pytest

from auditmw.core import canonical
from auditmw.integrity.layout import EVENT_DOMAIN, MAC_DOMAIN

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

CALLS = 1_000_000


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4  # resident pages of 4 KiB


def flat(call: Callable[[], object], calls: int = CALLS) -> None:
    """RSS and the objects' reference counts do not grow over ``calls`` calls."""
    for _ in range(10_000):  # warm-up: freelists, arenas
        call()
    gc.collect()
    before = rss_kib()
    for _ in range(calls):
        call()
    gc.collect()
    grown = rss_kib() - before
    assert grown < 2048, f"RSS grew by {grown} KiB over {calls} calls"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.slow
@pytest.mark.parametrize("case", ["splice-mac", "splice", "fallback", "error", "mac-key", "sha256"])
def test_memory_flat(core: ModuleType, case: str) -> None:
    marker = b'"integrity":{"chain_id":"c",'
    body = b'{"a":"' + b"x" * 300 + b'",' + marker + b'"epoch":0,"prev":"00","seq":1}}'
    head = bytes(32)
    key = core.MacKey(b"k" * 32)
    args = {
        "splice-mac": (body, head, marker, EVENT_DOMAIN, key, MAC_DOMAIN),
        "splice": (body, head, marker, EVENT_DOMAIN, None, MAC_DOMAIN),
        "fallback": (body + body, head, marker, EVENT_DOMAIN, key, MAC_DOMAIN),
        "error": (marker, head, marker, EVENT_DOMAIN, key, MAC_DOMAIN),
    }
    watched = [body, head, marker, key]
    counts = [sys.getrefcount(o) for o in watched]
    if case in args:
        step, a = core.chain_step, args[case]
        if case == "error":

            def call() -> object:
                try:
                    return step(*a)
                except ValueError:
                    return None

        else:

            def call() -> object:
                return step(*a)

    elif case == "mac-key":

        def call() -> object:
            return core.MacKey(body).digest(head)

    else:

        def call() -> object:
            return core.sha256(body)

    flat(call)
    del call
    assert [sys.getrefcount(o) for o in watched] == counts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["pick", "pick-joined", "pick-fallback", "index", "format-time", "format-ref", "event-id"],
)
def test_memory_flat_request_path(core: ModuleType, case: str) -> None:
    """The request thread's entry points (phase 2): flat RSS, balanced reference counts."""
    values = [b"x" * 300, b"example.org", b"a=1"]
    raw = [(b"host", values[1]), (b"Cookie", values[2]), (b"cookie", values[2])]
    raw += [(b"x-h%d" % i, values[0]) for i in range(80)]  # past the stack array
    names = (b"x-request-id", b"host", b"traceparent", b"x-forwarded-for", b"cookie")
    bad = [(b"host", b"a"), ("host", "b")]
    ns = 1_733_222_222_123_456_789
    watched: list[object] = [*values, raw, names, bad, ns]
    counts = [sys.getrefcount(o) for o in watched]
    calls: dict[str, Callable[[], object]] = {
        "pick": lambda: core.headers_pick(raw, names[:4]),
        "pick-joined": lambda: core.headers_pick(raw, names),
        "pick-fallback": lambda: core.headers_pick(bad, names),
        "index": lambda: core.headers_index(raw),
        "format-time": lambda: core.format_time(ns),
        "format-ref": lambda: core.format_time(-ns),  # the Python reference answers
        "event-id": lambda: core.new_event_id(ns),
    }
    core.set_format_time_reference(canonical.py_format_time)  # as canonical does, when native
    assert core.format_time(-ns) == canonical.py_format_time(-ns)
    flat(calls[case], 200_000 if case == "format-ref" else CALLS)
    del calls
    assert [sys.getrefcount(o) for o in watched] == counts
