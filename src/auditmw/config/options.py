"""Typed configuration: :class:`AuditConfig`, and the functions that build one.

Everything is validated and precomputed in ``__post_init__``; a bad value raises
:class:`~auditmw.exceptions.ConfigurationError` naming the setting and the fix.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from auditmw.config.build import arguments_from_document
from auditmw.config.checks import check_live_fields
from auditmw.config.mapping import config_from_mapping
from auditmw.config.values import DeliveryOptions, Limits, Network, ServiceInfo
from auditmw.core.documents import Source, document_from_env
from auditmw.core.policy import Policy, load_policy
from auditmw.exceptions import ConfigurationError, NoSinksWarning, SettingError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from auditmw.core.protocols import AnySink, IdentityHook, Resolver
    from auditmw.core.records import EncoderFactory
    from auditmw.core.types import Processor

__all__ = [
    "DEPLOYMENT_SECTIONS",
    "AuditConfig",
    "config_from_env",
    "config_from_policy",
    "DeliveryOptions",
    "Limits",
    "NoSinksWarning",
    "ServiceInfo",
    "SettingError",
]


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
        return config_from_mapping(options, make=cls, environ=environ, **overrides)

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


def config_from_policy(
    source: Source,
    *,
    keys: Mapping[str, bytes] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AuditConfig:
    """Build the whole :class:`AuditConfig` from one policy document.

    Args:
        source: a mapping or the path of a TOML, YAML or JSON file.
        keys: HMAC redaction keys by key id.
        environ: where keys and ``*_env`` secret references are read.  ``None`` reads
            ``os.environ`` for ``*_env`` references only (redaction keys need it explicitly).
        **overrides: :class:`AuditConfig` arguments that win over the document
            (``sinks=[...]`` in tests).

    Raises:
        PolicyError: the document is invalid or a section cannot be built.

    .. versionadded:: 0.1.0
    """
    policy = load_policy(source, keys=keys, environ=environ)
    return AuditConfig(
        **arguments_from_document(policy.document, policy=policy, environ=environ, **overrides)
    )


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> AuditConfig:
    """Build the configuration from ``AUDITMW_POLICY`` and ``AUDITMW_*`` overrides.

    The convention is described in :mod:`auditmw.core.documents` and
    ``docs/configuration.md``.

    Args:
        environ: the environment (default ``os.environ``); also supplies secrets.
        **overrides: :class:`AuditConfig` arguments that win.

    Raises:
        ConfigurationError: nothing is configured, or a file is unreadable.
        PolicyError: the document is invalid.

    .. versionadded:: 0.1.0
    """
    env = os.environ if environ is None else environ
    return AuditConfig(**arguments_from_document(document_from_env(env), environ=env, **overrides))
