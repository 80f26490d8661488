"""The values a query filter may name, so that a typo is an error and not an empty answer.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Final, get_args

from auditmw.core.event import LIFECYCLE_KINDS, Outcome, Severity
from auditmw.evidence.schema import KINDS as SCHEMA_KINDS
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.layout import CHECKPOINT_KIND

__all__ = [
    "KINDS",
    "OPERATIONS",
    "OUTCOMES",
    "SEVERITIES",
    "check_choice",
    "check_kind",
    "check_status",
]

OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
OPERATIONS: Final = ("create", "read", "update", "delete", "login", "logout", "other")
#: Every kind auditmw writes (the schema's, the lifecycle records and checkpoints).
KINDS: Final = tuple(sorted(SCHEMA_KINDS | LIFECYCLE_KINDS | {CHECKPOINT_KIND}))
_STATUS = re.compile(r"^(?:[1-5]\d\d|[1-5][xX][xX])$")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``.

    Raises:
        ConfigurationError: it is not; the message lists the allowed values.
    """
    if value not in allowed:
        raise ConfigurationError(
            f"{name} must be one of {', '.join(allowed)}; got {value!r}", setting=name
        )
    return value


def check_status(name: str, value: str) -> str:
    """Return ``value`` if it is a status code 100-599 or a class ``1xx``-``5xx``.

    Raises:
        ConfigurationError: it is neither.
    """
    if not _STATUS.match(value):
        raise ConfigurationError(
            f"{name} must be a status code from 100 to 599 or a class such as 4xx; got {value!r}",
            setting=name,
        )
    return value


def check_kind(name: str, pattern: str) -> str:
    """Return ``pattern`` if it matches at least one kind auditmw writes.

    Raises:
        ConfigurationError: it matches none; the message lists the kinds.
    """
    if not any(fnmatchcase(kind, pattern) for kind in KINDS):
        raise ConfigurationError(
            f"{name} {pattern!r} matches no event kind; kinds are {', '.join(KINDS)} "
            "(shell patterns such as audit.* allowed)",
            setting=name,
        )
    return pattern
