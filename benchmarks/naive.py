"""The naive audit: what a team writes by hand before it adopts an audit library.

One pure middleware (ASGI and WSGI twins) that records, per request, the time, method,
path, status, duration, client address, user agent, request id and the user from a
verified HS256 JWT (decoded with pyjwt, cached by token), as one ``json.dumps`` line
appended to a file.  It has none of what makes auditmw's events evidence: no
integrity chain, MAC or signed checkpoint, no redaction, no policy, no schema, no
``fsync``, no handling of sink failure, no trusted-proxy rules, no escaping of what a
client controls.  It is the benchmarks' lower bound for "an audit line per request":
the price of the trust auditmw adds is the difference.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import jwt

__all__ = ["NaiveAuditASGI", "NaiveAuditWSGI"]


class _Log:
    """The file, a lock around each write, and a dict of decoded tokens."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self._lock = threading.Lock()
        self._secret = secret
        self._users: dict[str, str | None] = {}

    def user(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[7:]
        if token not in self._users:
            if len(self._users) > 10_000:
                self._users.clear()
            try:
                claims = jwt.decode(token, self._secret, algorithms=["HS256"])
                self._users[token] = str(claims.get("sub"))
            except jwt.PyJWTError:
                self._users[token] = None
        return self._users[token]

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with self._lock:
            self._file.write(line)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class NaiveAuditASGI:
    """The naive audit as a pure-ASGI middleware (HTTP only)."""

    def __init__(self, app: Any, path: Path, secret: bytes) -> None:
        self.app = app
        self.log = _Log(path, secret)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.time()
        status = [500]

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            client = scope.get("client")
            self.log.write(
                {
                    "time": start,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status[0],
                    "duration_ms": (time.time() - start) * 1000,
                    "ip": client[0] if client else None,
                    "user_agent": headers.get("user-agent"),
                    "request_id": headers.get("x-request-id"),
                    "user": self.log.user(headers.get("authorization")),
                }
            )


class NaiveAuditWSGI:
    """The naive audit as a WSGI middleware (recorded when the response is returned)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: Path, secret: bytes) -> None:
        self.app = app
        self.log = _Log(path, secret)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start = time.time()
        status = ["500"]

        def wrapped(code: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = code
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, wrapped)
        finally:
            self.log.write(
                {
                    "time": start,
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "status": int(status[0][:3]),
                    "duration_ms": (time.time() - start) * 1000,
                    "ip": environ.get("REMOTE_ADDR"),
                    "user_agent": environ.get("HTTP_USER_AGENT"),
                    "request_id": environ.get("HTTP_X_REQUEST_ID"),
                    "user": self.log.user(environ.get("HTTP_AUTHORIZATION")),
                }
            )
