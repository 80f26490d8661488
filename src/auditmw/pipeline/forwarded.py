"""The client behind proxies (the event's ``source``), and the root path a proxy strips.

Trust model (like werkzeug's ``ProxyFix``, but by address rather than by count):
``X-Forwarded-For`` and ``Forwarded`` are believed only when the socket peer is one
of the configured trusted proxies.  The chain is then walked from the right,
skipping trusted proxies; the first untrusted address is the client.  From any
other peer the headers are recorded verbatim as ``forwarded_for`` and ``ip`` stays
the socket peer: a client cannot choose its own recorded address.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from auditmw.pipeline.fields import cap, header_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from auditmw.config.values import Limits, Network
    from auditmw.core.event import Exchange

__all__ = ["ROOT_PATH", "ProxyTrust", "client_source", "relative_path"]

#: ``Exchange.extra`` key of the app's root path (ASGI ``root_path``, WSGI
#: ``SCRIPT_NAME``), recorded as ``request.root_path``; ``request.path`` and
#: ``request.route`` are relative to it.
ROOT_PATH = "auditmw.root_path"

_FORWARDED_FOR = re.compile(r'for\s*=\s*"?\[?([^\]";,\s]+)', re.IGNORECASE)
_CACHE_LIMIT = 4096


def _strip_port(candidate: str) -> str:
    # "198.51.100.7:443" -> IPv4 with port; IPv6 literals keep their colons.
    if candidate.count(":") == 1:
        return candidate.split(":", 1)[0]
    return candidate


class ProxyTrust:
    """Decides which address is the real client."""

    __slots__ = ("_cache", "_networks")

    def __init__(self, networks: Sequence[Network]) -> None:
        self._networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        """Return whether ``address`` belongs to a trusted proxy network."""
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            trusted = False
        else:
            trusted = any(ip in net for net in self._networks)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded: never grows with traffic
        self._cache[address] = trusted
        return trusted

    def client_ip(self, peer: str | None, xff: str | None, forwarded: str | None) -> str | None:
        """Return the client address given the socket peer and the forwarding headers."""
        if not self._networks or peer is None or not (xff or forwarded):
            return peer
        if not self.is_trusted(peer):
            return peer
        hops: list[str] = []
        if forwarded:
            hops = [_strip_port(m) for m in _FORWARDED_FOR.findall(forwarded)]
        elif xff:
            hops = [_strip_port(h.strip()) for h in xff.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def relative_path(path: str, base: str) -> str:
    """Return ``path`` relative to the root path ``base`` (no trailing ``/``).

    A path outside ``base`` (a proxy already stripped it) is returned unchanged.
    """
    if path.startswith(base):
        rest = path[len(base) :]
        if not rest:
            return "/"
        if rest[0] == "/":
            return rest
    return path


def client_source(  # noqa: PLR0917 - the hot path passes them positionally
    proxies: ProxyTrust,
    limits: Limits,
    ex: Exchange,
    truncated: list[str],
    xff: str | None,
    forwarded: str | None,
    agent: str | None,
) -> dict[str, Any]:
    """The event's ``source``: the client address as far as proxies are trusted, its agent."""
    try:  # any shape a server or test factory passes: (host, port), (), None, …
        peer, port = ex.client  # type: ignore[misc]
    except (TypeError, ValueError):
        peer, port = None, None
    if peer is not None and peer.__class__ is not str:
        peer, port = None, None
    ip = proxies.client_ip(peer, xff, forwarded)
    source: dict[str, Any] = {"ip": ip if ip is not None else "unknown"}
    if port and ip == peer:  # WSGI servers without REMOTE_PORT report 0
        source["port"] = port
    if agent:
        source["user_agent"] = cap(
            header_text(agent), limits.user_agent, "/source/user_agent", truncated
        )
    if xff or forwarded:
        raw = header_text(xff or forwarded or "")
        source["forwarded_for"] = cap(raw, limits.header, "/source/forwarded_for", truncated)
    return source
