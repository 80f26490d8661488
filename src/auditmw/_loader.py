"""Compatibility names for the configuration loaders (moved in 0.2.0).

Reading lives in :mod:`auditmw._config_sources`, building in
:mod:`auditmw._config_build`; import from there (or from :mod:`auditmw.policy`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw._config_build import (
    INTEGRITY_CLASS,
    RESOLVER_CLASSES,
    RETENTION_KWARGS,
    SINK_CLASSES,
    config_from_env,
    config_from_policy,
    identity_options,
    lookup,
)
from auditmw._config_sources import read_document
from auditmw.policy import load_policy

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
