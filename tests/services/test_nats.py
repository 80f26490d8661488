"""NATSSink against the real NATS JetStream server, directly and through a fault proxy."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from auditmw.exceptions import SinkUnavailableError
from tests.services.conftest import (
    NATS_URL,
    assert_complete_in_order,
    emit_all,
    fault_scenario,
    numbered_batch,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from auditmw.delivery import Delivery
    from tests.services.conftest import FaultProxy, NatsStream

pytestmark = pytest.mark.service("nats")
pytest.importorskip("nats")

from auditmw.sinks.nats import NATSSink  # noqa: E402 - after the driver check


class TestNATSSink:
    def test_publish_acked_in_order_and_deduplicated(self, nats_stream: NatsStream) -> None:
        """Messages are stored in order; a replayed batch is dropped by Nats-Msg-Id."""
        sink = NATSSink(
            NATS_URL, subject=nats_stream.subject, stream=nats_stream.name, create_stream=True
        )
        first, second = numbered_batch(0, 5), numbered_batch(5, 3)
        emit_all(sink, first, first, second)
        assert nats_stream.messages() == first.events + second.events

    def test_message_id_header(self, nats_stream: NatsStream) -> None:
        """Each message carries its event_id as Nats-Msg-Id."""
        sent = numbered_batch(0, 1)
        emit_all(
            NATSSink(
                NATS_URL, subject=nats_stream.subject, stream=nats_stream.name, create_stream=True
            ),
            sent,
        )

        async def header() -> str:
            import nats

            nc = await nats.connect(NATS_URL)
            try:
                msg = await nc.jetstream().get_msg(nats_stream.name, 1)
                assert msg.headers is not None
                return str(msg.headers["Nats-Msg-Id"])
            finally:
                await nc.close()

        assert asyncio.run(header()) == sent.events[0]["event_id"]

    def test_no_stream_is_an_error(self, nats_stream: NatsStream) -> None:
        """Publishing where no stream listens fails (no silent loss)."""
        sink = NATSSink(NATS_URL, subject=nats_stream.subject + ".nowhere", timeout=1)
        with pytest.raises(SinkUnavailableError):
            emit_all(sink, numbered_batch(0, 1))

    def test_unreachable_server(self) -> None:
        """No server: SinkUnavailableError."""
        from tests.services.conftest import free_port

        with pytest.raises(SinkUnavailableError):
            emit_all(NATSSink(f"nats://127.0.0.1:{free_port()}", timeout=1), numbered_batch(0, 1))

    def test_faults_through_a_proxy(
        self,
        nats_stream: NatsStream,
        fault_proxy: Callable[[tuple[str, int]], FaultProxy],
        make_delivery: Callable[..., Delivery],
        tmp_path: Path,
    ) -> None:
        """Cut mid-batch, blackholed, slowed, refused: each event stored exactly once, in order."""
        proxy = fault_proxy(("127.0.0.1", 4222))
        sink = NATSSink(
            f"nats://127.0.0.1:{proxy.port}",
            subject=nats_stream.subject,
            stream=nats_stream.name,
            create_stream=True,
            timeout=1,
        )
        delivery = make_delivery([sink], spool_dir=tmp_path / "spool", max_batch=10)
        total = fault_scenario(delivery, proxy)
        wait_for(
            lambda: (
                "audit.sink_recovered" in [e["kind"] for e in nats_stream.messages()]
                and sum(e["kind"] == "http" for e in nats_stream.messages()) >= total
            ),
            what="every event in the stream",
        )
        messages = nats_stream.messages()
        assert_complete_in_order(messages, total)
        assert sum(e["kind"] == "http" for e in messages) == total  # exactly once
