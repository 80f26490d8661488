"""Shared by the framework tests: real resolvers with test keys, and an in-process ASGI client."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from auditmw.identity import APIKeyRegistry, APIKeyResolver, JWTResolver
from auditmw.identity.apikey import hash_key

if TYPE_CHECKING:
    from collections.abc import Mapping


BASE_URL = "http://api.example.com"
JWT_SECRET = b"parity-test-secret-of-at-least-32-bytes!"
API_KEY_SECRET = b"parity-api-key-server-secret"
API_KEY = "ak_live_parity_0123456789"


def make_token(subject: str, secret: bytes = JWT_SECRET) -> str:
    """An HS256 JWT for ``subject``, valid for an hour."""
    claims = {"sub": subject, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def parity_resolvers() -> list[Any]:
    """The real resolvers: HS256 JWTs and one registered API key (``svc-1``)."""
    registry = APIKeyRegistry(
        API_KEY_SECRET,
        [
            {
                "key_id": "k1",
                "hash": hash_key(API_KEY_SECRET, API_KEY.encode()),
                "principal": {"id": "svc-1", "type": "service"},
            }
        ],
    )
    return [
        JWTResolver(algorithms=["HS256"], secret=JWT_SECRET),
        APIKeyResolver(registry),
    ]


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
