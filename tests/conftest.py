"""Shared test configuration.

Service tests carry ``@pytest.mark.service("postgres")`` (or ``"nats"``, ``"redis"``,
``"rabbitmq"``).  When the service is not reachable they are skipped with the reason,
unless ``AUDITMW_REQUIRE_SERVICES=1`` (CI sets it), in which case they fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Services the machine provides, by marker name.
SERVICES: dict[str, tuple[str, int]] = {
    "postgres": ("127.0.0.1", 5432),
    "nats": ("127.0.0.1", 4222),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}


def services_required() -> bool:
    """Whether missing services must fail the run instead of skipping."""
    return os.environ.get("AUDITMW_REQUIRE_SERVICES") == "1"


def is_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, reason: str) -> None:
    """Skip (or fail under ``AUDITMW_REQUIRE_SERVICES=1``) because ``name`` is unavailable."""
    message = f"service {name!r} unavailable: {reason}"
    if services_required():
        pytest.fail(message + " (AUDITMW_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("service"):
        name = marker.args[0] if marker.args else ""
        address = SERVICES.get(name)
        if address is not None and not is_reachable(*address):
            require_service(name, f"nothing listens on {address[0]}:{address[1]}")


def delivery_factory(
    *, retry_initial: float, retry_max: float, close_timeout: float
) -> Iterator[Callable[..., Any]]:
    """Yield a builder of Delivery instances with fast retries; close them afterwards.

    Shared by the ``make_delivery`` fixtures of the unit and service tests, which
    differ only in their retry timings.
    """
    from auditmw.config import AuditConfig, DeliveryOptions
    from auditmw.delivery import Delivery
    from auditmw.pipeline import Pipeline

    made: list[Delivery] = []
    lifecycle = Pipeline(AuditConfig("svc")).lifecycle

    def make(sinks: list[Any], **options: Any) -> Delivery:
        options.setdefault("max_wait_ms", 10)
        options.setdefault("retry_initial", retry_initial)
        options.setdefault("retry_max", retry_max)
        delivery = Delivery(sinks, DeliveryOptions(**options), lifecycle=lifecycle)
        made.append(delivery)
        return delivery

    yield make
    for delivery in made:
        delivery.close(close_timeout)
