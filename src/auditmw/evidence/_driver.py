"""Driving an ASGI or WSGI app in-process for scenario tests, lifespan included.

An ASGI app gets the lifespan protocol around the run (startup before the first
request, shutdown after the last), as a server would; state set during startup is
handed to each request's scope.  Apps without lifespan support are driven anyway.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

__all__ = ["Driver", "is_asgi"]


def is_asgi(app: Any) -> bool:
    """Whether ``app`` is an ASGI application (a coroutine function, or one's ``__call__``).

    Args:
        app: an ASGI or WSGI application.

    .. versionadded:: 0.1.0
    """
    call = app if inspect.isfunction(app) else getattr(app, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


class Driver:
    """Sends requests to an ASGI app (on a private event loop) or a WSGI app, in-process.

    Args:
        httpx: the httpx module.
        app: the application.

    .. versionadded:: 0.1.0
    """

    def __init__(self, httpx: Any, app: Any) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lifespan: _Lifespan | None = None
        if is_asgi(app):
            self.loop = asyncio.new_event_loop()
            self._lifespan = _Lifespan(app)
            transport = httpx.ASGITransport(app=self._lifespan.wrap, raise_app_exceptions=False)
            self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        else:
            transport = httpx.WSGITransport(app=app, raise_app_exceptions=False)
            self.client = httpx.Client(transport=transport, base_url="http://testserver")

    def __enter__(self) -> Driver:
        if self.loop is not None and self._lifespan is not None:
            self.loop.run_until_complete(self._lifespan.startup())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is None or self._lifespan is None:
            self.client.close()
            return
        try:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self._lifespan.shutdown())
        finally:
            self.loop.close()

    def send(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send one request and return the httpx response."""
        if self.loop is not None:
            return self.loop.run_until_complete(self.client.request(method, url, **kwargs))
        return self.client.request(method, url, **kwargs)


class _Lifespan:
    """The server side of the ASGI lifespan protocol, for one app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.supported = False
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def wrap(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app as the transport calls it: with the lifespan state in the scope."""
        if self.supported:
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except Exception:  # noqa: S110 - apps without lifespan support raise on it
            pass
        finally:
            # Also unblocks startup() when the app returned without answering.
            await self._outbox.put({"type": "lifespan.done"})

    async def startup(self) -> None:
        """Run the app's startup; remember whether it supports lifespan at all."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await asyncio.wait_for(self._outbox.get(), timeout=30)
        if reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app's lifespan startup failed: {reply.get('message', '')}")
        self.supported = reply["type"] == "lifespan.startup.complete"

    async def shutdown(self) -> None:
        """Run the app's shutdown (which flushes auditmw's delivery) and wait for it."""
        if self._task is None:
            return
        if self.supported:
            await self._inbox.put({"type": "lifespan.shutdown"})
            await asyncio.wait_for(self._outbox.get(), timeout=30)
        await asyncio.wait_for(self._task, timeout=30)
