"""``_core.format_time`` and ``_core.new_event_id`` against the Python code, byte for byte."""

from __future__ import annotations

import calendar
import os
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditmw.core import canonical

if TYPE_CHECKING:
    from types import ModuleType

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
INT64_MAX = (1 << 63) - 1
SECOND = 1_000_000_000


def ns_of(year: int, month: int = 1, day: int = 1, hms: tuple[int, int, int] = (0, 0, 0)) -> int:
    return calendar.timegm((year, month, day, *hms, 0, 0, 0)) * SECOND


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return "raised", type(exc)


# -- format_time --------------------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(ns=st.integers(min_value=0, max_value=INT64_MAX))
@example(ns=0)
@example(ns=999)
@example(ns=1000)
@example(ns=INT64_MAX)
@example(ns=SECOND - 1)
def test_format_time_equals_python(core: ModuleType, ns: int) -> None:
    assert core.format_time(ns) == canonical.py_format_time(ns)


def boundaries() -> Iterator[int]:
    """Year boundaries 1970..2262, leap days, and the microsecond around each."""
    for year in range(1970, 2263):
        yield ns_of(year)
        yield ns_of(year, 2, 28, (23, 59, 59))
        yield ns_of(year, 3, 1)
        if calendar.isleap(year):
            yield ns_of(year, 2, 29, (12, 0, 0))
    yield ns_of(2000, 2, 29)  # divisible by 400: leap
    yield ns_of(2100, 3, 1)  # divisible by 100: not leap


def test_format_time_boundaries(core: ModuleType) -> None:
    for at in boundaries():
        for ns in (at - 1000, at - 1, at, at + 1, at + 999, at + 1000, at + SECOND - 1):
            if 0 <= ns <= INT64_MAX:
                assert core.format_time(ns) == canonical.py_format_time(ns), ns


def test_format_time_sequences_use_the_cache(core: ModuleType) -> None:
    """Consecutive times share the cached date part; going back recomputes it."""
    start = ns_of(2024, 12, 31, (23, 59, 59))
    for step in (1, 999, 1000, 7_777_777, SECOND // 3, -SECOND // 7):
        for i in range(50):
            ns = start + i * step
            assert core.format_time(ns) == canonical.py_format_time(ns)


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -999,
        -1000,
        -1001,
        -SECOND,
        -(10**18),
        1 << 63,
        1 << 70,
        253402300800 * SECOND,
        -(1 << 70),
        True,
        False,
        1.5e18,
        0.0,
        "0",
        None,
    ],
)
def test_format_time_beyond_the_native_range(core: ModuleType, value: Any) -> None:
    """Negative, beyond 64 bits, not an int: the Python reference answers (or raises)."""
    assert outcome(canonical.format_time, value) == outcome(canonical.py_format_time, value)
    if canonical.format_time is core.format_time:
        assert outcome(core.format_time, value) == outcome(canonical.py_format_time, value)


@pytest.mark.parametrize("pure", ["1", "0"])
def test_format_time_epoch_first_call(pure: str) -> None:
    """The first call of a process formats epoch 0 (no cached prefix may be taken)."""
    env = {**os.environ, "AUDITMW_PURE_PYTHON": pure}
    code = "from auditmw.core.canonical import format_time as f; print(f(0), f(999), f(-1))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [
        "1970-01-01T00:00:00.000000Z",
        "1970-01-01T00:00:00.000000Z",
        "1969-12-31T23:59:59.999999Z",
    ]


# -- new_event_id -------------------------------------------------------------------


@pytest.fixture
def same_state(core: ModuleType) -> Iterator[Any]:
    """Give C and Python the same state and random pool; restore both afterwards."""
    saved_c = core._id_state()
    names = ("_id_last_ms", "_id_counter", "_id_prefix", "_pool", "_pool_pos")
    saved_py = {name: getattr(canonical, name) for name in names}

    def set_state(last_ms: int, counter: int, prefix: str, pool: bytes, pos: int) -> None:
        core._set_id_state(last_ms, counter, prefix, pool, pos)
        canonical._id_last_ms, canonical._id_counter, canonical._id_prefix = (
            last_ms,
            counter,
            prefix,
        )
        canonical._pool, canonical._pool_pos = pool.hex(), pos

    yield set_state
    core._set_id_state(*saved_c)
    for name, value in saved_py.items():
        setattr(canonical, name, value)


MS = 1_733_222_222_123  # a millisecond of 2024
ms_steps = st.lists(
    st.one_of(st.just(0), st.just(0), st.integers(-3, 3), st.integers(-(10**6), 10**9)),
    min_size=1,
    max_size=400,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**64),
    steps=ms_steps,
    sub_ms=st.integers(0, 999_999),
    counter=st.integers(0, 0xFFF),
)
def test_new_event_id_equals_python(  # noqa: PLR0917 - hypothesis arguments
    core: ModuleType, same_state: Any, seed: int, steps: list[int], sub_ms: int, counter: int
) -> None:
    """Same state, same pool, same clock: the same ids (the pool lasts 400 ids)."""
    pool = random.Random(seed).randbytes(4096)
    same_state(MS, counter, canonical._time_prefix(MS), pool, 0)
    ms = MS
    for step in steps:
        ms += step
        now = ms * 1_000_000 + sub_ms
        assert core.new_event_id(now) == canonical.py_new_event_id(now)
    assert core._id_state()[:2] == (canonical._id_last_ms, canonical._id_counter)


def test_counter_exhaustion(core: ModuleType, same_state: Any) -> None:
    """4096 ids in one millisecond: the counter runs out and borrows the next one."""
    pool = os.urandom(4096)
    same_state(MS, 0xFFD, canonical._time_prefix(MS), pool, 0)
    now = MS * 1_000_000
    got = [core.new_event_id(now) for _ in range(400)]
    assert got == [canonical.py_new_event_id(now) for _ in range(400)]
    assert got == sorted(got)
    assert got[1][:18] == canonical._time_prefix(MS) + "fff"
    assert got[2][:18] == canonical._time_prefix(MS + 1) + "000"


def test_the_initial_state_and_the_clock_going_back(core: ModuleType, same_state: Any) -> None:
    """From the initial state (no prefix yet), a clock before 1970, and keywords."""
    pool = os.urandom(4096)
    same_state(0, 0, "", pool, 0)
    for now in (-5 * 10**6, -1, 0, 10**6 - 1, 10**6, 5 * 10**6, 4 * 10**6, 1 << 70):
        assert core.new_event_id(now_ns=now) == canonical.py_new_event_id(now_ns=now)


def test_refill_and_monotonic(core: ModuleType, same_state: Any) -> None:
    """Across pool refills and the real clock: valid UUIDv7, strictly increasing."""
    same_state(MS, 0, canonical._time_prefix(MS), os.urandom(4096), 8192 - 40)
    ids = [core.new_event_id() for _ in range(20_000)]
    ids += [core.new_event_id(MS * 1_000_000) for _ in range(5_000)]  # clock set back
    assert all(UUID7.match(i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({i[-12:] for i in ids}) == len(ids)  # rand_b differs (62 random bits)


def test_threads(core: ModuleType) -> None:
    """Thread-safe under the GIL: every id unique, each thread's ids in order."""
    results: list[list[str]] = [[] for _ in range(8)]

    def work(out: list[str]) -> None:
        out.extend(core.new_event_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for r in results for i in r]
    assert len(set(every)) == len(every)
    assert all(r == sorted(r) for r in results)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_draws_new_randomness(core: ModuleType) -> None:
    """A child never reuses the parent's buffered random bytes."""
    core.new_event_id()  # a filled pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, core.new_event_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = core.new_event_id()
    assert UUID7.match(child)
    assert child[-12:] != parent[-12:]


@pytest.mark.parametrize("bad", [1.5, "1", b"1", [1]])
def test_new_event_id_rejects_what_is_not_an_int(core: ModuleType, bad: Any) -> None:
    with pytest.raises(TypeError):
        core.new_event_id(bad)


def test_new_event_id_arguments(core: ModuleType) -> None:
    with pytest.raises(TypeError):
        core.new_event_id(1, 2)
    with pytest.raises(TypeError):
        core.new_event_id(now=1)
    with pytest.raises(OverflowError):
        core.new_event_id(1 << 90)  # milliseconds beyond 64 bits
    assert UUID7.match(core.new_event_id(None))
