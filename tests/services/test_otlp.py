"""OTLPSink against a real OTLP/HTTP receiver in a thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.exceptions import SinkError
from auditmw.sinks.base import Batch, PlainEncoder
from auditmw.sinks.otlp import OTLPSink
from tests.services.conftest import numbered, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.delivery import Delivery
    from tests.services.conftest import HTTPReceiver

pytestmark = pytest.mark.service("http")


def http_batch() -> Batch:
    event = {
        **numbered(0),
        "request": {
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "method": "PUT",
            "path": "/orders/42",
            "route": "/orders/{order_id}",
            "scheme": "https",
            "bytes": 0,
        },
        "response": {"status_code": 204, "bytes": 0},
        "source": {"ip": "203.0.113.7", "user_agent": "curl/8"},
    }
    return PlainEncoder("otel").encode([event])


def export(sink: OTLPSink, sent: Batch) -> None:
    try:
        sink.emit(sent)
    finally:
        sink.close()


def attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in record["attributes"]}


class TestOTLPSink:
    def test_export_request(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """POST /v1/logs: the stored otel records unchanged under the service's resource."""
        receiver = http_receiver()
        sent = http_batch()
        sink = OTLPSink(receiver.url, resource={"deployment.environment.name": "prod"})
        export(sink, sent)
        (request,) = receiver.requests
        assert request.path == "/v1/logs"
        assert sent.lines[0] in request.body  # spliced in, byte for byte
        body = orjson.loads(request.body)
        resource = body["resourceLogs"][0]["resource"]["attributes"]
        assert {"key": "service.name", "value": {"stringValue": "svc"}} in resource
        assert {"key": "deployment.environment.name", "value": {"stringValue": "prod"}} in resource
        record = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
        assert orjson.loads(record["body"]["stringValue"]) == sent.events[0]
        assert record["timeUnixNano"] == "1796011140123456000"
        attrs = attributes(record)
        assert attrs["log.record.uid"] == sent.events[0]["event_id"]
        assert attrs["http.request.method"] == "PUT"
        assert attrs["http.route"] == "/orders/{order_id}"
        assert attrs["client.address"] == "203.0.113.7"

    def test_service_name_override(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """``service_name=`` replaces the events' service.name in the resource."""
        receiver = http_receiver()
        export(OTLPSink(receiver.url, service_name="orders-api"), http_batch())
        resource = orjson.loads(receiver.requests[0].body)["resourceLogs"][0]["resource"]
        assert {"key": "service.name", "value": {"stringValue": "orders-api"}} in resource[
            "attributes"
        ]

    def test_request_is_valid_otlp(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """The body parses as an ExportLogsServiceRequest with the official protobuf schema."""
        json_format = pytest.importorskip("google.protobuf.json_format")
        service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
        receiver = http_receiver()
        export(OTLPSink(receiver.url), http_batch())
        message = json_format.Parse(receiver.requests[0].body, service.ExportLogsServiceRequest())
        record = message.resource_logs[0].scope_logs[0].log_records[0]
        assert record.event_name == "auditmw.http"
        assert record.severity_number == 9
        assert record.body.string_value.startswith("{")

    def test_partial_success_is_a_refusal(self, http_receiver: Callable[..., HTTPReceiver]) -> None:
        """rejectedLogRecords > 0 raises a non-retryable SinkError with the collector's message."""
        receiver = http_receiver()
        answer = {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "bad record"}}
        receiver.script.append((200, {}, orjson.dumps(answer)))
        with pytest.raises(SinkError, match="rejected 1 records: bad record") as info:
            export(OTLPSink(receiver.url), http_batch())
        assert info.value.retryable is False

    def test_partial_rejection_recorded_not_retried(
        self, http_receiver: Callable[..., HTTPReceiver], make_delivery: Callable[..., Delivery]
    ) -> None:
        """Through delivery, a rejected export is not re-sent and the failure is recorded."""
        receiver = http_receiver()
        answer = {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "bad"}}
        receiver.script.append((200, {}, orjson.dumps(answer)))
        delivery = make_delivery([OTLPSink(receiver.url)])
        delivery.submit(numbered(0))
        delivery.flush(5)

        def kinds() -> list[str]:
            out = []
            for request in receiver.requests:
                for record in orjson.loads(request.body)["resourceLogs"][0]["scopeLogs"][0][
                    "logRecords"
                ]:
                    out.append(record["eventName"].removeprefix("auditmw."))
            return out

        wait_for(lambda: "audit.events_dropped" in kinds(), what="the drop record")
        assert kinds().count("http") == 1  # the rejected export is never re-sent
        assert kinds().count("audit.sink_failed") == 1
