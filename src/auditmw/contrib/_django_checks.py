"""Django system checks (``manage.py check``) for ``settings.AUDITMW``.

The check builds the configuration exactly as the middleware will (sinks
constructed without connecting, keys loaded, resolvers built), so a setting that
would fail at start-up, or at the first request, is reported by ``manage.py check``
with the key path.  Registered when :mod:`auditmw.contrib.django` is imported, and
at start-up when ``"auditmw.contrib.django.AuditChecksConfig"`` or the audit trail
app ``"auditmw.contrib.django_app"`` (label ``auditmw_log``, which registers these
checks in its ``ready()``) is in ``INSTALLED_APPS``; both may be listed.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from auditmw.config.options import AuditConfig, NoSinksWarning
from auditmw.exceptions import ConfigurationError, PolicyError

__all__ = ["AuditChecksConfig", "check_settings"]

_ADAPTER_KEYS = ("enabled", "config", "pseudonym_key", "record_usernames")


@checks.register("auditmw")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Build ``settings.AUDITMW`` and report what would fail (``auditmw.E001``) or warn.

    .. versionadded:: 0.2.0
    """
    options = getattr(settings, "AUDITMW", None)
    if options is None and not _middleware_used():
        return []
    if isinstance(options, Mapping):
        if not options.get("enabled", True) or isinstance(options.get("config"), AuditConfig):
            return []
        options = {k: v for k, v in options.items() if k not in _ADAPTER_KEYS}
    from auditmw.contrib._settings import config_from_mapping

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoSinksWarning)
        try:
            config_from_mapping(options, setting="AUDITMW")  # type: ignore[arg-type]
        except (ConfigurationError, PolicyError) as exc:
            return [_error(exc)]
    return [
        checks.Warning(str(w.message), id="auditmw.W001", obj="settings.AUDITMW")
        for w in caught
        if issubclass(w.category, NoSinksWarning)
    ]


def _error(exc: Exception) -> checks.CheckMessage:
    return checks.Error(
        str(exc),
        hint="See docs/configuration.md for every key and its allowed values.",
        obj="settings.AUDITMW",
        id="auditmw.E001",
    )


def _middleware_used() -> bool:
    return any("auditmw" in str(m) for m in getattr(settings, "MIDDLEWARE", ()) or ())


class AuditChecksConfig(AppConfig):
    """Add to ``INSTALLED_APPS`` so that ``manage.py check`` always runs auditmw's checks.

    .. versionadded:: 0.2.0
    """

    name = "auditmw.contrib"
    label = "auditmw"
    verbose_name = "auditmw"
