"""The auditmw demo app: a small orders API behind AuditMiddleware.

Run it under uvicorn::

    AUDITMW_DEMO_LOG=audit.jsonl uvicorn app:app --app-dir examples

Every request is audited to the JSONL file named by ``AUDITMW_DEMO_LOG``
(default ``audit-demo.jsonl``), hash-chained, MAC'd and with Ed25519-signed
checkpoints; the keys live in ``AUDITMW_DEMO_KEYS`` (default ``audit-demo-keys/``)
and are created on first use.  ``examples/quickstart.py`` drives it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection

from auditmw import AuditConfig, AuditMiddleware, DeliveryOptions, annotate
from auditmw.integrity import IntegrityOptions, generate_keypair
from auditmw.sinks import FileSink

LOG_PATH = os.environ.get("AUDITMW_DEMO_LOG", "audit-demo.jsonl")
KEYS_DIR = Path(os.environ.get("AUDITMW_DEMO_KEYS", "audit-demo-keys"))


def demo_keys(directory: Path) -> tuple[Path, Path, Path]:
    """Create (once) the demo's signing key pair and MAC key; return their paths.

    In production, create them with ``auditmw keygen`` and keep the public key and a
    copy of the MAC key where the application host cannot write.
    """
    private, public, mac = (
        directory / "auditmw.key",
        directory / "auditmw.pub",
        directory / "auditmw.mac",
    )
    if not private.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_pem, public_pem, _ = generate_keypair()
        private.touch(mode=0o600)
        private.write_bytes(private_pem)
        public.write_bytes(public_pem)
        mac.touch(mode=0o600)
        mac.write_text(secrets.token_hex(32))
    return private, public, mac


_private, _public, _mac = demo_keys(KEYS_DIR)


class DemoAuth(AuthenticationBackend):
    """Toy session auth for the demo: ``X-Demo-User: ada`` logs in as ada."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-demo-user")
        if not name:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


config = AuditConfig(
    service="orders-api",
    sinks=[FileSink(LOG_PATH)],
    trusted_proxies=["127.0.0.1"],
    delivery=DeliveryOptions(max_wait_ms=20),
    integrity=IntegrityOptions(signing_key_file=str(_private), mac_key_file=str(_mac)),
)

app = FastAPI(title="auditmw demo")
# The last middleware added is the outermost: auditing wraps authentication, and reads
# the user after the app ran.
app.add_middleware(AuthenticationMiddleware, backend=DemoAuth())
app.add_middleware(AuditMiddleware, config=config)

ORDERS: dict[int, dict[str, object]] = {1: {"id": 1, "item": "book", "qty": 1}}
_release = asyncio.Event()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, object]:
    if order_id not in ORDERS:
        raise HTTPException(status_code=404, detail="no such order")
    return ORDERS[order_id]


@app.put("/orders/{order_id}")
async def update_order(order_id: int, qty: int) -> dict[str, object]:
    order = ORDERS.setdefault(order_id, {"id": order_id, "item": "book"})
    order["qty"] = qty
    annotate(reason="customer request")
    return order


@app.delete("/orders/{order_id}")
async def delete_order(order_id: int) -> None:
    raise HTTPException(status_code=403, detail="only admins delete orders")


@app.post("/orders/{order_id}/fail")
async def fail(order_id: int) -> None:
    raise RuntimeError("the payment backend is down")


async def _ticks(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield f"tick {i}\n".encode()
        await asyncio.sleep(0.01)


@app.get("/stream")
async def stream(count: int = 5) -> StreamingResponse:
    return StreamingResponse(_ticks(count), media_type="text/plain")


async def _held() -> AsyncIterator[bytes]:
    yield b"first\n"
    await asyncio.wait_for(_release.wait(), timeout=10)
    _release.clear()
    yield b"second\n"


@app.get("/held-stream")
async def held_stream() -> StreamingResponse:
    """Sends one chunk, then waits for ``POST /release`` before the second."""
    return StreamingResponse(_held(), media_type="text/plain")


@app.post("/release")
async def release() -> dict[str, bool]:
    _release.set()
    return {"released": True}
