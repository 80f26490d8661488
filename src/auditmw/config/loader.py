"""Compatibility names for the configuration loaders (moved in 0.2.0).

Reading lives in :mod:`auditmw.core.documents`, building in :mod:`auditmw.config.build`
and :mod:`auditmw.config.options`; import from there (or from :mod:`auditmw.policy`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.config.build import (
    INTEGRITY_CLASS,
    RESOLVER_CLASSES,
    RETENTION_KWARGS,
    SINK_CLASSES,
    identity_options,
    lookup,
)
from auditmw.config.options import config_from_env, config_from_policy
from auditmw.core.documents import read_document
from auditmw.core.policy import load_policy

__all__ = [
    "INTEGRITY_CLASS",
    "RESOLVER_CLASSES",
    "RETENTION_KWARGS",
    "SINK_CLASSES",
    "config_from_env",
    "config_from_policy",
    "identity_options",
    "load_policy",
    "lookup",
    "read_document",
]
