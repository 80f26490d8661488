"""Atheris harness over the Python entry points of ``auditmw._native._core``.

Each input becomes the arguments of ``chain_step`` (and of ``sha256`` / ``MacKey``), at
times of the wrong type or as another buffer kind; the result must equal the Python
reference of ``ChainEncoder._append`` byte for byte, or both must raise alike.  Or (one
input in three) a raw ASGI header list and names for ``headers_pick`` / ``headers_index``
(against ``Headers`` with the native calls off), and times for ``format_time`` (against
``py_format_time``).  Or (one in three) an exchange of attacker-controlled strings for
``build_http_event``: it must build the event of ``Pipeline._build_python`` (equal, same
keys in the same order, same types) or decline it (``None``).

    python fuzz/fuzz_python.py -max_total_time=30 [corpus dirs]

``fuzz/run.sh`` runs it against a copy of the extension built with AddressSanitizer
(``AUDITMW_FUZZ_CORE`` names that ``.so``; ``asan_with_fuzzer.so`` of atheris preloaded).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

import atheris

# The Python reference lives beside the differential tests (one specification).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from tests.native.reference import reference as _reference
from tests.native.reference import shape

if TYPE_CHECKING:
    from types import ModuleType


def load_core() -> ModuleType:
    path = os.environ.get("AUDITMW_FUZZ_CORE")
    if not path:
        from auditmw._native import _core

        return _core
    spec = importlib.util.spec_from_file_location("auditmw._native._core", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


core = load_core()


reference = atheris.instrument_func(_reference)


def as_kind(data: bytes, kind: int) -> object:
    """The same bytes as another buffer kind, or (kind 3) a wrong type."""
    return (data, bytearray(data), memoryview(data), data.decode("latin-1"))[kind]


@atheris.instrument_func
def test_one_input(raw: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(raw)
    choice = fdp.ConsumeIntInRange(0, 2)
    if choice == 0:
        parse_input(fdp)
    elif choice == 1:
        chain_input(fdp)
    else:
        build_input(fdp)


NAMES = [b"host", b"cookie", b"x-forwarded-for", b"user-agent", b"", b"Host", b"COOKIE"]


def header_name(fdp: atheris.FuzzedDataProvider) -> bytes:
    if fdp.ConsumeBool():
        return NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
    return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))


@atheris.instrument_func
def parse_input(fdp: atheris.FuzzedDataProvider) -> None:
    from unittest import mock

    from auditmw.core import canonical, event

    ns = fdp.ConsumeIntInRange(-(2**64), 2**64)
    want_time: object
    try:
        want_time = canonical.py_format_time(ns)
    except (OverflowError, OSError, ValueError) as exc:
        want_time = type(exc)
    try:
        got_time: object = core.format_time(ns)
    except (OverflowError, OSError, ValueError) as exc:
        got_time = type(exc)
    assert got_time == want_time or (ns < 0 or ns >= 2**63), (ns, got_time, want_time)
    if 0 <= ns < 2**63:
        assert got_time == want_time, (ns, got_time, want_time)

    raw: list[object] = []
    for _ in range(fdp.ConsumeIntInRange(0, 20)):
        pair: object = (header_name(fdp), fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)))
        if fdp.ConsumeProbability() < 0.05:  # what the C code leaves to Python
            pair = [pair, ("host", "x"), (b"host",), (bytearray(b"h"), b"v")][
                fdp.ConsumeIntInRange(0, 3)
            ]
        raw.append(pair)
    source = tuple(raw) if fdp.ConsumeBool() else raw
    names = tuple(header_name(fdp) for _ in range(fdp.ConsumeIntInRange(0, 8)))
    with (
        mock.patch.object(event, "_native_pick", None),
        mock.patch.object(event, "_native_index", None),
    ):
        try:
            want: object = event.Headers(source).pick(
                tuple(n.decode("latin-1") for n in names), names
            )
            want_index: object = event.Headers(source)._index()
        except (TypeError, ValueError) as exc:
            want = want_index = type(exc)
    got = core.headers_pick(source, names)
    got_index = core.headers_index(source)
    if got is None:  # not plain (bytes, bytes) pairs: the Python code runs
        assert got_index is None
        assert any(p.__class__ is not tuple or len(p) != 2 for p in raw) or any(  # type: ignore[arg-type]
            x.__class__ is not bytes
            for p in raw
            for x in p  # type: ignore[attr-defined]
        )
    else:
        assert got == want, (got, want)
        assert got_index == want_index, (got_index, want_index)
        assert list(got_index) == list(want_index)  # type: ignore[call-overload]


@atheris.instrument_func
def chain_input(fdp: atheris.FuzzedDataProvider) -> None:
    mac_on = fdp.ConsumeBool()
    marker = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
    head = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 70))
    key = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 160))
    domain = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    mac_domain = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    kinds = [fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeProbability() < 0.1 else 0 for _ in range(4)]
    parts = [
        fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)) for _ in range(fdp.ConsumeIntInRange(1, 3))
    ]
    body = marker.join(parts) + fdp.ConsumeBytes(fdp.remaining_bytes())

    assert core.sha256(body) == hashlib.sha256(body).digest()
    mac_key = core.MacKey(key) if mac_on else None
    if mac_key is not None:
        assert mac_key.digest(body) == hmac.digest(key, body, "sha256")
    args = (
        as_kind(body, kinds[0]),
        as_kind(head, kinds[1]),
        as_kind(marker, kinds[2]),
        as_kind(domain, kinds[3]),
        mac_key,
        mac_domain,
    )
    if 3 in kinds:  # a str where bytes belong
        try:
            core.chain_step(*args)
        except TypeError:
            return
        raise AssertionError("a str argument was accepted")
    try:
        want = reference(body, head, marker, domain, key if mac_on else None, mac_domain)
    except ValueError:
        try:
            core.chain_step(*args)
        except ValueError:
            return
        raise AssertionError("the Python code raised ValueError, the C code did not") from None
    got = core.chain_step(*args)
    assert got == want, (got, want)


_PIPELINES: dict[bool, Any] = {}
BUILD_HEADERS = [b"x-request-id", b"host", b"traceparent", b"x-forwarded-for", b"forwarded",
                 b"user-agent", b"Host", b"accept"]  # fmt: skip
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def pipeline(proxies: bool) -> Any:
    """One pipeline per proxy setting (small limits: truncation is reached), made once."""
    if proxies not in _PIPELINES:
        from auditmw import AuditConfig
        from auditmw.config.values import Limits
        from auditmw.pipeline import Pipeline

        config = AuditConfig(
            service="fuzz",
            trusted_proxies=["127.0.0.1"] if proxies else [],
            limits=Limits(path=64, header=64, user_agent=32),
        )
        _PIPELINES[proxies] = Pipeline(config)
    return _PIPELINES[proxies]


def text(fdp: atheris.FuzzedDataProvider, limit: int) -> str:
    """Attacker-controlled text: Latin-1 bytes, or any code points (lone surrogates too)."""
    if fdp.ConsumeBool():
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, limit)).decode("latin-1")
    return fdp.ConsumeUnicodeNoSurrogates(limit) if fdp.ConsumeBool() else fdp.ConsumeUnicode(limit)


@atheris.instrument_func
def build_input(fdp: atheris.FuzzedDataProvider) -> None:
    from auditmw.core.decision import Decision
    from auditmw.core.event import Actor, Exchange, Headers

    pipe = pipeline(fdp.ConsumeBool())
    raw = []
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        name = BUILD_HEADERS[fdp.ConsumeIntInRange(0, len(BUILD_HEADERS) - 1)]
        value = (
            TRACEPARENT
            if fdp.ConsumeProbability() < 0.1
            else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
        )
        raw.append((name, value))
    params = {text(fdp, 8): text(fdp, 300) for _ in range(fdp.ConsumeIntInRange(0, 3))}
    status = [None, 200, 401, 403, 404, 500, fdp.ConsumeInt(9)][fdp.ConsumeIntInRange(0, 6)]
    fields = {
        "event_id": "e",
        "kind": "http" if fdp.ConsumeProbability() < 0.9 else "websocket",
        "method": "GET" if fdp.ConsumeBool() else text(fdp, 40),
        "path": text(fdp, 100),
        "start_ns": fdp.ConsumeIntInRange(0, 2**63 - 1),
        "start_mono": fdp.ConsumeInt(8),
        "end_ns": fdp.ConsumeIntInRange(0, 2**63 - 1),
        "end_mono": fdp.ConsumeInt(8),
        "query": "" if fdp.ConsumeBool() else text(fdp, 20),
        "http_version": text(fdp, 4),
        "client": ("127.0.0.1", fdp.ConsumeIntInRange(0, 65535)) if fdp.ConsumeBool() else None,
        "route": "/orders/{order_id}" if fdp.ConsumeBool() else None,
        "path_params": params,
        "status": status,
        "aborted": fdp.ConsumeProbability() < 0.1,
    }
    actor = Actor(id=text(fdp, 10), type="user", roles=(text(fdp, 10),))
    decision = Decision(rule=text(fdp, 6))
    events = []
    for build in (pipe._build_python, pipe._build_python, core.build_http_event):
        exchange = Exchange(headers=Headers(raw), **fields)
        if build is core.build_http_event:
            events.append(build(exchange, decision, actor, pipe.service, pipe._native_ctx))
        else:  # the first fills the route and stamp caches, the actor's form
            events.append(build(exchange, decision, actor))
    want, got = events[1], events[2]
    if got is not None:
        assert got == want, (got, want)
        assert shape(got) == shape(want), (got, want)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
