"""The app configuration of :mod:`auditmw.contrib.django_app`.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AuditLogConfig"]


class AuditLogConfig(AppConfig):
    """The audit trail app: model, migration, admin, ``auditmw_verify`` and system checks.

    Its label is ``auditmw_log``, distinct from ``auditmw`` (the label of
    :class:`~auditmw.contrib._django_checks.AuditChecksConfig`), so both may be installed.

    .. versionadded:: 0.2.0
    """

    name = "auditmw.contrib.django_app"
    label = "auditmw_log"
    verbose_name = "Audit trail"
    default = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register auditmw's system checks (``manage.py check`` reports bad settings)."""
        from auditmw.contrib import _django_checks  # noqa: F401 - registers the check
