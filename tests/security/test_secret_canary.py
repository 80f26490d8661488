"""Secret canaries: planted credentials never reach any sink, through a real FastAPI app.

A known JWT, API key, cookie and password (in a JSON body field and in query
parameters) are sent through ``AuditMiddleware`` with real identity resolvers, a
``MemorySink`` and a ``FileSink``; the stored bytes of both are searched for every
canary, in raw, percent-encoded and JSON-escaped forms.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware
from auditmw.config import DeliveryOptions
from auditmw.identity import APIKeyRegistry, APIKeyResolver, JWTResolver, hash_key
from auditmw.sinks import FileSink, MemorySink

JWT_SECRET = b"jwt-secret-for-canary-tests-0123456789abcdef0123456789abcdef01"
API_SECRET = b"api-secret-for-canary-0123"
API_KEY = "amk_CANARYapikey7f3e9a1c5b2d8e4f6a0b"
COOKIE = "CANARYcookie5e1f9c3a7b2d4e6f8a0c"
PASSWORD = "CANARY-pw-Tr0ub4dor&3-horse"
QUERY_PASSWORD = "CANARY-qpw-correct-horse-battery"
BASIC_PASSWORD = "CANARY-basic-pw-9c1e"
CONTROL = "CANARY-control-not-a-secret"


def canary_jwt(sub: str = "user-canary") -> str:
    """A valid HS256 token whose bytes must never be stored."""
    claims = {"sub": sub, "exp": int(time.time()) + 600, "jti": "jti-canary", "nonce": "CANARYn"}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def forms(secret: str) -> set[bytes]:
    """The stored shapes a leaked secret could take: raw, percent-encoded, base64 parts."""
    out = {secret.encode(), quote(secret, safe="").encode(), quote(secret).encode()}
    if secret.count(".") == 2:  # a JWT: its signature alone is the secret part
        out.add(secret.rsplit(".", 1)[1].encode())
    return {form for form in out if len(form) >= 12}


@pytest.fixture
def app_and_sinks(tmp_path: Path) -> tuple[FastAPI, MemorySink, Path]:
    """A FastAPI app behind AuditMiddleware with JWT and API-key resolvers."""
    registry = APIKeyRegistry(
        API_SECRET, [{"key_id": "ci", "hash": hash_key(API_SECRET, API_KEY.encode())}]
    )
    memory = MemorySink()
    path = tmp_path / "audit.jsonl"
    config = AuditConfig(
        service="canary-api",
        sinks=[memory, FileSink(path)],
        resolvers=[
            JWTResolver(algorithms=["HS256"], secret=JWT_SECRET, cookie="access_token"),
            APIKeyResolver(registry, query_param="api_key"),
        ],
        # Ask for the secret headers too: they must be refused whatever the allow-list says.
        record_headers=["authorization", "cookie", "x-api-key", "user-agent", "content-type"],
        delivery=DeliveryOptions(max_wait_ms=5),
    )
    app = FastAPI()
    app.add_middleware(AuditMiddleware, config=config)

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        body = await request.json()
        return {"user": body["username"]}

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    return app, memory, path


class TestSecretCanaries:
    def test_no_canary_in_any_sink(self, app_and_sinks: tuple[FastAPI, MemorySink, Path]) -> None:
        """Every planted credential is absent from the memory sink and the file bytes."""
        app, memory, path = app_and_sinks
        token, cookie_token = canary_jwt(), canary_jwt("cookie-user")
        basic = base64.b64encode(f"ada:{BASIC_PASSWORD}".encode()).decode()
        with TestClient(app) as client:
            client.get("/orders/1", headers={"Authorization": f"Bearer {token}"})
            client.get("/orders/2", headers={"X-API-Key": API_KEY})
            client.get("/orders/3", params={"api_key": API_KEY})
            client.get(
                "/orders/4", headers={"Cookie": f"session={COOKIE}; access_token={cookie_token}"}
            )
            client.get("/orders/5", headers={"Authorization": f"Basic {basic}"})
            client.post("/login", json={"username": "ada", "password": PASSWORD})
            client.post("/login", params={"password": QUERY_PASSWORD}, json={"username": "ada"})
            client.get("/orders/6", headers={"Authorization": f"Bearer {token[:-6]}AAAAAA"})
            client.get("/orders/7", params={"access_token": token})
            client.get("/orders/8", params={"ref": CONTROL})
        stored = [b"\n".join(memory.lines), path.read_bytes()]
        # Positive control: a harmless marker is stored in both sinks, so the search can fail.
        assert all(CONTROL.encode() in blob for blob in stored)
        events = memory.events
        assert len(events) >= 10
        # The identities were resolved, so the secrets did flow through the resolvers.
        actors = {event["actor"]["id"] for event in events}
        assert {"user-canary", "cookie-user", "ci"} <= actors
        assert any(event["actor"]["auth"].get("error") == "invalid_signature" for event in events)
        secrets = [
            token,
            cookie_token,
            API_KEY,
            COOKIE,
            PASSWORD,
            QUERY_PASSWORD,
            BASIC_PASSWORD,
            basic,
        ]
        for secret in secrets:
            for form in forms(secret):
                for blob in stored:
                    assert form not in blob, f"a canary leaked: {form[:10]!r}…"
