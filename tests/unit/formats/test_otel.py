"""OpenTelemetry exporter: records parse as OTLP ``ExportLogsServiceRequest`` payloads."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import otel

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.types import Event

    Parse = Callable[[dict[str, Any]], Any]


def decode_any(value: Any) -> Any:
    """Turn a protobuf ``AnyValue`` back into a JSON value."""
    field = value.WhichOneof("value")
    if field == "kvlist_value":
        return {kv.key: decode_any(kv.value) for kv in value.kvlist_value.values}
    if field == "array_value":
        return [decode_any(v) for v in value.array_value.values]
    return getattr(value, field) if field else None


def attributes(record: Any) -> dict[str, Any]:
    """Return a parsed record's attributes as a dict."""
    return {kv.key: decode_any(kv.value) for kv in record.attributes}


class TestProto:
    def test_parses(self, corpus_event: Event, otlp_parse: Parse) -> None:
        """Every corpus event wraps into a valid ExportLogsServiceRequest."""
        message = otlp_parse(otel.to_otlp_request([corpus_event], {"host.name": "h1"}))
        record = message.resource_logs[0].scope_logs[0].log_records[0]
        assert record.time_unix_nano > 0
        assert record.event_name == f"auditmw.{corpus_event['kind']}"

    def test_body_is_canonical(self, corpus_event: Event, otlp_parse: Parse) -> None:
        """The body is the canonical JSON of the event, byte for byte."""
        message = otlp_parse(otel.to_otlp_request([corpus_event]))
        record = message.resource_logs[0].scope_logs[0].log_records[0]
        assert record.body.string_value.encode() == dumps(corpus_event)

    def test_trace_ids_hex(self, corpus_event: Event, otlp_parse: Parse) -> None:
        """traceId/spanId are the hex ids, decoding to 16 and 8 bytes."""
        message = otlp_parse(otel.to_otlp_request([corpus_event]))
        record = message.resource_logs[0].scope_logs[0].log_records[0]
        trace = corpus_event.get("trace")
        if trace is None:
            assert record.trace_id == b""
        else:
            assert record.trace_id == bytes.fromhex(trace["trace_id"])
            assert len(record.span_id) == 8

    def test_does_not_mutate(self, corpus_event: Event) -> None:
        """Exporting leaves the canonical event unchanged."""
        before = copy.deepcopy(corpus_event)
        otel.export(corpus_event)
        assert corpus_event == before

    def test_rejects_broken_payload(self, make: Any, otlp_parse: Parse) -> None:
        """The parser used above really checks: a non-numeric timeUnixNano fails."""
        body = otel.to_otlp_request([make()])
        body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["timeUnixNano"] = "soon"
        json_format = pytest.importorskip("google.protobuf.json_format")
        with pytest.raises(json_format.ParseError, match="timeUnixNano"):
            otlp_parse(body)


class TestAttributes:
    def test_http_semconv(self, make: Any, otlp_parse: Parse) -> None:
        """HTTP server semantic-convention attributes are set from the event."""
        message = otlp_parse(otel.to_otlp_request([make()]))
        attrs = attributes(message.resource_logs[0].scope_logs[0].log_records[0])
        assert attrs["http.request.method"] == "PUT"
        assert attrs["url.path"] == "/orders/42"
        assert attrs["url.scheme"] == "https"
        assert attrs["http.route"] == "/orders/{order_id}"
        assert attrs["http.response.status_code"] == 200
        assert attrs["client.address"] == "203.0.113.7"
        assert attrs["client.port"] == 51234
        assert attrs["server.address"] == "api.example.com"
        assert attrs["server.port"] == 8443
        assert attrs["network.protocol.version"] == "1.1"
        assert attrs["enduser.id"] == "user-42"
        assert attrs["enduser.role"] == "admin,auditor"
        assert attrs["http.request.header.content-type"] == ["application/json"]

    def test_time_is_decimal_string(self, make: Any) -> None:
        """timeUnixNano is a decimal string of nanoseconds."""
        record = otel.export(make())
        assert record["timeUnixNano"] == "1796011140123456000"

    @pytest.mark.parametrize(
        ("severity", "number"),
        [
            pytest.param("info", 9, id="info"),
            pytest.param("low", 12, id="low"),
            pytest.param("medium", 13, id="medium"),
            pytest.param("high", 17, id="high"),
        ],
    )
    def test_severity(self, make: Any, severity: str, number: int) -> None:
        """severityText keeps ours; severityNumber follows the OTel log data model."""
        event = make()
        event["severity"] = severity
        record = otel.export(event)
        assert (record["severityNumber"], record["severityText"]) == (number, severity)

    def test_resource_from_service(self, make: Any, otlp_parse: Parse) -> None:
        """Resource attributes come from the event's service, then the caller's."""
        message = otlp_parse(otel.to_otlp_request([make()], {"service.namespace": "shop"}))
        resource = attributes(message.resource_logs[0].resource)
        assert resource["service.name"] == "orders-api"
        assert resource["service.instance.id"] == "host-1/1234"
        assert resource["service.namespace"] == "shop"

    def test_groups_by_service(self, make: Any) -> None:
        """Events of two services land in two resourceLogs entries."""
        other = make()
        other["service"] = {"name": "billing", "instance": "h2"}
        body = otel.to_otlp_request([make(), other, make()])
        counts = [len(r["scopeLogs"][0]["logRecords"]) for r in body["resourceLogs"]]
        assert counts == [2, 1]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("a", {"stringValue": "a"}, id="str"),
            pytest.param(True, {"boolValue": True}, id="bool"),
            pytest.param(2**62, {"intValue": str(2**62)}, id="int64"),
            pytest.param([1], {"arrayValue": {"values": [{"intValue": "1"}]}}, id="list"),
            pytest.param(
                {"k": None},
                {"kvlistValue": {"values": [{"key": "k", "value": {}}]}},
                id="dict-null",
            ),
        ],
    )
    def test_any_value(self, value: Any, expected: dict[str, Any]) -> None:
        """any_value follows the OTLP/JSON AnyValue encoding."""
        assert otel.any_value(value) == expected

    def test_request_bytes_splices_records(self, make: Any, otlp_parse: Parse) -> None:
        """The byte-level builder equals to_otlp_request for one service, and parses."""
        events = [make(), make(operation="delete", integrity=True)]
        lines = [dumps(otel.export(event)) for event in events]
        body = otel.to_otlp_request_bytes(lines, events[0]["service"], {"host.name": "h1"})
        assert loads(body) == loads(dumps(otel.to_otlp_request(events, {"host.name": "h1"})))
        assert len(otlp_parse(loads(body)).resource_logs[0].scope_logs[0].log_records) == 2

    def test_float_rejected(self) -> None:
        """any_value refuses floats, which canonical events never hold."""
        with pytest.raises(TypeError, match="float"):
            otel.any_value(1.5)
