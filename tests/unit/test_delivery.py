"""The delivery thread: durable mode and group commit, spool and replay, retries, rejections."""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

import anyio
import orjson
import pytest

from auditmw.canonical import new_event_id
from auditmw.delivery import Delivery, DurableWaiter
from auditmw.exceptions import SinkError, SinkThrottledError, SinkUnavailableError
from auditmw.sinks.file import FileSink
from tests.conftest import delivery_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from auditmw.sinks.base import Batch
    from auditmw.types import Event


class Switchable:
    """A sink whose destination can fail, reject, or stall on demand (thread-safe)."""

    format = "auditmw"

    def __init__(self, *, delivery_mode: str | None = None) -> None:
        self.delivery_mode = delivery_mode
        self.error: Exception | None = None
        self.once = False  # the error clears after it was raised once
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def emit(self, batch: Batch) -> None:
        self.gate.wait(10)
        with self._lock:
            self.calls += 1
            if self.error is not None:
                error = self.error
                if self.once:
                    self.error = None
                raise error
            self.lines.extend(batch.lines)

    def close(self) -> None:
        """Nothing to release."""

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return [orjson.loads(line) for line in self.lines]

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]


def event(n: int = 0) -> Event:
    return {"event_id": new_event_id(), "kind": "http", "n": n}


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def make_delivery() -> Iterator[Callable[..., Delivery]]:
    """Build Delivery instances with very fast retries; closed after the test."""
    yield from delivery_factory(retry_initial=0.02, retry_max=0.1, close_timeout=5)


class TestDurable:
    def test_waiter_resolves_once_the_event_is_on_disk(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery]
    ) -> None:
        """When the waiter says stored, the fsync'd line is already in the file."""
        path = tmp_path / "audit.jsonl"
        delivery = make_delivery([FileSink(path)], mode="durable", max_wait_ms=5000)
        item = event()
        assert delivery.is_durable
        assert delivery.submit_durable(item).wait(5)
        assert item["event_id"] in path.read_text()

    def test_concurrent_requests_share_one_commit(
        self, make_delivery: Callable[..., Delivery]
    ) -> None:
        """Requests waiting together are stored by far fewer writes than requests (group commit)."""
        sink = Switchable()
        delivery = make_delivery([sink], mode="durable")
        sink.gate.clear()
        delivery.submit(event())  # occupies the thread while the requests arrive
        eventually(lambda: not delivery._queue)
        waiters = [delivery.submit_durable(event(i)) for i in range(32)]
        sink.gate.set()
        assert all(w.wait(5) for w in waiters)
        assert sink.calls <= 3
        assert len([e for e in sink.events if "n" in e]) == 33

    def test_fails_closed_while_the_store_is_down(
        self, make_delivery: Callable[..., Delivery]
    ) -> None:
        """A waiter times out while the sink is down, resolves once it is back, failure recorded."""
        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        delivery = make_delivery([sink], mode="durable")
        item = event()
        waiter = delivery.submit_durable(item)
        assert not waiter.wait(0.3)
        assert not waiter.done
        sink.error = None
        assert waiter.wait(5)
        # Lifecycle notices are written on the delivery thread's next pass.
        eventually(lambda: "audit.sink_recovered" in sink.kinds())
        kinds = sink.kinds()
        assert kinds.index("audit.sink_failed") > kinds.index("http")

    def test_async_sinks_are_not_waited_for(self, make_delivery: Callable[..., Delivery]) -> None:
        """A sink that opts out with ``delivery_mode="async"`` does not hold durable requests."""
        durable, slow = Switchable(), Switchable(delivery_mode="async")
        slow.error = SinkUnavailableError("down")
        delivery = make_delivery([durable, slow], mode="durable")
        assert delivery.submit_durable(event()).wait(5)

    def test_refused_event_fails_its_waiter(self, make_delivery: Callable[..., Delivery]) -> None:
        """A batch the durable sink refuses for good resolves its waiter ``False``."""
        sink = Switchable()
        sink.error = SinkError("HTTP 400", retryable=False)
        sink.once = True
        delivery = make_delivery([sink], mode="durable")
        waiter = delivery.submit_durable(event())
        eventually(lambda: waiter.done)  # resolved, not merely timed out
        assert not waiter.wait(0)
        assert delivery.submit_durable(event()).wait(5)  # the next one is stored

    def test_dropped_event_fails_its_waiter(self, make_delivery: Callable[..., Delivery]) -> None:
        """An event dropped by the overflow policy resolves its waiter ``False`` at once."""
        sink = Switchable()
        delivery = make_delivery(
            [sink], mode="durable", max_queue=1, overflow="drop_and_record", max_wait_ms=1000
        )
        sink.gate.clear()
        delivery.submit(event())
        eventually(lambda: not delivery._queue)
        delivery.submit(event())  # fills the queue
        waiter = delivery.submit_durable(event())
        assert waiter.done
        assert not waiter.wait(0)
        sink.gate.set()

    @pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
    def test_await_async_does_not_block_the_loop(
        self, anyio_backend: str, make_delivery: Callable[..., Delivery]
    ) -> None:
        """Awaiting a commit lets other tasks run, on asyncio and on trio."""
        sink = Switchable()
        delivery = make_delivery([sink], mode="durable")
        ticks: list[int] = []

        async def main() -> bool:
            sink.gate.clear()
            waiter = delivery.submit_durable(event())
            result = False

            async def wait() -> None:
                nonlocal result
                result = await waiter.await_async(5)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                for i in range(5):
                    ticks.append(i)
                    await anyio.sleep(0.01)
                sink.gate.set()
            return result

        assert anyio.run(main, backend=anyio_backend)
        assert ticks == [0, 1, 2, 3, 4]

    def test_await_async_times_out(self) -> None:
        """An unresolved waiter returns ``False`` after the timeout."""
        assert not anyio.run(DurableWaiter().await_async, 0.05)


class TestSpool:
    def test_outage_is_spooled_and_replayed_in_order(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery]
    ) -> None:
        """Batches sent while the sink is down go to disk and arrive later, in order, once."""
        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        delivery = make_delivery([sink], spool_dir=tmp_path / "spool")
        for i in range(20):
            delivery.submit(event(i))
            if i % 5 == 0:
                delivery.flush(5)
        delivery.flush(5)
        spooled = list((tmp_path / "spool").glob("*.spool"))
        assert spooled
        assert spooled[0].stat().st_size > 0
        sink.error = None
        eventually(lambda: "audit.sink_recovered" in sink.kinds())
        numbers = [e["n"] for e in sink.events if "n" in e]
        assert numbers == list(range(20))

    def test_unsent_events_are_sent_by_the_next_start(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery]
    ) -> None:
        """Events still unsent at shutdown are spooled and replayed by the next process."""
        down = Switchable()
        down.error = SinkUnavailableError("down")
        first = make_delivery([down], spool_dir=tmp_path)
        for i in range(5):
            first.submit(event(i))
        first.flush(5)
        first.close(5)
        assert list(tmp_path.glob("*.spool"))
        up = Switchable()
        second = make_delivery([up], spool_dir=tmp_path)
        second.submit(event(99))
        second.flush(5)
        eventually(lambda: 99 in [e.get("n") for e in up.events])
        assert [e["n"] for e in up.events if "n" in e] == [0, 1, 2, 3, 4, 99]

    def test_memory_backlog_without_spool(self, make_delivery: Callable[..., Delivery]) -> None:
        """Without a spool directory a short outage is bridged in memory."""
        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        delivery = make_delivery([sink])
        for i in range(3):
            delivery.submit(event(i))
        delivery.flush(5)
        sink.error = None
        eventually(lambda: "audit.sink_recovered" in sink.kinds())
        assert [e["n"] for e in sink.events if "n" in e] == [0, 1, 2]


class TestRetry:
    def test_rejected_batches_are_not_retried_but_recorded(
        self, make_delivery: Callable[..., Delivery]
    ) -> None:
        """A non-retryable error drops that batch, records the failure and the count, moves on."""
        sink = Switchable()
        sink.error = SinkError("HTTP 400", retryable=False)
        sink.once = True
        delivery = make_delivery([sink])
        delivery.submit(event(1))
        delivery.flush(5)
        delivery.submit(event(2))
        delivery.flush(5)
        eventually(lambda: "audit.events_dropped" in sink.kinds(), timeout=5)
        events = sink.events
        assert [e["n"] for e in events if "n" in e] == [2]
        failed = next(e for e in events if e["kind"] == "audit.sink_failed")
        assert failed["details"]["retryable"] is False
        dropped = next(e for e in events if e["kind"] == "audit.events_dropped")
        assert dropped["details"]["reason"] == "sink_rejected"
        assert dropped["details"]["count"] >= 1

    def test_retry_after_is_honoured(self, make_delivery: Callable[..., Delivery]) -> None:
        """A throttled sink is not retried before its ``Retry-After`` delay."""
        sink = Switchable()
        sink.error = SinkThrottledError("429", retry_after=0.5)
        delivery = make_delivery([sink], retry_max=2.0)
        delivery.submit(event())
        delivery.flush(5)
        channel = delivery._channels[0]
        assert channel.failing
        assert channel.retry_at - time.monotonic() > 0.3

    def test_backoff_grows_and_is_capped(self, make_delivery: Callable[..., Delivery]) -> None:
        """Successive failures wait longer, never beyond ``retry_max``."""
        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        delivery = make_delivery([sink], retry_initial=0.01, retry_max=0.08)
        delivery.submit(event())
        delivery.flush(5)
        eventually(lambda: delivery._channels[0].failures >= 6)
        channel = delivery._channels[0]
        assert channel.retry_at - time.monotonic() <= 0.08


CRASHING_WRITER = """
import os, sys
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.delivery import Delivery
from auditmw.pipeline import Pipeline
from auditmw.sinks.file import FileSink

target, spool = sys.argv[1], sys.argv[2]
sink = FileSink(target)
os.rmdir(os.path.dirname(target))  # the destination disappears: every write fails
options = DeliveryOptions(spool_dir=spool, max_wait_ms=10, retry_initial=0.01, retry_max=0.05)
delivery = Delivery([sink], options, lifecycle=Pipeline(AuditConfig("svc")).lifecycle)
for n in range(5):
    delivery.submit({"event_id": f"e{n}", "kind": "http", "n": n})
delivery.flush(5)
if sys.argv[3] == "kill":
    os._exit(1)  # no shutdown at all: the spool file stays behind, unlocked
delivery.close(5)
"""


class TestSpoolAcrossProcesses:
    @pytest.mark.parametrize("ending", ["close", "kill"])
    def test_next_process_replays_a_dead_process_spool(
        self, tmp_path: Path, make_delivery: Callable[..., Delivery], ending: str
    ) -> None:
        """Events a process could not send are delivered by the next process that starts."""
        import subprocess
        import sys

        (tmp_path / "gone").mkdir()
        target = tmp_path / "gone" / "audit.jsonl"
        spool = tmp_path / "spool"
        subprocess.run(
            [sys.executable, "-c", CRASHING_WRITER, str(target), str(spool), ending],
            check=False,
            timeout=60,
        )
        assert [p.name.split(".")[0] for p in spool.glob("*.spool")] == ["FileSink-0"]
        (tmp_path / "gone").mkdir()
        delivery = make_delivery([FileSink(target)], spool_dir=spool)
        delivery.submit({"event_id": "new", "kind": "http", "n": 99})
        delivery.flush(5)
        eventually(lambda: b'"n":99' in target.read_bytes())
        numbers = [orjson.loads(line).get("n") for line in target.read_bytes().splitlines()]
        assert [n for n in numbers if n is not None] == [0, 1, 2, 3, 4, 99]
        delivery.close(5)
        assert list(spool.glob("*.spool")) == []  # adopted, replayed, removed


class TestOutageWithChain:
    def test_long_outage_with_tiny_backlog_keeps_the_chain_whole(self, tmp_path: Path) -> None:
        """A sink down longer than its backlog: no recursion, every drop counted, chain intact.

        Backlog trimming drops only events never encoded, so the integrity chain has no
        hole, and lifecycle records (sink failed, events dropped) are never trimmed.
        """
        from auditmw import AuditConfig, Auditor, DeliveryOptions, IntegrityOptions
        from auditmw.event import Headers
        from auditmw.integrity import Location, generate_keypair, verify_records

        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        options = DeliveryOptions(max_queue=5, max_batch=2, max_wait_ms=5)
        integrity = IntegrityOptions(signing_key=generate_keypair()[0])
        auditor = Auditor(
            AuditConfig(service="s", sinks=[sink], delivery=options, integrity=integrity)
        )
        for _ in range(60):
            exchange = auditor.new_exchange(
                "http", "GET", "/x", Headers([]), client=("10.0.0.1", 1)
            )
            exchange.status = 200
            auditor.record(exchange)
            time.sleep(0.002)
        sink.error = None
        eventually(lambda: "audit.sink_recovered" in sink.kinds())
        auditor.close()
        assert auditor.delivery.is_running is False
        events = [orjson.loads(line) for line in sink.lines]
        stored = sum(e["kind"] == "http" for e in events)
        dropped = sum(e["details"]["count"] for e in events if e["kind"] == "audit.events_dropped")
        assert stored + dropped == 60
        assert dropped > 0
        assert "audit.sink_failed" in [e["kind"] for e in events]
        report = verify_records(
            (Location("memory", i + 1), line) for i, line in enumerate(sink.lines)
        )
        tamper = [f for f in report.findings if f.category == "tamper"]
        assert tamper == []


class TestOutageMemoryBound:
    """A long outage without a spool: the backlog stays bounded by ``max_queue``."""

    @staticmethod
    def dropped(n: int, count: int, reason: str = "sink_backlog_full") -> Event:
        second = f"{n:02d}"
        return {
            "event_id": f"drop-{n}",
            "kind": "audit.events_dropped",
            "details": {
                "count": count,
                "first_time": f"2026-11-30T06:00:{second}.000000Z",
                "last_time": f"2026-11-30T06:00:{second}.900000Z",
                "reason": reason,
                "sink": "Switchable-0",
            },
        }

    def test_drop_records_of_a_long_outage_are_merged_not_accumulated(self) -> None:
        from auditmw.delivery.channel import Channel
        from auditmw.sinks.base import PlainEncoder

        channel = Channel("Switchable-0", Switchable(), PlainEncoder("auditmw"), False, None)
        channel.enqueue_events([event(0)])  # the head, maybe mid-send: never touched
        shared = [self.dropped(n, 10 + n) for n in range(40)]
        originals = [dict(record["details"]) for record in shared]
        for n, record in enumerate(shared):  # one tick per second: drops, then new events
            channel.enqueue_events([record, event(100 + n), event(200 + n)])
        channel.enqueue_events([self.dropped(99, 5, reason="spool_full")])
        lost = channel.trim(4)
        assert lost == 80  # every request event behind the head
        kept = [e for item in list(channel.backlog)[1:] for e in item]  # type: ignore[union-attr]
        by_reason = {e["details"]["reason"]: e for e in kept}
        assert len(kept) == 2 == len(by_reason)
        merged = by_reason["sink_backlog_full"]
        assert merged["event_id"] == "drop-0"
        assert merged["details"]["count"] == sum(10 + n for n in range(40))
        assert merged["details"]["first_time"] == "2026-11-30T06:00:00.000000Z"
        assert merged["details"]["last_time"] == "2026-11-30T06:00:39.900000Z"
        assert by_reason["spool_full"]["details"]["count"] == 5
        assert channel.backlog_events == 3
        # The records are shared with the other channels: none was edited in place.
        assert [record["details"] for record in shared] == originals

    def test_merged_drop_records_still_count_every_event(self) -> None:
        from auditmw import AuditConfig, Auditor, DeliveryOptions
        from auditmw.event import Headers

        sink = Switchable()
        sink.error = SinkUnavailableError("down")
        options = DeliveryOptions(max_queue=5, max_batch=2, max_wait_ms=5)
        auditor = Auditor(AuditConfig(service="s", sinks=[sink], delivery=options))
        served = 0
        deadline = time.monotonic() + 3.5  # three or more once-a-second drop records
        while time.monotonic() < deadline:
            exchange = auditor.new_exchange("http", "GET", "/x", Headers([]))
            exchange.status = 200
            auditor.record(exchange)
            served += 1
            time.sleep(0.002)
        channel = auditor.delivery._channels[0]
        assert channel.backlog_events <= options.max_queue + 2  # head batch + merged records
        sink.error = None
        eventually(lambda: "audit.sink_recovered" in sink.kinds())
        auditor.close()
        events = [orjson.loads(line) for line in sink.lines]
        drops = [e for e in events if e["kind"] == "audit.events_dropped"]
        stored = sum(e["kind"] == "http" for e in events)
        assert stored + sum(e["details"]["count"] for e in drops) == served


class TestEncodeSlices:
    """A large batch is chained in slices (the GIL is yielded between them), same records."""

    def test_slices_chain_like_one_call(self) -> None:
        from auditmw.delivery.channel import ENCODE_SLICE, Channel
        from auditmw.integrity import IntegrityOptions, generate_keypair

        options = IntegrityOptions(signing_key=generate_keypair()[0], checkpoint_every=100)
        encoder = options.encoder_for("auditmw", "slices")
        sizes: list[int] = []
        encode = encoder.encode

        def recording(events: Sequence[Event]) -> Batch:
            sizes.append(len(events))
            return encode(events)

        encoder.encode = recording  # type: ignore[method-assign]
        channel = Channel("file-0", Switchable(), encoder, False, None)
        channel.enqueue_events([event(n) for n in range(300)])
        batch = channel.next()
        assert batch is not None
        assert max(sizes) <= ENCODE_SLICE < 300 == sum(sizes)
        records = [orjson.loads(line) for line in batch.lines]
        kinds = [r["kind"] for r in records]
        # the start checkpoint, then a count checkpoint after every 100 events, as one call makes
        assert [i for i, k in enumerate(kinds) if k == "audit.checkpoint"] == [0, 101, 202, 303]
        chained = [r["integrity"] for r in records if r["kind"] == "http"]
        assert [r["n"] for r in records if r["kind"] == "http"] == list(range(300))
        assert [c["seq"] for c in chained] == list(range(1, 301))
        for previous, current in itertools.pairwise(chained):
            assert current["prev"] == previous["hash"]
