"""Durable mode through Django's middleware: a response only once its event is stored.

Sync and async handlers, plain and streaming responses, against a sink that stores and
one that refuses: the stored case answers after the event is in the sink, the refused
case fails closed (503 before the response started; an aborted stream after).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import async_to_sync

from auditmw import AuditConfig, DeliveryOptions
from auditmw.exceptions import DeliveryTimeoutError, SinkError
from tests.frameworks import django_app

django_app.setup()

from django.test import AsyncClient, Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from auditmw.contrib.django import get_auditor  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

    from auditmw.sinks.base import Batch

HEADERS = {"HTTP_HOST": "api.example.com"}


class RecordingSink:
    """Stores event ids as it is given them, or refuses every batch for good."""

    format = "auditmw"

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.ids: set[str] = set()
        self._lock = threading.Lock()

    def emit(self, batch: Batch) -> None:
        if self.refuse:
            raise SinkError("refused", retryable=False)
        with self._lock:
            self.ids.update(str(e.get("event_id")) for e in batch.events)

    def close(self) -> None:
        pass


def durable(sink: RecordingSink) -> Any:
    config = AuditConfig(
        service="durable-django",
        sinks=[sink],
        delivery=DeliveryOptions(mode="durable", durable_timeout=30),
    )
    return override_settings(AUDITMW={"config": config})


@pytest.fixture
def stored() -> Iterator[RecordingSink]:
    sink = RecordingSink()
    with durable(sink):
        yield sink
        get_auditor().close()


@pytest.fixture
def refused() -> Iterator[RecordingSink]:
    sink = RecordingSink(refuse=True)
    with durable(sink):
        yield sink
        get_auditor().close()


class TestStored:
    def test_sync_response_after_its_event_is_stored(self, stored: RecordingSink) -> None:
        """When the client has the response, its event is already in the sink."""
        for n in range(3):
            response = Client().get(f"/orders/{n}", **HEADERS)  # type: ignore[arg-type]
            assert response.status_code == 200
            assert response["Audit-Id"] in stored.ids

    def test_async_response_after_its_event_is_stored(self, stored: RecordingSink) -> None:
        """The same through Django's async handler, without blocking its loop."""

        async def fetch() -> Any:
            return await AsyncClient().get("/orders/5", **HEADERS)  # type: ignore[arg-type]

        response = async_to_sync(fetch)()
        assert response.status_code == 200
        assert response["Audit-Id"] in stored.ids

    def test_stream_ends_after_its_event_is_stored(self, stored: RecordingSink) -> None:
        """A streaming response holds its last chunk until the event is stored."""
        response = Client().get("/stream", **HEADERS)  # type: ignore[arg-type]
        chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
        assert next(chunks) == b"chunk-0"
        assert response["Audit-Id"] not in stored.ids  # not finished: not stored yet
        rest = b"".join(chunks)
        assert rest == b"chunk-1chunk-2"
        assert response["Audit-Id"] in stored.ids


class TestRefused:
    def test_sync_fails_closed(self, refused: RecordingSink) -> None:
        """A response whose event was refused is replaced by a 503 before it starts."""
        response = Client().get("/orders/1", **HEADERS)  # type: ignore[arg-type]
        assert response.status_code == 503
        assert response["Retry-After"] == "1"
        assert response.content == b"audit storage unavailable\n"

    def test_async_fails_closed(self, refused: RecordingSink) -> None:
        """The same through the async handler."""

        async def fetch() -> Any:
            return await AsyncClient().get("/orders/1", **HEADERS)  # type: ignore[arg-type]

        assert async_to_sync(fetch)().status_code == 503

    def test_stream_is_aborted_not_completed(self, refused: RecordingSink) -> None:
        """A stream already under way is cut (an exception), never completed unaudited."""
        response = Client().get("/stream", **HEADERS)  # type: ignore[arg-type]
        chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
        assert next(chunks) == b"chunk-0"
        with pytest.raises(DeliveryTimeoutError):
            b"".join(chunks)
