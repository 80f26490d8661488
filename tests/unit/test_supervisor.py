"""The delivery threads cannot die quietly, and one sink cannot hold up another (21.6).

A sink that kills its thread is restarted and the restart is a chained lifecycle
event; a sink whose endpoint accepts connections and never answers (a real local
TCP server) neither delays durable acknowledgement from the file sink nor keeps
the file sink from its final checkpoint at close.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw import AuditConfig, Auditor, DeliveryOptions, IntegrityOptions
from auditmw.event import Headers
from auditmw.integrity import KeyRegistry, generate_keypair, verify_files
from auditmw.sinks import FileSink
from auditmw.sinks.http import HTTPSink

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from auditmw.sinks.base import Batch
    from auditmw.types import Event

GUARD = 30.0  # seconds: a hang guard only, never part of a verdict
CLOSE = 8.0  # close() timeout: ample for the file sink, far below the hung POST (3 * GUARD)


class ThreadKiller(BaseException):
    """Not an ``Exception``: nothing in the sink path catches it, so the thread dies."""


class KillsOnce:
    """A sink whose first call raises a ``BaseException``; later calls store."""

    format = "auditmw"

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.calls = 0
        self.stored = threading.Condition()

    def emit(self, batch: Batch) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ThreadKiller
        with self.stored:
            self.lines.extend(batch.lines)
            self.stored.notify_all()

    def close(self) -> None:
        pass

    def kinds(self) -> list[str]:
        return [orjson.loads(line).get("kind") for line in self.lines]

    def wait_for(self, kind: str) -> bool:
        with self.stored:
            return self.stored.wait_for(lambda: kind in self.kinds(), GUARD)


def _record(auditor: Auditor, path: str = "/x") -> None:
    exchange = auditor.new_exchange("http", "GET", path, Headers([]), client=("10.0.0.1", 1))
    exchange.status = 200
    auditor.record(exchange)


class TestSupervisor:
    def test_a_dead_sink_thread_is_restarted_and_recorded(self) -> None:
        """The worker dies on a BaseException; a new one delivers; audit.delivery_restarted is chained."""
        sink = KillsOnce()
        auditor = Auditor(
            AuditConfig(service="s", sinks=[sink], delivery=DeliveryOptions(max_wait_ms=1))
        )
        _record(auditor, "/first")
        assert sink.wait_for("audit.delivery_restarted")
        _record(auditor, "/after")
        assert auditor.flush(GUARD)
        auditor.close(GUARD)
        events = [orjson.loads(line) for line in sink.lines]
        (restarted,) = [e for e in events if e["kind"] == "audit.delivery_restarted"]
        assert restarted["details"]["error"] == "ThreadKiller"
        assert restarted["details"]["thread"].startswith("auditmw-sink:KillsOnce")
        paths = [e["request"]["path"] for e in events if e["kind"] == "http"]
        assert paths == ["/first", "/after"]  # the batch in flight was retried, not lost


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A real TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/ingest"
    stop.set()
    thread.join(GUARD)
    for conn in accepted:
        conn.close()
    server.close()


def _chained(path: Path, **delivery: Any) -> tuple[AuditConfig, KeyRegistry]:
    private, public, key_id = generate_keypair()
    keys = KeyRegistry.from_mapping({"keys": [{"key_id": key_id, "public_key": public.decode()}]})
    config = AuditConfig(
        service="s",
        sinks=[FileSink(path)],
        integrity=IntegrityOptions(signing_key=private),
        delivery=DeliveryOptions(max_wait_ms=1, **delivery),
    )
    return config, keys


class TestHungSink:
    def test_durable_requests_do_not_wait_for_a_hung_async_sink(
        self, tmp_path: Path, silent_server: str
    ) -> None:
        """The durable file sink acknowledges while the HTTP sink's POST hangs."""
        path = tmp_path / "audit.jsonl"
        config, keys = _chained(path, mode="durable", durable_timeout=GUARD)
        # The hung sink would hold a shared thread for longer than any durable wait.
        hung = HTTPSink(silent_server, timeout=3 * GUARD, delivery_mode="async")
        auditor = Auditor(
            AuditConfig(
                service="s",
                sinks=[*config.sinks, hung],
                integrity=config.integrity,
                delivery=config.delivery,
            )
        )
        try:
            waiters = []
            for n in range(3):
                exchange = auditor.new_exchange("http", "GET", f"/d{n}", Headers([]))
                exchange.status = 200
                waiter = auditor.commit(exchange)
                assert waiter is not None
                waiters.append(waiter)
            # A hang guard: with a shared thread this would take 3 * GUARD, then fail.
            assert all(w.wait(GUARD) for w in waiters)
        finally:
            auditor.close(CLOSE)
        events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        assert [e["request"]["path"] for e in events if e["kind"] == "http"] == [
            "/d0",
            "/d1",
            "/d2",
        ]
        report = verify_files([path], keys=keys)
        assert report.clean, report.codes()

    def test_close_flushes_the_healthy_sink_despite_a_hung_one(
        self, tmp_path: Path, silent_server: str
    ) -> None:
        """At close the file sink gets every event and its final checkpoint; the log verifies."""
        path = tmp_path / "audit.jsonl"
        config, keys = _chained(path)
        hung = HTTPSink(silent_server, timeout=3 * GUARD)
        auditor = Auditor(
            AuditConfig(
                service="s",
                sinks=[hung, *config.sinks],  # the hung sink first: it used to go first
                integrity=config.integrity,
                delivery=config.delivery,
            )
        )
        for n in range(20):
            _record(auditor, f"/e{n}")
        auditor.close(CLOSE)  # far shorter than the hung POST's timeout
        events: list[Event] = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        paths = [e["request"]["path"] for e in events if e["kind"] == "http"]
        assert paths == [f"/e{n}" for n in range(20)]
        assert "audit.stopped" in [e["kind"] for e in events]
        assert events[-1]["checkpoint"]["final"] is True
        report = verify_files([path], keys=keys)
        assert report.clean, report.codes()


class Stuck:
    """A sink whose calls block until released (a slow sink that is not failing)."""

    format = "auditmw"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.expired = False
        self.lines: list[bytes] = []

    def emit(self, batch: Batch) -> None:
        self.entered.set()
        if not self.release.wait(GUARD):  # hang guard: fails the test (see expired)
            self.expired = True
            raise RuntimeError("hang guard")
        self.lines.extend(batch.lines)

    def close(self) -> None:
        pass


def _count(events: list[Event], reason: str) -> int:
    return sum(
        int(e["details"]["count"])
        for e in events
        if e["kind"] == "audit.events_dropped" and e["details"]["reason"] == reason
    )


class TestSlowSinkUnderDropAndRecord:
    def test_a_far_behind_sink_sheds_and_records_while_the_other_gets_everything(self) -> None:
        """drop_and_record: the stuck sink's copy is dropped and counted; the memory sink is whole."""
        from auditmw.sinks import MemorySink

        stuck, memory = Stuck(), MemorySink()
        options = DeliveryOptions(
            max_wait_ms=1, max_queue=20, max_batch=5, overflow="drop_and_record"
        )
        auditor = Auditor(AuditConfig(service="s", sinks=[stuck, memory], delivery=options))
        _record(auditor, "/first")
        assert stuck.entered.wait(GUARD)  # the stuck sink now holds its first batch
        total = 200
        for n in range(total - 1):
            _record(auditor, f"/e{n}")
            # One at a time, so that the request buffer never overflows: every loss
            # below is the stuck sink's own.
            deadline = time.monotonic() + GUARD
            while auditor.delivery._queue:
                assert time.monotonic() < deadline, "hang guard"
                time.sleep(0.0005)

        def memory_whole() -> bool:
            seen = memory.events
            http = sum(1 for e in seen if e["kind"] == "http")
            return http + _count(seen, "buffer_full") == total

        # The memory sink gets everything while the stuck sink still holds its first batch.
        deadline = time.monotonic() + GUARD
        while not memory_whole():
            assert time.monotonic() < deadline, "hang guard"
            time.sleep(0.01)
        assert not stuck.expired  # the memory sink did not wait for the stuck one
        stuck.release.set()
        auditor.close(GUARD)
        assert _count(memory.events, "buffer_full") == 0
        slow = [orjson.loads(line) for line in stuck.lines]
        shed = _count(slow, "sink_backlog_full")
        assert shed > 0
        assert sum(e["kind"] == "http" for e in slow) + shed == total


class TestDispatcherSupervisor:
    def test_a_dead_delivery_thread_is_restarted_and_recorded(self) -> None:
        """The queue-draining thread dies on a BaseException; a new one takes over and says so."""
        from auditmw.delivery import Delivery
        from auditmw.pipeline import Pipeline
        from auditmw.sinks import MemorySink

        pipeline = Pipeline(AuditConfig(service="s"))
        raised: list[str] = []

        def lifecycle(kind: str, details: dict[str, Any], **kw: Any) -> Event:
            if kind == "audit.events_dropped" and not raised:
                raised.append(kind)
                raise ThreadKiller
            return pipeline.lifecycle(kind, details, **kw)

        sink = MemorySink()
        delivery = Delivery([sink], DeliveryOptions(max_wait_ms=1), lifecycle=lifecycle)
        try:
            delivery.submit(pipeline.lifecycle("audit.started", {}))
            delivery.count_drop()  # the drop record's factory kills the delivery thread
            deadline = time.monotonic() + GUARD
            while "audit.delivery_restarted" not in [e["kind"] for e in sink.events]:
                assert time.monotonic() < deadline, "hang guard"
                time.sleep(0.01)
            delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": 1}))
            assert delivery.flush(GUARD)
        finally:
            delivery.close(GUARD)
        kinds = [e["kind"] for e in sink.events]
        assert kinds[-1] == "audit.policy_loaded"
        # Nothing the dead thread held was lost: the event and the drop count survive.
        assert kinds.count("audit.started") == 1
        (dropped,) = [e for e in sink.events if e["kind"] == "audit.events_dropped"]
        assert dropped["details"]["count"] == 1
        (restarted,) = [e for e in sink.events if e["kind"] == "audit.delivery_restarted"]
        assert restarted["details"]["thread"] == "auditmw-delivery"
        assert restarted["details"]["error"] == "ThreadKiller"
