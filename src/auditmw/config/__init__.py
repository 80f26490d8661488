"""Configuration: one validated :class:`AuditConfig` from code, a file, settings or env.

:mod:`.options` holds the typed configuration and its value objects, :mod:`.checks`
the type checks of live-object fields, :mod:`.build` the runtime objects built from
a validated document (sinks, resolvers, integrity), :mod:`.mapping` Django and Flask
settings, :mod:`.loader` names kept for compatibility.  Reading files and the
environment as plain data lives in :mod:`auditmw.core.documents`.

May import: the core, identity, integrity, sinks, formats.  Imported by the
pipeline, delivery, the shells and the command line, never by what it builds.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.config.options import (
    DEPLOYMENT_SECTIONS,
    AuditConfig,
    config_from_env,
    config_from_policy,
)
from auditmw.config.values import DeliveryOptions, Limits, Mode, Network, Overflow, ServiceInfo
from auditmw.exceptions import NoSinksWarning, SettingError

__all__ = [
    "AuditConfig",
    "DEPLOYMENT_SECTIONS",
    "DeliveryOptions",
    "Limits",
    "Mode",
    "Network",
    "NoSinksWarning",
    "Overflow",
    "ServiceInfo",
    "SettingError",
    "config_from_env",
    "config_from_policy",
]
