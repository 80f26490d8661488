"""What the policy decided for one exchange: the audit levels and :class:`Decision`.

The rules (:mod:`.rules`) produce decisions and the policy (:mod:`.policy`) combines
them; both import them from here.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from auditmw.core.types import Processor

__all__ = [
    "DEFAULT_DECISION",
    "DEFAULT_MAX_BODY_BYTES",
    "LEVELS",
    "LEVEL_RANK",
    "Decision",
    "Level",
]

Level = Literal["none", "metadata", "request", "request_response"]
LEVELS: Final = ("none", "metadata", "request", "request_response")
DEFAULT_MAX_BODY_BYTES: Final = 8192
LEVEL_RANK: Final = {level: i for i, level in enumerate(LEVELS)}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one exchange.

    Args:
        level: the audit level.
        rule: the id of the rule that matched (``"default"`` when none did).
        action: an action override from the rule, if any.
        resource_type: a resource type override, if any.
        resource_id: a resource id template such as ``"{order_id}"``, if any.
        max_body_bytes: the cap on recorded bodies.
        headers: request headers to record (an allow-list), or ``None`` for the
            configuration's ``record_headers``.
        processors: redaction processors to run on the event, in order.

    .. versionadded:: 0.1.0
    """

    level: Level = "metadata"
    rule: str = "default"
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    headers: tuple[str, ...] | None = None
    processors: tuple[Processor, ...] = ()


DEFAULT_DECISION: Final = Decision()
