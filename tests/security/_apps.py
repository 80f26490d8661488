"""Real FastAPI, Flask and Django apps audited into a chained file, for adversarial tests.

Each :class:`Target` serves one app with a fresh auditor writing one JSONL file with
an integrity chain and signed checkpoints; ``close()`` closes the auditor and
returns the verification report of the file, read back through the public API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request  # at module level: FastAPI resolves annotations here

from auditmw import AuditConfig, DeliveryOptions, IntegrityOptions, annotate
from auditmw.integrity import KeyRegistry, generate_keypair, verify_files
from auditmw.sinks import FileSink

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from auditmw.auditor import Auditor
    from auditmw.integrity import Report
    from auditmw.types import Event, Processor

LEVELS = ("metadata", "request", "request_response")
FRAMEWORKS = ("fastapi", "flask", "django")


def make_config(
    path: Path,
    level: str,
    *,
    mode: str = "async",
    sinks: Sequence[Any] = (),
    processors: Sequence[Processor] = (),
    resolvers: Sequence[Any] = (),
) -> tuple[AuditConfig, KeyRegistry]:
    """A config writing ``path`` with a chain and signed checkpoints, every request at ``level``."""
    private, public, key_id = generate_keypair()
    registry = KeyRegistry.from_mapping(
        {"keys": [{"key_id": key_id, "public_key": public.decode()}]}
    )
    config = AuditConfig(
        service="adversarial",
        sinks=[FileSink(path), *sinks],
        policy={"id": "adv", "rules": [{"id": "all", "level": level}]},
        integrity=IntegrityOptions(signing_key=private),
        # A generous durable timeout: a hang guard, never what a verdict depends on.
        delivery=DeliveryOptions(max_wait_ms=2, mode=mode, durable_timeout=30),  # type: ignore[arg-type]
        processors=list(processors),
        resolvers=list(resolvers),
    )
    return config, registry


@dataclass
class Response:
    """What the client saw."""

    status: int
    audit_id: str | None


@dataclass
class Target:
    """One audited app and the client that calls it."""

    call: Callable[[str, str, bytes, dict[str, str]], Response]
    auditor: Auditor
    path: Path
    registry: KeyRegistry
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def events(self) -> list[Event]:
        """Every record of the file."""
        import orjson

        return [orjson.loads(line) for line in self.path.read_bytes().splitlines()]

    def close(self) -> Report:
        """Close the auditor (closing checkpoint) and verify the file."""
        self.auditor.close(10)
        for undo in self.cleanup:
            undo()
        return verify_files([self.path], keys=self.registry)


def _echo_annotation(value: str) -> None:
    """Annotate the file name whose bytes the ``x-note`` header gives in hex."""
    if value:
        annotate(note=os.fsdecode(bytes.fromhex(value)))


def fastapi_target(config: AuditConfig, path: Path, registry: KeyRegistry) -> Target:
    """A FastAPI app behind ``AuditMiddleware``, called through Starlette's TestClient."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from auditmw.asgi import AuditMiddleware

    app = FastAPI()

    @app.api_route("/orders/{item}", methods=["GET", "POST", "PUT"])
    async def handle(item: str, request: Request) -> dict[str, int]:
        _echo_annotation(request.headers.get("x-note", ""))
        return {"read": len(await request.body())}

    middleware = AuditMiddleware(app, config)
    client = TestClient(middleware)

    def call(method: str, url: str, body: bytes, headers: dict[str, str]) -> Response:
        response = client.request(method, url, content=body, headers=headers)
        return Response(response.status_code, response.headers.get("audit-id"))

    return Target(call, middleware.auditor, path, registry, [client.close])


def flask_target(config: AuditConfig, path: Path, registry: KeyRegistry) -> Target:
    """A Flask app with ``Audit(app)``, called through Werkzeug's test client."""
    from flask import Flask, request

    from auditmw.contrib.flask import Audit

    app = Flask(__name__)

    @app.route("/orders/<item>", methods=["GET", "POST", "PUT"])
    def handle(item: str) -> dict[str, int]:
        _echo_annotation(request.headers.get("x-note", ""))
        return {"read": len(request.get_data())}

    Audit(app, config)
    client = app.test_client()

    def call(method: str, url: str, body: bytes, headers: dict[str, str]) -> Response:
        response = client.open(url, method=method, data=body, headers=headers, buffered=True)
        response.close()
        return Response(response.status_code, response.headers.get("audit-id"))

    return Target(call, Audit.auditor(app), path, registry)


def django_target(config: AuditConfig, path: Path, registry: KeyRegistry) -> Target:
    """The test Django project with ``settings.AUDITMW = {"config": config}``."""
    from tests.frameworks import django_app

    django_app.setup()
    from django.test import Client
    from django.test.utils import override_settings

    from auditmw.contrib.django import get_auditor

    override = override_settings(AUDITMW={"config": config})
    override.enable()
    client = Client()

    def call(method: str, url: str, body: bytes, headers: dict[str, str]) -> Response:
        content_type = headers.pop("content-type", "application/octet-stream")
        extra: dict[str, Any] = {
            f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()
        }
        response = client.generic(method, url, body, content_type=content_type, **extra)
        response.close()
        return Response(response.status_code, response.headers.get("audit-id"))

    return Target(call, get_auditor(), path, registry, [override.disable])


BUILDERS = {"fastapi": fastapi_target, "flask": flask_target, "django": django_target}


def make_target(framework: str, config: AuditConfig, path: Path, registry: KeyRegistry) -> Target:
    """Build the app of ``framework`` audited with ``config``."""
    return BUILDERS[framework](config, path, registry)
