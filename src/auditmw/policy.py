"""The audit policy: which requests are recorded, at which level, under which rule.

This module holds the default policy; rules, levels and redaction settings are
loaded from a policy document (DESIGN §5).  Every policy has a stable hash of its
canonical document, stamped on each event as ``policy.hash``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from auditmw.canonical import dumps

if TYPE_CHECKING:
    from auditmw.event import Exchange

__all__ = ["LEVELS", "Decision", "Policy"]

Level = Literal["none", "metadata", "request", "request_response"]
LEVELS: Final = ("none", "metadata", "request", "request_response")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one exchange.

    Args:
        level: the audit level.
        rule: the id of the rule that matched (``"default"`` when none did).
        action: an action override from the rule, if any.
        resource_type: a resource type override, if any.
        resource_id: a resource id template such as ``"{order_id}"``, if any.

    .. versionadded:: 0.1.0
    """

    level: Level = "metadata"
    rule: str = "default"
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None


DEFAULT_DECISION: Final = Decision()


class Policy:
    """An audit policy.

    Args:
        document: the policy document (validated); ``None`` is the default policy.
        id: a human identifier for this policy version.

    .. versionadded:: 0.1.0
    """

    def __init__(self, document: Mapping[str, Any] | None = None, *, id: str = "default") -> None:
        self.document: dict[str, Any] = dict(document or {})
        self.id = str(self.document.get("id", id))
        self.hash = "sha256:" + hashlib.sha256(dumps(self.document)).hexdigest()
        self.stamp: dict[str, str] = {"id": self.id, "hash": self.hash}

    def decide(self, exchange: Exchange) -> Decision:
        """Return the decision for ``exchange`` (called after the response is known)."""
        return DEFAULT_DECISION

    def capture_level(self, exchange: Exchange) -> Level:
        """Return the level decided before the response (to decide body capture)."""
        return "metadata"

    @classmethod
    def coerce(cls, value: Policy | Mapping[str, Any] | str | Any | None) -> Policy:
        """Turn a policy, mapping, path or ``None`` into a :class:`Policy`."""
        if isinstance(value, Policy):
            return value
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(value)
        from auditmw.exceptions import ConfigurationError

        raise ConfigurationError(
            f"policy: cannot load {value!r}; pass a Policy, a mapping or None", setting="policy"
        )
