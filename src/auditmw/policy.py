"""The audit policy: which requests are recorded, at which level (public names).

The code lives in :mod:`auditmw.core.policy`; building a configuration from a policy
lives in :mod:`auditmw.config.build`. This module only hands the public names on, so
that ``auditmw.policy`` stays importable as documented; auditmw's own modules import the
homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.config.options import (
    config_from_env,
    config_from_policy,
)
from auditmw.core.decision import DEFAULT_DECISION, DEFAULT_MAX_BODY_BYTES, LEVELS, Decision, Level
from auditmw.core.documents import read_document
from auditmw.core.policy import Policy, document_keys, load_policy
from auditmw.core.policy_schema import policy_schema

__all__ = [
    "DEFAULT_DECISION",
    "DEFAULT_MAX_BODY_BYTES",
    "Decision",
    "LEVELS",
    "Level",
    "Policy",
    "config_from_env",
    "config_from_policy",
    "document_keys",
    "load_policy",
    "policy_schema",
    "read_document",
]
