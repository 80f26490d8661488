"""SyslogSink against a real rsyslogd (UDP, TCP, TLS), with faults through a proxy."""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING

import orjson
import pytest

from auditmw.exceptions import SinkUnavailableError
from auditmw.sinks.base import Batch
from auditmw.sinks.syslog import SyslogSink
from tests.services.conftest import assert_complete_in_order, fault_scenario, numbered, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from auditmw.delivery import Delivery
    from tests.services.conftest import FaultProxy, Rsyslog

pytestmark = pytest.mark.service("rsyslog")


def batch(start: int, count: int) -> Batch:
    events = [numbered(i) for i in range(start, start + count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def send(sink: SyslogSink, sent: Batch) -> None:
    try:
        sink.emit(sent)
    finally:
        sink.close()


class TestTransports:
    @pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
    def test_rsyslog_receives_structured_messages(
        self, rsyslog: Rsyslog, tls_cert: tuple[Path, Path], transport: str
    ) -> None:
        """rsyslog parses the header, the structured data and the JSON message."""
        port = {"udp": rsyslog.udp, "tcp": rsyslog.tcp, "tls": rsyslog.tls}[transport]
        context = ssl.create_default_context(cafile=str(tls_cert[0]))
        sent = batch(0, 5)
        send(SyslogSink("127.0.0.1", port, transport=transport, tls_context=context), sent)  # type: ignore[arg-type]
        wait_for(lambda: len(rsyslog.records()) == 5, what="5 syslog records")
        records = rsyslog.records()
        assert [event for _, _, event in records] == sent.events
        msgid, sd, _ = records[0]
        assert msgid == "http"
        event_id = sent.events[0]["event_id"]
        assert sd == f'[auditmw@32473 event_id="{event_id}" outcome="success" action="orders.read"]'

    def test_structured_data_escaping(self, rsyslog: Rsyslog) -> None:
        """Quotes, backslashes and brackets in SD values are escaped so rsyslog parses them."""
        event = {**numbered(0), "action": 'a"b\\c]d'}
        send(SyslogSink("127.0.0.1", rsyslog.tcp), Batch([event], [orjson.dumps(event)]))
        wait_for(lambda: len(rsyslog.records()) == 1, what="the record")
        _, sd, stored = rsyslog.records()[0]
        assert sd.endswith('action="a\\"b\\\\c\\]d"]')
        assert stored == event

    def test_tls_refuses_an_unknown_certificate(self, rsyslog: Rsyslog) -> None:
        """Without the CA, the TLS handshake fails: the sink reports it unavailable."""
        with pytest.raises(SinkUnavailableError):
            send(SyslogSink("127.0.0.1", rsyslog.tls, transport="tls", timeout=2), batch(0, 1))

    def test_reconnects_after_the_server_closed(
        self, rsyslog: Rsyslog, fault_proxy: Callable[[tuple[str, int]], FaultProxy]
    ) -> None:
        """A connection closed in between batches is detected and the recent batch re-sent."""
        proxy = fault_proxy(("127.0.0.1", rsyslog.tcp))
        sink = SyslogSink("127.0.0.1", proxy.port)
        first = batch(0, 3)
        sink.emit(first)
        wait_for(lambda: len(rsyslog.records()) == 3, what="the first batch")
        proxy.cut()
        time.sleep(0.1)
        sink.emit(batch(3, 3))
        sink.close()
        wait_for(
            lambda: len({e["event_id"] for _, _, e in rsyslog.records()}) == 6, what="6 events"
        )
        assert proxy.connections == 2


class TestFaults:
    def test_faults_through_a_proxy(
        self,
        rsyslog: Rsyslog,
        fault_proxy: Callable[[tuple[str, int]], FaultProxy],
        make_delivery: Callable[..., Delivery],
        tmp_path: Path,
    ) -> None:
        """Cut mid-batch, blackholed, slowed, refused: all arrive at least once, in order."""
        proxy = fault_proxy(("127.0.0.1", rsyslog.tcp))
        sink = SyslogSink("127.0.0.1", proxy.port, timeout=1)
        delivery = make_delivery([sink], spool_dir=tmp_path / "spool", max_batch=10)
        total = fault_scenario(delivery, proxy)

        def events() -> list[dict[str, object]]:
            return [event for _, _, event in rsyslog.records()]

        wait_for(
            lambda: (
                len({e["event_id"] for e in events() if e["kind"] == "http"}) == total
                and "audit.sink_recovered" in [e["kind"] for e in events()]
            ),
            what="every event at rsyslog",
        )
        assert_complete_in_order(events(), total)
