"""Test doubles shared by the framework tests: a tiny bearer/API-key resolver."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

from auditmw.event import Actor, AuthInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from auditmw.event import Exchange

BASE_URL = "http://api.example.com"


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


def asgi_request(
    app: Any,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    raise_app_exceptions: bool = True,
) -> httpx.Response:
    """Send one request to an ASGI app in-process, from ``127.0.0.1:50000``."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(
            app=app, client=("127.0.0.1", 50000), raise_app_exceptions=raise_app_exceptions
        )
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.request(method, path, headers=headers, content=content)

    return asyncio.run(send())
