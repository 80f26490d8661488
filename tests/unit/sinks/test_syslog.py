"""RFC 5424 message formatting of the syslog sink (the network side is in tests/services)."""

from __future__ import annotations

import os
import socket

import pytest

from auditmw.exceptions import ConfigurationError
from auditmw.sinks.syslog import SyslogSink

EVENT = {
    "event_id": "0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6e",
    "time": "2026-11-30T03:59:00.123456Z",
    "kind": "http",
    "action": "orders.update",
    "outcome": "success",
    "severity": "info",
}


class TestFormat:
    def test_rfc5424_layout(self) -> None:
        """PRI, version, timestamp, host, app, pid, msgid, structured data, BOM, JSON."""
        message = SyslogSink(app_name="orders api").format_message(EVENT, b'{"a":1}')
        host = socket.gethostname()
        expected = (
            f"<110>1 2026-11-30T03:59:00.123456Z {host} ordersapi {os.getpid()} http "
            '[auditmw@32473 event_id="0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6e" '
            'outcome="success" action="orders.update"] '
        ).encode()
        assert message == expected + b'\xef\xbb\xbf{"a":1}'

    @pytest.mark.parametrize(
        ("severity", "pri"),
        [
            pytest.param("info", 110, id="info"),
            pytest.param("low", 109, id="low"),
            pytest.param("medium", 108, id="medium"),
            pytest.param("high", 107, id="high"),
        ],
    )
    def test_priority_from_severity(self, severity: str, pri: int) -> None:
        """Facility 13 (log audit) times 8 plus the syslog severity of the event."""
        message = SyslogSink().format_message({**EVENT, "severity": severity}, b"{}")
        assert message.startswith(f"<{pri}>1 ".encode())

    @pytest.mark.parametrize(
        ("value", "escaped"),
        [
            pytest.param('a"b', 'a\\"b', id="quote"),
            pytest.param("a\\b", "a\\\\b", id="backslash"),
            pytest.param("a]b", "a\\]b", id="bracket"),
            pytest.param('"]\\', '\\"\\]\\\\', id="all"),
        ],
    )
    def test_structured_data_escaping(self, value: str, escaped: str) -> None:
        """Quotes, backslashes and closing brackets are escaped in SD parameter values."""
        message = SyslogSink().format_message({**EVENT, "action": value}, b"{}")
        assert f'action="{escaped}"]'.encode() in message

    def test_header_tokens_stay_tokens(self) -> None:
        """A kind with spaces or control characters cannot shift the header fields."""
        message = SyslogSink().format_message({**EVENT, "kind": "a b\nc"}, b"{}")
        assert message.split(b" ")[5] == b"abc"

    def test_bad_transport(self) -> None:
        """An unknown transport is a configuration error."""
        with pytest.raises(ConfigurationError) as info:
            SyslogSink(transport="sctp")  # type: ignore[arg-type]
        assert info.value.setting == "transport"
