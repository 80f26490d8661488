"""The native core's entry points against their Python references, per call.

Run: ``python -m benchmarks.bench_native`` (about 20 s).  Prints the median of
interleaved rounds, in nanoseconds per event, of

- ``ChainEncoder.encode`` (serialize + chain + MAC + seal; checkpoints every 1000 events)
  with the chain step in Python and in C, and
- the chain step alone (hash, MAC, seal splice of one ~1 KB canonical line).

- the request thread's parsing (phase 2): ``Headers.pick`` of the pipeline's 6 names on a
  fresh ``Headers`` of 12 typical browser headers, ``format_time`` and ``new_event_id``.

Both cores run in the same process (the Python one by setting ``chain_step`` to ``None``),
so the ratio is measured within one run.
"""

from __future__ import annotations

import hmac
import statistics
import time
from hashlib import sha256
from typing import Any

from auditmw import _native
from auditmw.canonical import dumps
from auditmw.core import canonical, event
from auditmw.integrity import IntegrityOptions
from auditmw.integrity.layout import EVENT_DOMAIN, MAC_DOMAIN
from benchmarks.bench_integrity import make_event

EVENTS = 20_000
STEPS = 200_000
ROUNDS = 5
MAC_KEY = b"\x01" * 32


def encode_round(native: bool, events: list[dict[str, Any]]) -> float:
    """ns per event of ``ChainEncoder.encode`` in batches of 64."""
    saved = _native.chain_step
    if not native:
        _native.chain_step = None
    try:
        encoder = IntegrityOptions(mac_key=MAC_KEY, checkpoint_every=1000).encoder_for(
            "auditmw", "bench"
        )
    finally:
        _native.chain_step = saved
    start = time.perf_counter_ns()
    for at in range(0, len(events), 64):
        encoder.encode(events[at : at + 64])
    return (time.perf_counter_ns() - start) / len(events)


def python_step(body: bytes, head: bytes, marker: bytes, mac: bytes) -> bytes:
    """The Python chain step of ``ChainEncoder._append`` (MAC on)."""
    digest = sha256(EVENT_DOMAIN + head + body).digest()
    seal = b'"hash":"' + digest.hex().encode() + b'",'
    seal += b'"mac":"' + hmac.digest(mac, MAC_DOMAIN + digest, "sha256").hex().encode() + b'",'
    found = body.find(marker)
    if found >= 0 and body.find(marker, found + 1) < 0:
        at = body.index(b",", found + len(marker)) + 1
        return b"".join((body[:at], seal, body[at:]))
    raise AssertionError("the marker is once in the body")


def step_round(native: bool) -> float:
    """ns per call of the chain step alone."""
    marker = b'"integrity":{"chain_id":"c",'
    integrity = {"chain_id": "c", "epoch": 0, "prev": "00" * 32, "seq": 1}
    body = dumps({**make_event(1), "integrity": integrity})
    head = bytes(32)
    if native:
        assert _native.chain_step is not None
        assert _native.MacKey is not None
        step, key = _native.chain_step, _native.MacKey(MAC_KEY)
        start = time.perf_counter_ns()
        for _ in range(STEPS):
            step(body, head, marker, EVENT_DOMAIN, key, MAC_DOMAIN)
    else:
        start = time.perf_counter_ns()
        for _ in range(STEPS):
            python_step(body, head, marker, MAC_KEY)
    return (time.perf_counter_ns() - start) / STEPS


CALLS = 200_000
BROWSER = [
    (b"host", b"shop.example.org"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"referer", b"https://shop.example.org/cart"),
    (b"cookie", b"session=4f9a0c2e; theme=dark"),
    (b"x-forwarded-for", b"203.0.113.7, 10.0.0.2"),
    (b"x-request-id", b"9b2f6c1e-5d4a-4f0b-8a31-2c7e9d0b6a55"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"sec-fetch-mode", b"navigate"),
    (b"priority", b"u=0, i"),
]
PICKED = ("x-request-id", "host", "traceparent", "x-forwarded-for", "forwarded", "user-agent")
RAW_PICKED = tuple(name.encode() for name in PICKED)


def request_round(native: bool) -> dict[str, float]:
    """ns per call of Headers(raw).pick(6 names), format_time and new_event_id."""
    pick, index = event._native_pick, event._native_index
    if not native:
        event._native_pick = event._native_index = None
    fmt = canonical.format_time if native else canonical.py_format_time
    new_id = canonical.new_event_id if native else canonical.py_new_event_id
    headers, names, raw_names, raw = event.Headers, PICKED, RAW_PICKED, BROWSER
    out: dict[str, float] = {}
    try:
        start = time.perf_counter_ns()
        for _ in range(CALLS):
            headers(raw).pick(names, raw_names)
        out["Headers(raw).pick"] = (time.perf_counter_ns() - start) / CALLS
    finally:
        event._native_pick, event._native_index = pick, index
    now = time.time_ns()
    start = time.perf_counter_ns()
    for i in range(CALLS):
        fmt(now + i * 997)
    out["format_time"] = (time.perf_counter_ns() - start) / CALLS
    start = time.perf_counter_ns()
    for i in range(CALLS):
        new_id(now + i * 10_000)
    out["new_event_id"] = (time.perf_counter_ns() - start) / CALLS
    return out


def main() -> None:
    if _native.CORE != "native":
        print(f"the native core is not active: {_native.UNAVAILABLE_REASON}")
        return
    events = [make_event(i) for i in range(EVENTS)]
    figures: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for native in (False, True):
            core = "native" if native else "python"
            figures.setdefault(f"encode/{core}", []).append(encode_round(native, events))
            figures.setdefault(f"step/{core}", []).append(step_round(native))
            for what, ns in request_round(native).items():
                figures.setdefault(f"{what}/{core}", []).append(ns)
    print("| what | python ns/call | native ns/call | native / python |")
    print("|---|---:|---:|---:|")
    for what in ("encode", "step", "Headers(raw).pick", "format_time", "new_event_id"):
        py = statistics.median(figures[f"{what}/python"])
        c = statistics.median(figures[f"{what}/native"])
        print(f"| {what} | {py:,.0f} | {c:,.0f} | {c / py:.2f} |")


if __name__ == "__main__":
    main()
