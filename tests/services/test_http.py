"""HTTPSink and OTLPSink against real HTTP servers in threads, with injected faults."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.exceptions import (
    ConfigurationError,
    SinkError,
    SinkThrottledError,
    SinkUnavailableError,
)
from auditmw.sinks.base import Batch
from auditmw.sinks.http import HTTPSink
from tests.services.conftest import assert_complete_in_order, fault_scenario, numbered, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from auditmw.delivery import Delivery
    from auditmw.types import Event
    from tests.services.conftest import FaultProxy, HTTPReceiver

pytestmark = pytest.mark.service("http")


def batch(count: int = 3) -> Batch:
    events = [numbered(i) for i in range(count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def emit_once(sink: HTTPSink, sent: Batch) -> None:
    """Emit one batch and release the connection pool."""
    try:
        sink.emit(sent)
    finally:
        sink.close()


def ndjson_events(receiver: HTTPReceiver) -> list[Event]:
    with receiver.lock:
        bodies = [r.body for r in receiver.requests]
    return [orjson.loads(line) for body in bodies for line in body.splitlines()]


class TestShapes:
    def test_ndjson(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """NDJSON: the stored lines, byte for byte, one per line."""
        receiver = http_receiver()
        sent = batch()
        emit_once(HTTPSink(receiver.url + "/ingest"), sent)
        (request,) = receiver.requests
        assert request.path == "/ingest"
        assert request.headers["content-type"] == "application/x-ndjson"
        assert request.body == b"\n".join(sent.lines) + b"\n"

    def test_json_array(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """The json shape posts one JSON array of the events."""
        receiver = http_receiver()
        sent = batch()
        emit_once(HTTPSink(receiver.url, shape="json"), sent)
        assert orjson.loads(receiver.requests[0].body) == sent.events

    def test_elasticsearch_bulk_uses_event_id(
        self, http_receiver: Callable[..., HTTPReceiver]
    ) -> None:
        """_bulk: a create action with _id = event_id before each stored line."""
        receiver = http_receiver()
        sent = batch(2)
        emit_once(HTTPSink(receiver.url + "/_bulk", shape="elasticsearch", index="audit"), sent)
        lines = receiver.requests[0].body.splitlines()
        assert orjson.loads(lines[0]) == {
            "create": {"_index": "audit", "_id": sent.events[0]["event_id"]}
        }
        assert lines[1] == sent.lines[0]
        assert len(lines) == 4

    def test_elasticsearch_conflicts_are_duplicates(
        self, http_receiver: Callable[..., HTTPReceiver]
    ) -> None:
        """Items refused with 409 (already stored) are success; a 400 item is a refusal."""
        receiver = http_receiver()
        sink = HTTPSink(receiver.url, shape="elasticsearch", index="audit")
        conflict = {
            "errors": True,
            "items": [{"create": {"status": 409}}, {"create": {"status": 201}}],
        }
        receiver.script.append((200, {}, orjson.dumps(conflict)))
        sink.emit(batch(2))
        refused = {
            "errors": True,
            "items": [{"create": {"status": 400}}, {"create": {"status": 201}}],
        }
        receiver.script.append((200, {}, orjson.dumps(refused)))
        with pytest.raises(SinkError) as info:
            emit_once(sink, batch(2))
        assert info.value.retryable is False

    def test_splunk_hec(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """HEC: concatenated {"time", "sourcetype", "event"} objects with the Splunk auth header."""
        receiver = http_receiver()
        sent = batch(2)
        emit_once(HTTPSink(receiver.url, shape="splunk", auth="Splunk hec-token-1"), sent)
        request = receiver.requests[0]
        assert request.headers["authorization"] == "Splunk hec-token-1"
        first = request.body[: request.body.index(b"}{") + 1]
        decoded = orjson.loads(first)
        assert decoded["event"] == sent.events[0]
        assert decoded["time"] == 1796011140.123456
        assert decoded["sourcetype"] == "auditmw"

    def test_unknown_shape(self) -> None:
        """A bad shape is a configuration error naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            HTTPSink("http://127.0.0.1:9", shape="xml")  # type: ignore[arg-type]
        assert info.value.setting == "shape"


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "retryable"),
        [
            pytest.param(400, False, id="400"),
            pytest.param(401, False, id="401"),
            pytest.param(413, False, id="413"),
            pytest.param(429, True, id="429"),
            pytest.param(500, True, id="500"),
            pytest.param(503, True, id="503"),
        ],
    )
    def test_status_mapping(
        self, http_receiver: Callable[..., HTTPReceiver], status: int, retryable: bool
    ) -> None:
        """429 and 5xx are retryable; other 4xx are refusals that must not be retried."""
        receiver = http_receiver()
        receiver.script.append((status, {}, b"{}"))
        with pytest.raises(SinkError) as info:
            emit_once(HTTPSink(receiver.url), batch())
        assert info.value.retryable is retryable

    def test_retry_after_is_read(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """A 429's Retry-After reaches the delivery thread as ``retry_after``."""
        receiver = http_receiver()
        receiver.script.append((429, {"retry-after": "7"}, b"{}"))
        with pytest.raises(SinkThrottledError) as info:
            emit_once(HTTPSink(receiver.url), batch())
        assert info.value.retry_after == 7.0

    def test_auth_never_leaks(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """The auth value is sent but absent from repr and error messages."""
        receiver = http_receiver()
        sink = HTTPSink(receiver.url, auth="Bearer s3cr3t-token")
        receiver.script.append((401, {}, b"{}"))
        with pytest.raises(SinkError) as info:
            emit_once(sink, batch())
        assert "s3cr3t" not in repr(sink)
        assert "s3cr3t" not in str(info.value)
        assert "s3cr3t" not in repr(info.value.__cause__)

    def test_unreachable(self) -> None:
        """A closed port raises SinkUnavailableError."""
        from tests.services.conftest import free_port

        with pytest.raises(SinkUnavailableError):
            emit_once(HTTPSink(f"http://127.0.0.1:{free_port()}", timeout=1), batch())

    def test_tls_with_a_private_ca(
        self, http_receiver: Callable[..., HTTPReceiver], tls_cert: tuple[Path, Path]
    ) -> None:
        """HTTPS works with a CA bundle and fails closed without it."""
        receiver = http_receiver(tls=tls_cert)
        context = ssl.create_default_context(cafile=str(tls_cert[0]))
        emit_once(HTTPSink(receiver.url, verify=context), batch())
        assert len(receiver.requests) == 1
        with pytest.raises(SinkUnavailableError):
            emit_once(HTTPSink(receiver.url), batch())


class TestDelivery:
    def test_retry_after_then_success(
        self, http_receiver: Callable[..., HTTPReceiver], make_delivery: Callable[..., Delivery]
    ) -> None:
        """A 503 with Retry-After is retried and the batch arrives once."""
        receiver = http_receiver()
        receiver.script.extend([(503, {"retry-after": "0"}, b"{}")] * 2)
        delivery = make_delivery([HTTPSink(receiver.url)])
        delivery.submit(numbered(0))
        delivery.flush(5)
        wait_for(
            lambda: any(e.get("kind") == "audit.sink_recovered" for e in ndjson_events(receiver))
        )
        assert [e["annotations"]["n"] for e in ndjson_events(receiver) if e["kind"] == "http"] == [
            "0"
        ]

    def test_faults_through_a_proxy(
        self,
        http_receiver: Callable[..., HTTPReceiver],
        fault_proxy: Callable[[tuple[str, int]], FaultProxy],
        make_delivery: Callable[..., Delivery],
        tmp_path: Path,
    ) -> None:
        """Cut mid-batch, blackholed, slowed, refused: all arrive in order; failures recorded."""
        receiver = http_receiver()
        port = int(receiver.url.rsplit(":", 1)[1])
        proxy = fault_proxy(("127.0.0.1", port))
        sink = HTTPSink(f"http://127.0.0.1:{proxy.port}/ingest", timeout=1)
        delivery = make_delivery([sink], spool_dir=tmp_path / "spool", max_batch=10)
        total = fault_scenario(delivery, proxy)
        wait_for(
            lambda: (
                len({e["event_id"] for e in ndjson_events(receiver) if e["kind"] == "http"})
                == total
                and "audit.sink_recovered" in [e["kind"] for e in ndjson_events(receiver)]
            ),
            what="every event at the receiver",
        )
        assert_complete_in_order(ndjson_events(receiver), total)
