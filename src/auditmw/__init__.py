"""auditmw: audit-ready access logs for ASGI and WSGI applications.

Add one middleware and every request produces one canonical, structured audit
event (who did what to which resource, with what result, from where), delivered
off the request path to pluggable sinks.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

__version__ = "0.1.0"

from auditmw.auditor import Auditor
from auditmw.config.options import AuditConfig, config_from_policy
from auditmw.config.values import DeliveryOptions, Limits, ServiceInfo
from auditmw.core.context import annotate, audited
from auditmw.core.event import Actor, AuthInfo, Exchange
from auditmw.core.policy import Policy, load_policy
from auditmw.exceptions import (
    AuditError,
    ConfigurationError,
    DropEvent,
    MissingDependencyError,
    PolicyError,
    SinkError,
)
from auditmw.http.asgi import AuditMiddleware
from auditmw.http.wsgi import AuditWSGIMiddleware
from auditmw.integrity.options import IntegrityOptions
from auditmw.logs import current_audit_id

__all__ = [
    "Actor",
    "AuditConfig",
    "AuditError",
    "AuditMiddleware",
    "AuditWSGIMiddleware",
    "Auditor",
    "AuthInfo",
    "ConfigurationError",
    "DeliveryOptions",
    "DropEvent",
    "Exchange",
    "IntegrityOptions",
    "Limits",
    "MissingDependencyError",
    "Policy",
    "PolicyError",
    "ServiceInfo",
    "SinkError",
    "__version__",
    "annotate",
    "audited",
    "config_from_policy",
    "current_audit_id",
    "load_policy",
]
