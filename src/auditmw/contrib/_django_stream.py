"""Finishing the event of a Django streaming response when its stream ends.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from auditmw.core.context import _current
from auditmw.exceptions import DeliveryTimeoutError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

    from django.http import StreamingHttpResponse

    from auditmw.auditor import Auditor
    from auditmw.core.event import Exchange
    from auditmw.delivery.durable import DurableWaiter
    from auditmw.pipeline.body import BodyRecorder

__all__ = ["StreamTracker"]


class StreamTracker:
    """Counts (and captures) a response's bytes and records its event once, at the end."""

    __slots__ = ("_auditor", "_bodies", "_exchange", "_exhausted", "_recorded")

    def __init__(self, auditor: Auditor, exchange: Exchange, bodies: BodyRecorder | None) -> None:
        self._auditor = auditor
        self._exchange = exchange
        self._bodies = bodies
        self._exhausted = False
        self._recorded = False

    def complete(self, content: bytes) -> DurableWaiter | None:
        """Record a response whose whole body is ``content``.

        Returns, in durable mode, the waiter the response must wait for (else ``None``).
        """
        self._seen(content)
        return self._finish(commit=True)

    def _seen(self, chunk: bytes) -> None:
        self._exchange.response_bytes += len(chunk)
        if self._bodies is not None:
            try:
                self._bodies.response_chunk(chunk)
            except Exception as exc:  # never into the response stream
                self._bodies = None
                self._auditor.internal_error("django.body", exc, self._exchange)

    def watch(self, response: StreamingHttpResponse) -> None:
        """Wrap ``response``'s content and finish the event when Django closes it."""
        if getattr(response, "file_to_stream", None) is not None:
            # A FileResponse may be handed to the server's wsgi.file_wrapper (sendfile),
            # bypassing streaming_content: keep it intact and take the declared size.
            length = response.get("Content-Length", "")
            self._exchange.response_bytes = int(length) if length.isdigit() else 0
            self._exhausted = True
        elif response.is_async:
            content = cast("AsyncIterable[bytes]", response.streaming_content)
            response.streaming_content = self._awrap(content)
        else:
            response.streaming_content = self._wrap(
                cast("Iterable[bytes]", response.streaming_content)
            )
        closers = getattr(response, "_resource_closers", None)
        if closers is None:  # pragma: no cover - every supported Django version has it
            self._record()
        else:
            closers.append(self.close)

    def _wrap(self, content: Iterable[bytes]) -> Iterator[bytes]:
        exchange = self._exchange
        iterator = iter(content)
        held: bytes | None = None  # durable mode: chunks go out one step late
        while True:
            token = _current.set(exchange.context)
            try:
                chunk = next(iterator)
            except StopIteration:
                self._exhausted = True
                break
            except BaseException as exc:
                self.fail(exc)
                raise
            finally:
                _current.reset(token)
            self._seen(chunk)
            if not self._auditor.durable:
                yield chunk
                continue
            if held is not None:
                yield held
            held = chunk
        waiter = self._finish(commit=True)
        if waiter is not None and not waiter.wait(self._timeout()):
            raise DeliveryTimeoutError("durable audit commit failed")  # abort, never complete
        if held is not None:
            yield held

    async def _awrap(self, content: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        exchange = self._exchange
        iterator = aiter(content)
        held: bytes | None = None  # durable mode: chunks go out one step late
        while True:
            token = _current.set(exchange.context)
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                self._exhausted = True
                break
            except BaseException as exc:
                self.fail(exc)
                raise
            finally:
                _current.reset(token)
            self._seen(chunk)
            if not self._auditor.durable:
                yield chunk
                continue
            if held is not None:
                yield held
            held = chunk
        waiter = self._finish(commit=True)
        if waiter is not None and not await waiter.await_async(self._timeout()):
            raise DeliveryTimeoutError("durable audit commit failed")  # abort, never complete
        if held is not None:
            yield held

    def fail(self, exc: BaseException) -> None:
        """Record an exception (or, for a ``BaseException``, an abort)."""
        if isinstance(exc, Exception):
            self._exchange.exception = exc
        else:  # cancelled: the client went away
            self._exchange.aborted = True
        self._record()

    def close(self) -> None:
        """Called by ``response.close()``: finish the event if the stream did not."""
        if not self._exhausted:
            self._exchange.aborted = True
        self._record()

    def __del__(self) -> None:
        # Neither read to the end nor closed: Django's test client drops a stream nobody
        # read.  Finish the event now, marked as in the WSGI shell (shells brief, 15.6).
        if not self._recorded:
            context = self._exchange.context
            if context is not None:
                context.annotations["auditmw.response"] = "not_closed"
            try:
                self._record()
            except Exception:  # pragma: no cover - a hook never raises, least of all here
                return

    def _timeout(self) -> float:
        return self._auditor.config.delivery.durable_timeout

    def _record(self) -> None:
        self._finish(commit=False)

    def _finish(self, *, commit: bool) -> DurableWaiter | None:
        """Finish the event once: queue it, or in durable mode (``commit``) hand back its waiter."""
        if self._recorded:
            return None
        self._recorded = True
        if self._bodies is not None:
            try:
                self._bodies.finish()
            except Exception as exc:  # the event is still recorded, without bodies
                self._auditor.internal_error("django.body", exc, self._exchange)
        if commit and self._auditor.durable:
            return self._auditor.commit(self._exchange)
        self._auditor.record(self._exchange)
        return None
