"""Translate framework settings mappings (Flask ``app.config``, Django ``settings``) into config.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from auditmw.config import AuditConfig, DeliveryOptions, Limits
from auditmw.exceptions import ConfigurationError

__all__ = ["config_from_mapping"]

_FIELDS = frozenset(f.name for f in dataclasses.fields(AuditConfig))
_VALUE_OBJECTS: dict[str, type[Any]] = {"delivery": DeliveryOptions, "limits": Limits}


def config_from_mapping(
    options: Mapping[str, Any], *, setting: str, default_service: str | None = None
) -> AuditConfig:
    """Build an :class:`~auditmw.config.AuditConfig` from keyword arguments held in a mapping.

    Nested ``delivery`` and ``limits`` may be mappings too; ``policy`` is handed to
    ``AuditConfig`` as it is (a :class:`~auditmw.policy.Policy`, a mapping or a path).

    Args:
        options: the settings mapping (adapter-only keys already removed).
        setting: the settings name used in error messages (``"AUDITMW"``).
        default_service: the service name when ``options`` has none.

    Raises:
        ConfigurationError: an unknown key, a missing service, or an invalid value.

    .. versionadded:: 0.1.0
    """
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise ConfigurationError(
            f"{setting}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys are {', '.join(sorted(_FIELDS))}",
            setting=f"{setting}.{unknown[0]}",
        )
    kwargs = dict(options)
    if "service" not in kwargs:
        if default_service is None:
            raise ConfigurationError(
                f"{setting} needs a service name, e.g. {setting} = {{'service': 'orders-api'}}",
                setting=f"{setting}.service",
            )
        kwargs["service"] = default_service
    for key, cls in _VALUE_OBJECTS.items():
        value = kwargs.get(key)
        if isinstance(value, Mapping):
            try:
                kwargs[key] = cls(**value)
            except TypeError as exc:
                raise ConfigurationError(
                    f"{setting}.{key}: {exc}", setting=f"{setting}.{key}"
                ) from exc
    return AuditConfig(**kwargs)
