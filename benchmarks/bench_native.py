"""The writer's chain step on the Python core and on the native core, per event.

Run: ``python -m benchmarks.bench_native`` (about 20 s).  Prints the median of
interleaved rounds, in nanoseconds per event, of

- ``ChainEncoder.encode`` (serialize + chain + MAC + seal; checkpoints every 1000 events)
  with the chain step in Python and in C, and
- the chain step alone (hash, MAC, seal splice of one ~1 KB canonical line).

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
    print("| what | python ns/event | native ns/event | native / python |")
    print("|---|---:|---:|---:|")
    for what in ("encode", "step"):
        py = statistics.median(figures[f"{what}/python"])
        c = statistics.median(figures[f"{what}/native"])
        print(f"| {what} | {py:,.0f} | {c:,.0f} | {c / py:.2f} |")


if __name__ == "__main__":
    main()
