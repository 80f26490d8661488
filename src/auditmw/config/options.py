"""Typed configuration: :class:`AuditConfig` and its value objects.

Everything is validated and precomputed in ``__post_init__``; a bad value raises
:class:`~auditmw.exceptions.ConfigurationError` naming the setting and the fix.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from auditmw.config.checks import check_live_fields
from auditmw.exceptions import ConfigurationError, NoSinksWarning, SettingError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from auditmw.core.policy import Policy
    from auditmw.core.protocols import AnySink, IdentityHook, Resolver
    from auditmw.core.records import EncoderFactory
    from auditmw.core.types import Processor

__all__ = [
    "AuditConfig",
    "DeliveryOptions",
    "Limits",
    "NoSinksWarning",
    "ServiceInfo",
    "SettingError",
]

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


@dataclass(frozen=True)
class AuditConfig:
    """The whole audit set-up of one application.

    Args:
        service: service name or :class:`ServiceInfo`.
        sinks: where events go; defaults to none (events are still built and can be
            captured with :func:`auditmw.testing.capture_events`).
        policy: a :class:`~auditmw.policy.Policy`, a policy mapping, or a path to a
            policy file; ``None`` uses the default policy (everything at ``metadata``).
        resolvers: identity resolvers, tried in order (see :mod:`auditmw.identity`).
        identity: a hook ``callable(request) -> Actor | None`` tried after ``resolvers``.
        use_framework_user: read the framework's authenticated user after the app ran.
        trusted_proxies: IPs or CIDRs of proxies whose ``X-Forwarded-For``/``Forwarded``
            headers are believed; from any other peer they are recorded, not trusted.
        audit_id_header: response header carrying the event id; ``None`` to disable.
        request_id_header: inbound header whose valid value becomes ``request.id``.
        record_headers: request header names recorded in ``request.headers``
            (secret headers are never recorded, even if listed).
        processors: callables run on each event after it is built.
        delivery: :class:`DeliveryOptions`.
        integrity: an encoder factory (``auditmw.integrity.IntegrityOptions``) that chains
            and signs each sink's stream; ``None`` writes plain events.
        limits: :class:`Limits` on recorded strings.

    Raises:
        ConfigurationError: a value is invalid.

    .. versionadded:: 0.1.0
    """

    service: str | ServiceInfo
    sinks: Sequence[AnySink] = ()
    policy: Policy | Mapping[str, Any] | str | Path | None = None
    resolvers: Sequence[Resolver] = ()
    identity: IdentityHook | None = None
    use_framework_user: bool = True
    trusted_proxies: Sequence[str] = ()
    audit_id_header: str | None = "Audit-Id"
    request_id_header: str = "X-Request-ID"
    record_headers: Sequence[str] = ()
    processors: Sequence[Processor] = ()
    delivery: DeliveryOptions = field(default_factory=DeliveryOptions)
    integrity: EncoderFactory | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if isinstance(self.service, str):
            object.__setattr__(self, "service", ServiceInfo(self.service))
        elif not isinstance(self.service, ServiceInfo):
            raise SettingError(
                f"service: got {self.service!r}; expected a name such as 'orders-api' or "
                "ServiceInfo(...)",
                path="/service",
                value=self.service,
            )
        check_live_fields(self)
        if _SINK_OVERRIDE:  # auditmw.testing.audit_trail() is active: never write the real log
            object.__setattr__(self, "sinks", (_SINK_OVERRIDE[-1],))
        self.trusted_networks()  # validate early
        if self.audit_id_header is not None and not self.audit_id_header.isascii():
            raise ConfigurationError("audit_id_header must be ASCII", setting="audit_id_header")
        object.__setattr__(self, "policy", _coerce_policy(self.policy))

    @classmethod
    def from_policy(cls, source: Mapping[str, Any] | str | Path, **overrides: Any) -> AuditConfig:
        """Build the configuration from one policy document (a mapping or a file path).

        See :func:`auditmw.policy.config_from_policy`; ``overrides`` win over the document.

        Raises:
            PolicyError: the document is invalid.

        .. versionadded:: 0.1.0
        """
        from auditmw.config.build import config_from_policy

        return config_from_policy(source, **overrides)

    @classmethod
    def from_env(cls, **overrides: Any) -> AuditConfig:
        """Build the configuration from ``AUDITMW_POLICY`` and ``AUDITMW_<KEY>__<KEY>`` variables.

        See :func:`auditmw.core.documents.document_from_env` for the convention.

        Raises:
            ConfigurationError: nothing is configured, or a file is unreadable.
            PolicyError: the document is invalid.

        .. versionadded:: 0.1.0
        """
        from auditmw.config.build import config_from_env

        return config_from_env(**overrides)

    @classmethod
    def from_mapping(
        cls,
        options: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> AuditConfig:
        """Build the configuration from plain data, live objects, or a mix of both.

        ``options`` is the document of ``docs/configuration.md`` (the same as a
        TOML/YAML/JSON file), and may also hold any ``AuditConfig`` argument (a
        ``FileSink(...)`` in ``sinks``, a ``policy`` file path whose sections are
        merged in, …).  This is what Django's ``settings.AUDITMW`` and Flask's
        ``app.config["AUDITMW"]`` go through.

        Args:
            options: the settings mapping.
            environ: where ``*_env`` secret references are read (default ``os.environ``).
            **overrides: ``AuditConfig`` arguments that win over ``options``.

        Raises:
            SettingError: a key is unknown or a value invalid; ``.path`` names it.

        .. versionadded:: 0.2.0
        """
        from auditmw.config.mapping import config_from_mapping

        return config_from_mapping(options, environ=environ, **overrides)

    @property
    def service_info(self) -> ServiceInfo:
        """The service as a :class:`ServiceInfo`."""
        assert isinstance(self.service, ServiceInfo)  # normalised in __post_init__
        return self.service

    def trusted_networks(self) -> tuple[Network, ...]:
        """Parse ``trusted_proxies`` into networks.

        Raises:
            ConfigurationError: an entry is not an IP address or CIDR.
        """
        networks = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted_proxies: {entry!r} is not an IP address or CIDR "
                    "(e.g. '10.0.0.0/8' or '127.0.0.1')",
                    setting="trusted_proxies",
                ) from exc
        return tuple(networks)


#: Sinks standing in for every configuration's own, pushed by ``auditmw.testing.audit_trail``.
_SINK_OVERRIDE: list[AnySink] = []

#: Document sections that configure the deployment, not the policy: ``AuditConfig(policy=...)``
#: cannot apply them (use ``AuditConfig.from_policy`` or ``from_mapping``).
DEPLOYMENT_SECTIONS: Final = ("sinks", "service", "identity", "integrity", "delivery", "retention")


def _coerce_policy(value: object) -> Policy:
    from auditmw.core.policy import Policy

    policy = Policy.coerce(value)
    if isinstance(value, Policy):
        return policy
    found = [key for key in DEPLOYMENT_SECTIONS if key in policy.document]
    if found:
        where = f"the file {str(value)!r}" if not isinstance(value, Mapping) else "the mapping"
        raise SettingError(
            f"policy: {where} has the section(s) {', '.join(found)}, which "
            "AuditConfig(policy=...) does not apply (they would be ignored); build the whole "
            "configuration with AuditConfig.from_policy(path) or AuditConfig.from_mapping"
            "({'policy': path, ...}), or move those sections out of the policy",
            path="/policy",
            value=found,
        )
    return policy
