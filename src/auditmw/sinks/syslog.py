"""Send events as RFC 5424 syslog messages over UDP, TCP or TLS (stdlib only).

Each event becomes ``<PRI>1 TIME HOST APP PID KIND [auditmw@32473 event_id="…"
outcome="…" action="…"] BOM{json}``: the structured data lets a syslog server
filter and deduplicate, the message is the stored event as UTF-8.  TCP and TLS
(RFC 5425) use octet-counted framing (RFC 6587), so a newline inside a message can
never split it.

Guarantees: UDP is best effort (no acknowledgement exists).  Syslog over TCP has no
application acknowledgement either, so a connection cut can lose what sat in the
socket buffers; this sink detects a broken connection before each write and then
re-sends the batches written on it during the last ``resend_window`` seconds.
Delivery is thus at-least-once within that window; deduplicate on ``event_id``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Literal

from auditmw.exceptions import ConfigurationError, SinkError, SinkTimeoutError, SinkUnavailableError

if TYPE_CHECKING:
    from auditmw.core.types import Event
    from auditmw.sinks.base import Batch

__all__ = ["SyslogSink"]

Transport = Literal["udp", "tcp", "tls"]
_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3}
_BOM = b"\xef\xbb\xbf"
_SD_FIELDS = ("event_id", "outcome", "action")


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str, limit: int) -> str:
    # Header fields are PRINTUSASCII without spaces; anything else would corrupt the frame.
    cleaned = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return cleaned or "-"


class SyslogSink:
    """Writes each event as one RFC 5424 message.

    Args:
        host: the syslog server.
        port: its port (default 514 for UDP/TCP, 6514 for TLS).
        transport: ``"udp"``, ``"tcp"`` or ``"tls"``.
        format: the stored format of the message body.
        facility: syslog facility number (default 13, "log audit").
        app_name: the APP-NAME header field.
        sd_id: the structured-data element id (``name@<private enterprise number>``).
        tls_context: the TLS client context; default verifies with the system CAs.
        timeout: seconds for connecting and writing.
        resend_window: seconds of recent batches re-sent after a broken connection.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    Raises:
        ConfigurationError: the transport is unknown.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        transport: Transport = "tcp",
        format: str = "auditmw",
        facility: int = 13,
        app_name: str = "auditmw",
        sd_id: str = "auditmw@32473",
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
        resend_window: float = 5.0,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        if transport not in ("udp", "tcp", "tls"):
            raise ConfigurationError(
                f"SyslogSink transport must be 'udp', 'tcp' or 'tls', got {transport!r}",
                setting="transport",
            )
        self.host = host
        self.port = port or (6514 if transport == "tls" else 514)
        self.transport = transport
        self.format = format
        self.delivery_mode = delivery_mode
        self._facility = facility
        self._app = _token(app_name, 48)
        self._sd_id = sd_id
        self._hostname = _token(socket.gethostname(), 255)
        self._context = tls_context
        self._timeout = timeout
        self._window = resend_window
        self._sock: socket.socket | None = None
        self._recent: deque[tuple[float, bytes]] = deque()  # sent on the current connection
        self._resend: list[bytes] = []  # to send first on the next connection

    def format_message(self, event: Event, line: bytes) -> bytes:
        """Return the RFC 5424 message for one stored event (without transport framing)."""
        pri = self._facility * 8 + _SEVERITY.get(event.get("severity", "info"), 6)
        params = " ".join(
            f'{key}="{_sd_escape(str(event[key]))}"' for key in _SD_FIELDS if key in event
        )
        header = (
            f"<{pri}>1 {event.get('time', '-')} {self._hostname} {self._app} {os.getpid()} "
            f"{_token(str(event.get('kind', '-')), 32)} [{self._sd_id} {params}] "
        )
        return header.encode("utf-8") + _BOM + line

    def emit(self, batch: Batch) -> None:
        """Send every event of the batch.

        Raises:
            SinkUnavailableError: the server cannot be reached or the connection broke.
            SinkTimeoutError: the server does not accept data in time.
        """
        messages = [
            self.format_message(e, line) for e, line in zip(batch.events, batch.lines, strict=True)
        ]
        if not messages:
            return
        try:
            if self.transport == "udp":
                self._send_udp(messages)
            else:
                self._send_stream(b"".join(b"%d %s" % (len(m), m) for m in messages))
        except TimeoutError as exc:
            self._disconnect()
            raise SinkTimeoutError(f"SyslogSink {self.host}:{self.port}: write timed out") from exc
        except ssl.SSLError as exc:
            self._disconnect()
            raise SinkUnavailableError(f"SyslogSink {self.host}:{self.port}: TLS error") from exc
        except OSError as exc:
            self._disconnect()
            raise SinkUnavailableError(
                f"SyslogSink {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc

    def _send_udp(self, messages: list[bytes]) -> None:
        sock = self._sock
        if sock is None:
            sock = self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for message in messages:
            try:
                sock.sendto(message, (self.host, self.port))
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:  # no retry can make this datagram fit
                    raise SinkError("SyslogSink: event too large for UDP", retryable=False) from exc
                raise

    def _send_stream(self, frames: bytes) -> None:
        if self._sock is not None and self._is_broken(self._sock):
            self._disconnect()
        if self._sock is None:
            self._sock = self._connect()
            if self._resend:
                self._sock.sendall(b"".join(self._resend))
                self._resend = []
        now = time.monotonic()
        self._recent.append((now, frames))
        self._sock.sendall(frames)
        while self._recent and self._recent[0][0] < now - self._window:
            self._recent.popleft()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
        if self.transport == "tls":
            context = self._context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self.host)
        return sock

    @staticmethod
    def _is_broken(sock: socket.socket) -> bool:
        # A syslog server never writes to us: readable means closed (EOF) or reset.
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True

    def _disconnect(self) -> None:
        if self.transport != "udp":
            # Whatever was written on this connection recently may be lost: send it again.
            self._resend = [frames for _, frames in self._recent] + self._resend
            self._recent.clear()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass  # already gone
            self._sock = None

    def close(self) -> None:
        """Close the connection."""
        self._recent.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        return f"SyslogSink({self.host!r}, {self.port}, transport={self.transport!r})"
