"""The Auditor and its delivery thread: lifecycle, overflow, sink failure, fork safety."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from auditmw import AuditConfig, Auditor, DeliveryOptions
from auditmw.event import Headers
from auditmw.sinks import FileSink, MemorySink
from auditmw.sinks.base import Batch
from auditmw.types import Event


def record(auditor: Auditor, path: str = "/orders/1", status: int = 200) -> Event | None:
    exchange = auditor.new_exchange("http", "GET", path, Headers([]), client=("10.1.1.1", 1))
    exchange.status = status
    return auditor.record(exchange)


class TestLifecycle:
    def test_started_policy_loaded_then_stopped(self) -> None:
        """The first record starts the auditor; close() writes audit.stopped and closes sinks."""
        sink = MemorySink()
        auditor = Auditor(AuditConfig(service="s", sinks=[sink]))
        record(auditor)
        auditor.close()
        assert [e["kind"] for e in sink.events] == [
            "audit.started",
            "audit.policy_loaded",
            "http",
            "audit.stopped",
        ]
        assert sink.closed

    def test_close_is_idempotent_and_restartable(self) -> None:
        """close() twice is harmless; recording afterwards starts a new session."""
        sink = MemorySink()
        auditor = Auditor(AuditConfig(service="s", sinks=[sink]))
        record(auditor)
        auditor.close()
        auditor.close()
        record(auditor)
        auditor.close()
        kinds = [e["kind"] for e in sink.events]
        assert kinds.count("audit.started") == 2
        assert kinds.count("audit.stopped") == 2

    def test_flush_is_a_barrier(self) -> None:
        """flush() returns once every earlier event reached the sink."""
        sink = MemorySink()
        auditor = Auditor(
            AuditConfig(service="s", sinks=[sink], delivery=DeliveryOptions(max_wait_ms=10_000))
        )
        for _ in range(10):
            record(auditor)
        assert auditor.flush(5)
        assert sum(e["kind"] == "http" for e in sink.events) == 10
        auditor.close()


class SlowSink:
    """A sink that blocks until released, to fill the buffer."""

    format = "auditmw"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lines: list[bytes] = []

    def emit(self, batch: Batch) -> None:
        self.release.wait(10)
        self.lines.extend(batch.lines)

    def close(self) -> None:
        self.release.set()


class TestOverflow:
    def test_drop_and_record_counts_drops(self) -> None:
        """A full buffer drops with a chained audit.events_dropped event, never silently."""
        sink = SlowSink()
        options = DeliveryOptions(
            max_queue=5, max_batch=1, overflow="drop_and_record", max_wait_ms=1
        )
        auditor = Auditor(AuditConfig(service="s", sinks=[sink], delivery=options))
        for _ in range(40):
            record(auditor)
        sink.release.set()
        auditor.close()
        events = [orjson.loads(line) for line in sink.lines]
        http = sum(e["kind"] == "http" for e in events)
        dropped = sum(e["details"]["count"] for e in events if e["kind"] == "audit.events_dropped")
        assert dropped > 0
        assert http + dropped == 40
        kinds = [e["kind"] for e in events]
        assert {"audit.started", "audit.policy_loaded"} <= set(kinds)  # never dropped
        assert kinds[-1] == "audit.stopped"
        assert all(e["severity"] == "high" for e in events if e["kind"] == "audit.events_dropped")

    def test_block_waits_for_space(self) -> None:
        """Under 'block' a request waits for room instead of dropping."""
        sink = SlowSink()
        options = DeliveryOptions(
            max_queue=2, max_batch=1, overflow="block", block_timeout=5, max_wait_ms=1
        )
        auditor = Auditor(AuditConfig(service="s", sinks=[sink], delivery=options))
        threading.Timer(0.3, sink.release.set).start()
        started = time.monotonic()
        for _ in range(10):
            record(auditor)
        assert time.monotonic() - started >= 0.2
        auditor.close()
        events = [orjson.loads(line) for line in sink.lines]
        assert sum(e["kind"] == "http" for e in events) == 10
        assert not any(e["kind"] == "audit.events_dropped" for e in events)

    def test_bad_overflow_is_a_clear_error(self) -> None:
        """An unknown overflow policy names the setting and the choices."""
        with pytest.raises(ValueError, match="'block' or 'drop_and_record'"):
            DeliveryOptions(overflow="drop")  # type: ignore[arg-type]


class FlakySink(MemorySink):
    """Fails the first ``failures`` emits."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.remaining = failures

    def emit(self, batch: Batch) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            from auditmw.exceptions import SinkUnavailableError

            raise SinkUnavailableError("down for a moment")
        super().emit(batch)


class TestSinkFailure:
    def test_failure_then_recovery_loses_nothing(self) -> None:
        """A sink that fails keeps its backlog, records failure and recovery, loses nothing."""
        flaky = FlakySink(failures=2)
        healthy = MemorySink()
        auditor = Auditor(
            AuditConfig(
                service="s", sinks=[flaky, healthy], delivery=DeliveryOptions(max_wait_ms=5)
            )
        )
        for _ in range(5):
            record(auditor)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(e["kind"] == "http" for e in flaky.events) < 5:
            time.sleep(0.05)
        auditor.close()
        kinds = [e["kind"] for e in flaky.events]
        assert kinds.count("http") == 5
        assert "audit.sink_failed" in kinds
        assert "audit.sink_recovered" in kinds
        failed = next(e for e in healthy.events if e["kind"] == "audit.sink_failed")
        assert failed["details"]["sink"] == "FlakySink:0"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
class TestFork:
    def test_child_gets_its_own_thread_and_instance(self, tmp_path: Path) -> None:
        """After fork the child starts a new delivery thread and records its own pid."""
        path = tmp_path / "audit.jsonl"
        auditor = Auditor(AuditConfig(service="s", sinks=[FileSink(path)]))
        record(auditor)
        assert auditor.flush(5)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                record(auditor, path="/child")
                auditor.close()
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        auditor.close()
        events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        child = [e for e in events if e.get("request", {}).get("path") == "/child"]
        assert len(child) == 1
        assert child[0]["service"]["instance"].endswith(f"/{pid}")
        assert sum(e["kind"] == "audit.started" for e in events) == 2


class TestKeyStoreHealth:
    def test_jwks_outage_is_recorded(self) -> None:
        """A JWKS endpoint that cannot be reached is recorded as audit.keys_unavailable."""
        import socket

        from auditmw.identity import JWTResolver

        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        resolver = JWTResolver(algorithms=["RS256"], jwks=f"http://127.0.0.1:{port}/jwks.json")
        sink = MemorySink()
        auditor = Auditor(AuditConfig(service="s", sinks=[sink], resolvers=[resolver]))
        store = resolver.key_store
        assert store is not None
        deadline = time.monotonic() + 10
        while store.status.consecutive_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        record(auditor)
        auditor.close()
        resolver.close()
        unavailable = [e for e in sink.events if e["kind"] == "audit.keys_unavailable"]
        assert len(unavailable) == 1
        assert unavailable[0]["details"]["source"] == f"http://127.0.0.1:{port}/jwks.json"
        assert unavailable[0]["severity"] == "high"


class TestConfigFromPolicy:
    def test_from_policy_builds_the_whole_config(self, tmp_path: Path) -> None:
        """AuditConfig.from_policy reads service, sinks and rules from one TOML file."""
        log = tmp_path / "audit.jsonl"
        policy = tmp_path / "policy.toml"
        policy.write_text(
            '[service]\nname = "orders-api"\n\n'
            f'[[sinks]]\ntype = "file"\npath = "{log}"\n\n'
            '[[rules]]\nid = "health"\npaths = ["/health"]\nlevel = "none"\n'
        )
        config = AuditConfig.from_policy(policy)
        auditor = Auditor(config)
        record(auditor, path="/health")
        record(auditor, path="/orders/1")
        auditor.close()
        events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        paths = [e["request"]["path"] for e in events if e["kind"] == "http"]
        assert paths == ["/orders/1"]
        assert config.service_info.name == "orders-api"
        assert events[0]["policy"]["hash"] == config_policy_hash(config)


def config_policy_hash(config: AuditConfig) -> str:
    from auditmw.policy import Policy

    assert isinstance(config.policy, Policy)
    return config.policy.hash


class TestHeaders:
    """ASGI header lists: the one-call fast path and the slow path give the same view."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ([(b"accept", b"a"), (b"host", b"h")], {"accept": "a", "host": "h"}),
            ([(b"Accept", b"a"), (b"HOST", b"h")], {"accept": "a", "host": "h"}),
            ([(b"accept", b"a"), (b"accept", b"b")], {"accept": "a, b"}),
            ([(b"cookie", b"a=1"), (b"Cookie", b"b=2")], {"cookie": "a=1; b=2"}),
            ([(b"x-1", b"\xff")], {"x-1": "\xff"}),
        ],
        ids=["lower-case", "mixed-case", "repeated", "cookies-joined", "latin-1-value"],
    )
    def test_lookup(self, raw: list[tuple[bytes, bytes]], expected: dict[str, str]) -> None:
        headers = Headers(raw)
        assert dict(headers.items()) == expected
        for name, value in expected.items():
            assert headers.get(name) == value
            assert headers.get(name.upper()) == value
        assert dict(Headers(iter(raw)).items()) == expected  # any iterable of pairs
        assert Headers(raw).pick(("accept", "absent"), (b"accept", b"absent")) == [
            expected.get("accept"),
            None,
        ]

    def test_names_that_are_not_bytes_do_not_break_the_lookup(self) -> None:
        """A non-compliant server passing str names: no crash, byte names still found."""
        headers = Headers([("Host", "a"), (b"accept", b"b")])  # type: ignore[list-item]
        assert headers.get("accept") == "b"
