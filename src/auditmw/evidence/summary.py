"""One streaming pass over stored events, keeping only what the report and checks show.

Counters and bounded samples only: memory does not grow with the number of events,
except for the per-minute activity histogram and the actor counter, which grow with
the time span and the number of distinct actors.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from auditmw.evidence.schema import TIME, validate_event

__all__ = ["PCI_ELEMENTS", "EvidenceSummary", "REQUEST_KINDS", "WRITES"]

REQUEST_KINDS: Final = frozenset({"http", "websocket", "auth"})
WRITES: Final = frozenset({"create", "update", "delete"})
_ADMIN_ROLES: Final = frozenset({"admin", "administrator", "root", "superuser", "owner"})
#: PCI DSS v4.0 requirement 10.2.2: what each audit log entry must record, and where.
PCI_ELEMENTS: Final = (
    ("10.2.2 user identification", ("actor.id",)),
    ("10.2.2 type of event", ("action",)),
    ("10.2.2 date and time", ("time",)),
    ("10.2.2 success or failure indication", ("outcome",)),
    ("10.2.2 origination of event", ("source.ip",)),
    ("10.2.2 identity of affected data, component or resource", ("resource.type",)),
)
SAMPLE: Final = 200
_EMPTY: Final[dict[str, Any]] = {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


@dataclass(slots=True)
class EvidenceSummary:
    """What the evidence tools know about a set of stored events after one pass.

    Build it with :func:`auditmw.evidence.report.summarize` or feed events to
    :meth:`add` one at a time.

    .. versionadded:: 0.1.0
    """

    events: int = 0
    requests: int = 0
    first_time: str | None = None
    last_time: str | None = None
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    actors: Counter[str] = field(default_factory=Counter)
    per_minute: Counter[str] = field(default_factory=Counter)
    pci: list[int] = field(default_factory=lambda: [0] * len(PCI_ELEMENTS))
    verified_identity: int = 0
    denied: list[dict[str, Any]] = field(default_factory=list)
    denied_count: int = 0
    writes: list[dict[str, Any]] = field(default_factory=list)
    write_count: int = 0
    admin_writes: int = 0
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)
    invalid: list[tuple[str, list[str]]] = field(default_factory=list)
    invalid_count: int = 0

    def add(self, event: dict[str, Any]) -> None:
        """Account for one stored event (checkpoint records excluded by the caller).

        Args:
            event: any JSON object read from the log: values are type-checked.
        """
        self.events += 1
        kind = str(event.get("kind", "?"))
        self.kinds[kind] += 1
        stamp = event.get("time")
        # Times are attacker-controlled too: only well-formed ones are binned and compared.
        if isinstance(stamp, str) and TIME.match(stamp) and stamp.endswith("Z"):
            if self.first_time is None or stamp < self.first_time:
                self.first_time = stamp
            if self.last_time is None or stamp > self.last_time:
                self.last_time = stamp
            self.per_minute[stamp[:16]] += 1
        errors = validate_event(event)
        if errors:
            self.invalid_count += 1
            if len(self.invalid) < SAMPLE:
                self.invalid.append((str(event.get("event_id", "?")), errors))
        if kind in REQUEST_KINDS:
            self._request(event)
        elif kind.startswith("audit."):
            self._lifecycle(event, kind)

    def _request(self, event: dict[str, Any]) -> None:
        # Direct lookups: this runs once per stored request, millions of times.
        self.requests += 1
        outcome = event.get("outcome")
        self.outcomes[str(outcome)] += 1
        actor = _mapping(event.get("actor"))
        self.actors[str(actor.get("id"))] += 1
        if _mapping(actor.get("auth")).get("verified") is True:
            self.verified_identity += 1
        present = (
            actor.get("id"),
            event.get("action"),
            event.get("time"),
            outcome,
            _mapping(event.get("source")).get("ip"),
            _mapping(event.get("resource")).get("type"),
        )
        for index, value in enumerate(present):
            if value is not None and value != "":
                self.pci[index] += 1
        if outcome in ("denied", "failure", "error"):
            self.denied_count += 1
            if len(self.denied) < SAMPLE:
                self.denied.append(event)
        operation = event.get("operation")
        if isinstance(operation, str) and operation in WRITES:
            self.write_count += 1
            roles = actor.get("roles")
            admin = isinstance(roles, list) and bool(_ADMIN_ROLES.intersection(map(str, roles)))
            route = _mapping(event.get("request")).get("route")
            admin = admin or (isinstance(route, str) and route.startswith("/admin"))
            self.admin_writes += admin
            if len(self.writes) < SAMPLE:
                self.writes.append({**event, "_admin": admin})

    def _lifecycle(self, event: dict[str, Any], kind: str) -> None:
        if kind == "audit.policy_loaded":
            details = event.get("details")
            if isinstance(details, dict):
                self.policies[str(details.get("policy_hash"))] = str(details.get("policy_id"))
        if len(self.lifecycle) < SAMPLE:
            self.lifecycle.append(event)

    @property
    def traceability(self) -> float:
        """The share of request events whose actor identity was verified (1.0 if none)."""
        return self.verified_identity / self.requests if self.requests else 1.0

    def pci_coverage(self) -> list[tuple[str, int, float]]:
        """Return ``(element, events recording it, share of request events)``."""
        total = self.requests or 1
        return [
            (name, count, count / total)
            for (name, _), count in zip(PCI_ELEMENTS, self.pci, strict=True)
        ]
