"""A body auditmw does not parse is never stored as an unkeyed hash of its bytes.

The client chooses the content type: a password sent as ``text/plain`` would become
a guessable SHA-256 in the log.  With a redaction key the body gets a keyed HMAC;
without one only its size, type and an ``"content": "omitted"`` marker.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request, Response
from flask import Flask
from flask import request as flask_request

from auditmw import AuditConfig, AuditMiddleware
from auditmw.contrib.flask import Audit
from auditmw.policy import Policy
from auditmw.sinks import MemorySink
from auditmw.types import Event

from ._helpers import asgi_request

SECRET = b"hunter2-correct-horse"
KEY = b"redaction-key-of-32-bytes-long!!"
RULES: dict[str, Any] = {"rules": [{"paths": ["/login"], "level": "request_response"}]}


def make_policy(*, keyed: bool) -> Policy:
    if not keyed:
        return Policy(RULES)
    return Policy({**RULES, "redaction": {"hmac_key_id": "k1"}}, keys={"k1": KEY})


def fastapi_app(policy: Policy) -> FastAPI:
    app = FastAPI()

    @app.post("/login")
    async def login(request: Request) -> Response:
        return Response(await request.body(), media_type="text/plain")

    app.add_middleware(AuditMiddleware, config=AuditConfig(service="s", policy=policy))
    return app


def flask_app(policy: Policy) -> Flask:
    app = Flask(__name__)
    app.config["AUDITMW"] = AuditConfig(service="s", policy=policy, sinks=[MemorySink()])

    @app.post("/login")
    def login() -> Any:
        return app.response_class(flask_request.get_data(), mimetype="text/plain")

    Audit(app)
    return app


def post_fastapi(policy: Policy) -> None:
    response = asgi_request(
        fastapi_app(policy), "POST", "/login",
        headers={"content-type": "text/plain"}, content=SECRET,
    )  # fmt: skip
    assert response.content == SECRET


def post_flask(policy: Policy) -> None:
    client = flask_app(policy).test_client()
    response = client.post("/login", data=SECRET, content_type="text/plain")
    assert response.get_data() == SECRET


SHELLS = [pytest.param(post_fastapi, id="asgi"), pytest.param(post_flask, id="wsgi")]


def only_event(events: list[Event]) -> Event:
    (event,) = [e for e in events if e["kind"] == "http"]
    return event


def unkeyed_digests(data: bytes) -> list[str]:
    return [hashlib.new(name, data).hexdigest() for name in ("sha256", "sha1", "md5")]


class TestBodyDigest:
    @pytest.mark.parametrize("post", SHELLS)
    def test_no_key_records_no_digest(self, post: Any, audit_events: list[Event]) -> None:
        """Without a key: size, type and a marker; no digest of the password anywhere."""
        post(make_policy(keyed=False))
        event = only_event(audit_events)
        for part in (event["request"]["body"], event["response"]["body"]):
            assert part == {"content_type": part["content_type"], "size": len(SECRET),
                            "content": "omitted"}  # fmt: skip
        line = orjson.dumps(event).decode()
        for digest in unkeyed_digests(SECRET):
            assert digest not in line

    @pytest.mark.parametrize("post", SHELLS)
    def test_key_gives_keyed_hmac(self, post: Any, audit_events: list[Event]) -> None:
        """With the redaction key: an HMAC naming the key id, never the plain SHA-256."""
        post(make_policy(keyed=True))
        event = only_event(audit_events)
        body_key = hmac.new(KEY, b"auditmw/v1/body", hashlib.sha256).digest()
        expected = "hmac:k1:" + hmac.new(body_key, SECRET, hashlib.sha256).hexdigest()
        assert event["request"]["body"]["hmac"] == expected
        assert event["response"]["body"]["hmac"] == expected
        line = orjson.dumps(event).decode()
        for digest in unkeyed_digests(SECRET):
            assert digest not in line
