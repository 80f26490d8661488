"""Helpers shared by the exporters: timestamps, host splitting, lifecycle detection.

Exporters run on the delivery thread for every event, so these helpers avoid
``datetime`` parsing on the hot path and never copy the event.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from datetime import datetime
from typing import Any, Final

from auditmw._version import __version__

__all__ = [
    "PRODUCT_NAME",
    "PRODUCT_VERSION",
    "http_version",
    "is_ip",
    "is_lifecycle",
    "split_host",
    "time_us",
]

PRODUCT_NAME: Final = "auditmw"
PRODUCT_VERSION: Final = __version__

# A single-entry cache: consecutive events nearly always share the same second.  One
# tuple, read and replaced as a whole, so concurrent callers never mix two entries.
_last: tuple[str, int] = ("", 0)
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def time_us(value: str) -> int:
    """Return an RFC 3339 UTC timestamp as integer microseconds since the Unix epoch.

    The canonical form (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) takes a fast path; any other
    RFC 3339 string is parsed with :meth:`datetime.fromisoformat`.

    Raises:
        ValueError: ``value`` is not an RFC 3339 timestamp.
    """
    global _last
    if len(value) == 27 and value[-1] == "Z":
        prefix = value[:19]
        last_prefix, last_seconds = _last
        if prefix == last_prefix:
            return last_seconds * 1_000_000 + int(value[20:26])
        if _CANONICAL_TIME.match(value):
            seconds = calendar.timegm(
                (
                    int(value[0:4]),
                    int(value[5:7]),
                    int(value[8:10]),
                    int(value[11:13]),
                    int(value[14:16]),
                    int(value[17:19]),
                    0,
                    0,
                    0,
                )
            )
            _last = (prefix, seconds)
            return seconds * 1_000_000 + int(value[20:26])
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return calendar.timegm(parsed.utctimetuple()) * 1_000_000 + parsed.microsecond


# Client addresses repeat: remember the verdicts, within a bound.
_ip_verdicts: dict[str, bool] = {}


def is_ip(value: str) -> bool:
    """Return whether ``value`` is an IPv4 or IPv6 address (``source.ip`` may be a name).

    ASGI servers report a Unix socket path or a test client's name as the client
    host, so the pipeline's ``source.ip`` is not always an IP address.
    """
    verdict = _ip_verdicts.get(value)
    if verdict is None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            verdict = False
        else:
            verdict = True
        if len(_ip_verdicts) >= 4096:
            _ip_verdicts.clear()
        _ip_verdicts[value] = verdict
    return verdict


def split_host(host: str) -> tuple[str, int | None]:
    """Split a ``Host`` value into hostname and port (``[::1]:8443`` -> ``("::1", 8443)``)."""
    if host.startswith("["):
        end = host.find("]")
        if end != -1:
            rest = host[end + 1 :]
            digits = rest[1:]
            valid = rest[:1] == ":" and digits.isdigit() and int(digits) <= 65535
            return host[1:end], int(digits) if valid else None
    name, sep, port_text = host.rpartition(":")
    if sep and port_text.isdigit() and ":" not in name and int(port_text) <= 65535:
        return name, int(port_text)
    return host, None


def http_version(protocol: str) -> str:
    """Return the version of a protocol string: ``"HTTP/1.1"`` -> ``"1.1"``."""
    return protocol.rpartition("/")[2]


def is_lifecycle(event: dict[str, Any]) -> bool:
    """Return whether ``event`` is one of auditmw's own lifecycle records (``audit.*``)."""
    kind: str = event["kind"]
    return kind.startswith("audit.")
