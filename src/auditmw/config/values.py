"""The value objects of a configuration: the service, delivery options and limits.

Each validates itself in ``__post_init__``; a bad value raises
:class:`~auditmw.exceptions.ConfigurationError` naming the setting and the fix.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from auditmw.exceptions import ConfigurationError, SettingError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DeliveryOptions", "Limits", "Mode", "Network", "Overflow", "ServiceInfo"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Overflow = Literal["block", "drop_and_record"]
Mode = Literal["async", "durable"]


def _positive(value: float, setting: str, kind: type | tuple[type, ...] = (int, float)) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "an integer" if kind is int else "a number"
        raise SettingError(
            f"{setting}: got {value!r} ({type(value).__name__}); expected {wanted} > 0",
            path="/" + setting.replace(".", "/"),
            value=value,
        )
    if value <= 0:
        raise ConfigurationError(f"{setting} must be > 0, got {value!r}", setting=setting)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """Identifies the audited service in every event.

    Args:
        name: the service name (``orders-api``).
        version: the deployed version.
        environment: ``prod``, ``staging``, …

    .. versionadded:: 0.1.0
    """

    name: str
    version: str | None = None
    environment: str | None = None

    def __post_init__(self) -> None:
        for key in ("version", "environment"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise SettingError(
                    f"service.{key}: got {value!r}; expected a string",
                    path=f"/service/{key}",
                    value=value,
                )
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(
                "service name must be a non-empty string, e.g. AuditConfig(service='orders-api')",
                setting="service",
            )


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How events travel from the request to the sinks (DESIGN §7).

    Args:
        max_queue: events buffered in memory before the overflow policy applies,
            and the bound of each failing sink's in-memory backlog.  A held event
            takes about 3.5 KiB (``python -m benchmarks.bench_flat``), so the default
            10 000 is about 35 MiB per failing sink; ``spool_dir`` moves the backlog
            to disk instead.
        overflow: ``"block"`` waits up to ``block_timeout`` for space, then drops and
            records; ``"drop_and_record"`` drops at once.  Either way a chained
            ``audit.events_dropped`` event records the count: never a silent drop.
        block_timeout: seconds a request may wait for buffer space under ``"block"``.
        max_batch: events written per sink call.
        max_wait_ms: longest time an event waits in the buffer before being written.
        shutdown_timeout: seconds ``close()`` waits for the buffer to drain.
        mode: ``"async"`` (the request never waits for a sink) or ``"durable"`` (the
            response is held until every durable sink stored the event; a sink may
            override this with its own ``delivery_mode`` attribute).
        durable_timeout: seconds a durable request waits for its commit before it
            fails closed (503, or an aborted connection once the response started).
        spool_dir: directory of the on-disk spool used while a sink is down;
            ``None`` keeps the backlog in memory only (bounded by ``max_queue``).
        spool_max_bytes: size cap of each sink stream's spool file.
        retry_initial: first retry delay in seconds; doubles per failure, with jitter.
        retry_max: longest retry delay in seconds.

    .. versionadded:: 0.1.0
    """

    max_queue: int = 10_000
    overflow: Overflow = "block"
    block_timeout: float = 1.0
    max_batch: int = 512
    max_wait_ms: int = 50
    shutdown_timeout: float = 5.0
    mode: Mode = "async"
    durable_timeout: float = 5.0
    spool_dir: str | Path | None = None
    spool_max_bytes: int = 256 * 1024 * 1024
    retry_initial: float = 0.1
    retry_max: float = 30.0

    def __post_init__(self) -> None:
        if self.overflow not in ("block", "drop_and_record"):
            raise ConfigurationError(
                f"delivery.overflow must be 'block' or 'drop_and_record', got {self.overflow!r}",
                setting="delivery.overflow",
            )
        if self.mode not in ("async", "durable"):
            raise ConfigurationError(
                f"delivery.mode must be 'async' or 'durable', got {self.mode!r}",
                setting="delivery.mode",
            )
        for name in (
            "max_queue",
            "block_timeout",
            "max_batch",
            "max_wait_ms",
            "shutdown_timeout",
            "durable_timeout",
            "spool_max_bytes",
            "retry_initial",
            "retry_max",
        ):
            kind = int if name in _INTEGER_FIELDS else (int, float)
            _positive(getattr(self, name), f"delivery.{name}", kind)
        if self.spool_dir is not None and not isinstance(self.spool_dir, str | os.PathLike):
            raise SettingError(
                f"delivery.spool_dir: got {self.spool_dir!r}; expected a directory path",
                path="/delivery/spool_dir",
                value=self.spool_dir,
            )


_INTEGER_FIELDS: Final = frozenset({"max_queue", "max_batch", "max_wait_ms", "spool_max_bytes"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on attacker-controlled strings; longer values are cut and listed in ``truncated``.

    .. versionadded:: 0.1.0
    """

    path: int = 2048
    query: int = 2048
    header: int = 1024
    user_agent: int = 512
    request_id: int = 128

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            _positive(getattr(self, item.name), f"limits.{item.name}", int)
