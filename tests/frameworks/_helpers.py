"""Test doubles shared by the framework tests: a tiny bearer/API-key resolver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditmw.event import Actor, AuthInfo

if TYPE_CHECKING:
    from auditmw.event import Exchange


class BearerTestResolver:
    """Accepts ``Authorization: Bearer user:<id>`` and ``X-API-Key: key:<id>`` (tests only)."""

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return a verified user or API-key actor, or ``None`` when no credential is present."""
        auth = exchange.headers.get("authorization") or ""
        if auth.startswith("Bearer user:"):
            return Actor(
                id=auth.removeprefix("Bearer user:"),
                type="user",
                auth=AuthInfo(method="jwt", verified=True),
            )
        key = exchange.headers.get("x-api-key") or ""
        if key.startswith("key:"):
            return Actor(
                id=key.removeprefix("key:"),
                type="api_key",
                auth=AuthInfo(method="api_key", verified=True),
            )
        return None
