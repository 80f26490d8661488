"""Every format keeps the PCI DSS 10.2.2 elements of an event recoverable.

PCI DSS v4 requirement 10.2.2 lists, per audit log entry: user identification, type
of event, date and time, success or failure indication, origination of the event,
and identity or name of the affected data, system component, resource or service.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.canonical import dumps, loads
from auditmw.formats import cloudevents, ecs, get_exporter, ocsf, otel

if TYPE_CHECKING:
    from auditmw.types import Event

FORMATS = ("ocsf", "ecs", "otel", "cloudevents")


def pci(event: Event) -> dict[str, Any]:
    """Return the PCI DSS 10.2.2 elements of a canonical event."""
    resource = event["resource"]
    # Lifecycle records originate in the audited service; a request whose client
    # address is not known has the origin "unknown".
    lifecycle = event["kind"].startswith("audit.")
    origin = event["service"]["name"] if lifecycle else event["source"].get("ip", "unknown")
    return {
        "user": event["actor"]["id"],
        "type": event["action"],
        "time": event["time"],
        "success": event["outcome"] == "success",
        "origin": origin,
        "resource": (resource["type"], resource.get("id")),
    }


def export(fmt: str, event: Event) -> dict[str, Any]:
    """Export ``event`` to ``fmt`` and read it back as stored bytes would be."""
    if fmt == "otel":
        doc = otel.to_otlp_request([event])
    else:
        doc = {"ocsf": ocsf.export, "ecs": ecs.export, "cloudevents": cloudevents.export}[fmt](
            event
        )
    result: dict[str, Any] = loads(dumps(doc))
    return result


def recover_pci(fmt: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Read the PCI DSS 10.2.2 elements back from an exported document."""
    recover = {
        "ocsf": _recover_ocsf,
        "ecs": _recover_ecs,
        "otel": _recover_otel,
        "cloudevents": _recover_cloudevents,
    }[fmt]
    return recover(doc)


def _recover_ocsf(doc: dict[str, Any]) -> dict[str, Any]:
    class_uid = doc["class_uid"]
    if class_uid == 6003:
        action = doc["api"]["operation"]
        details = doc["resources"][0]
        resource = (details["type"], details.get("uid"))
    else:
        action = doc["unmapped"]["action"] if class_uid == 6002 else doc["message"]
        resource = (doc["unmapped"]["resource"]["type"], doc["unmapped"]["resource"].get("id"))
    endpoint = doc.get("src_endpoint", {})
    origin = doc["app"]["name"] if class_uid == 6002 else endpoint.get("ip", endpoint.get("name"))
    original = doc["metadata"]["original_time"]
    assert doc["time"] == _epoch_us(original) // 1000
    return {
        "user": doc["actor"]["user"]["uid"],
        "type": action,
        "time": original,
        "success": doc["status_id"] == 1,
        "origin": origin,
        "resource": resource,
    }


def _recover_ecs(doc: dict[str, Any]) -> dict[str, Any]:
    target = doc["entity"]["target"]
    lifecycle = doc["labels"]["auditmw_kind"].startswith("audit.")
    source = doc.get("source", {})
    origin = doc["service"]["name"] if lifecycle else source.get("address", "unknown")
    return {
        "user": doc["user"]["id"],
        "type": doc["event"]["action"],
        "time": doc["@timestamp"],
        "success": doc["event"]["outcome"] == "success",
        "origin": origin,
        "resource": (target["sub_type"], target.get("id")),
    }


def _recover_otel(doc: dict[str, Any]) -> dict[str, Any]:
    resource_logs = doc["resourceLogs"][0]
    resource = _attrs(resource_logs["resource"]["attributes"])
    record = resource_logs["scopeLogs"][0]["logRecords"][0]
    attrs = _attrs(record["attributes"])
    nanos = int(record["timeUnixNano"])
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
    return {
        "user": attrs["enduser.id"],
        "type": attrs["auditmw.action"],
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "success": attrs["auditmw.outcome"] == "success",
        "origin": resource["service.name"]
        if attrs["event.name"].startswith("auditmw.audit.")
        else attrs.get("client.address", "unknown"),
        "resource": (attrs["auditmw.resource.type"], attrs.get("auditmw.resource.id")),
    }


def _attrs(key_values: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: next(iter(kv["value"].values())) for kv in key_values}


def _recover_cloudevents(doc: dict[str, Any]) -> dict[str, Any]:
    data = doc["data"]
    resource_type, _, resource_id = doc["subject"].partition("/")
    return {
        "user": doc["authid"],
        "type": data["action"],
        "time": doc["time"],
        "success": data["outcome"] == "success",
        "origin": data["service"]["name"]
        if doc["type"].startswith("io.auditmw.lifecycle.")
        else data["source"].get("ip", "unknown"),
        "resource": (resource_type, resource_id if "id" in data["resource"] else None),
    }


def _epoch_us(value: str) -> int:
    moment = dt.datetime.fromisoformat(value)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


class TestPCI:
    @settings(max_examples=150, deadline=None)
    @given(data=st.data(), fmt=st.sampled_from(FORMATS))
    def test_recoverable(
        self, data: st.DataObject, fmt: str, event_strategy: st.SearchStrategy[Event]
    ) -> None:
        """PCI DSS 10.2.2 elements survive canonical -> format -> stored JSON."""
        event = data.draw(event_strategy)
        assert recover_pci(fmt, export(fmt, event)) == pci(event)

    def test_corpus(self, corpus_event: Event) -> None:
        """Every corpus event keeps its PCI elements in every format."""
        expected = pci(corpus_event)
        for fmt in FORMATS:
            assert recover_pci(fmt, export(fmt, corpus_event)) == expected, fmt


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return []


class TestOutputs:
    def test_no_floats(self, corpus_event: Event) -> None:
        """No format emits a float (canonical serialization forbids them)."""
        for fmt in FORMATS:
            assert _floats(export(fmt, corpus_event)) == [], fmt

    def test_registered(self) -> None:
        """get_exporter returns each module's export function."""
        modules = {"ocsf": ocsf, "ecs": ecs, "otel": otel, "cloudevents": cloudevents}
        for fmt, module in modules.items():
            assert get_exporter(fmt) is module.export
