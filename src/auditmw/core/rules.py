"""Compiled policy rules and the index that keeps matching cost flat.

Rules are compiled once at load.  Each rule is filed under the literal parts of
its ``routes`` and ``paths`` (and its methods), so a request tests only the rules
that could match it: the rules with no location selector, the rules filed under
its route template, and those filed under a literal prefix of its path.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from auditmw.core.event import ANONYMOUS, outcome_for_status
from auditmw.exceptions import PolicyError

if TYPE_CHECKING:
    from auditmw.core.decision import Decision
    from auditmw.core.event import Actor, Exchange

__all__ = ["CompiledRule", "RuleIndex", "compile_glob", "parse_status"]

_ANY_METHOD: Final = "*"
FLOOR_STATUSES: Final = frozenset({401, 403})


def compile_glob(glob: str) -> re.Pattern[str]:
    """Compile a path glob: ``*`` is one segment (or part of one), ``**`` a whole subtree."""
    segments = glob.strip("/").split("/") if glob.strip("/") else []
    pattern = ""
    for i, segment in enumerate(segments):
        if segment == "**":
            # "/api/**" matches "/api" itself and everything below it.
            pattern += "(?:/.*)?" if i == len(segments) - 1 else "(?:/[^/]+)*"
            continue
        parts = [re.escape(p) for p in segment.split("*")]
        pattern += "/" + "[^/]*".join(parts)
    if glob.endswith("/") and segments:
        pattern += "/"
    return re.compile(pattern or "/")


def _any_glob(globs: list[str]) -> re.Pattern[str]:
    if len(globs) == 1:
        return compile_glob(globs[0])
    return re.compile("|".join(f"(?:{compile_glob(g).pattern})" for g in globs))


def _literal_prefix(glob: str) -> str:
    out = []
    for segment in glob.strip("/").split("/"):
        if "*" in segment or not segment:
            break
        out.append(segment)
    return "/" + "/".join(out) if out else ""


def parse_status(entries: list[int | str], path: str) -> frozenset[int]:
    """Expand status selectors (``404``, ``"5xx"``, ``"400-499"``) into a set of codes."""
    codes: set[int] = set()
    for i, entry in enumerate(entries):
        if isinstance(entry, int):
            codes.add(entry)
        elif entry.endswith("xx"):
            base = int(entry[0]) * 100
            codes.update(range(base, base + 100))
        else:
            low, high = (int(x) for x in entry.split("-"))
            if low > high:
                raise PolicyError(
                    f"policy {path}/{i}: range {entry!r} is empty; write it low-high, "
                    f"e.g. '{high}-{low}'",
                    path=f"{path}/{i}",
                    value=entry,
                )
            codes.update(range(low, high + 1))
    return frozenset(codes)


def _set(rule: dict[str, Any], key: str) -> frozenset[str] | None:
    values = rule.get(key)
    return frozenset(values) if values is not None else None


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """One rule, ready to match: ``None`` selectors match anything."""

    order: int
    id: str
    decision: Decision
    methods: frozenset[str] | None
    routes: frozenset[str] | None
    paths: re.Pattern[str] | None
    globs: tuple[str, ...]
    actors: frozenset[str] | None
    roles: frozenset[str] | None
    actor_types: frozenset[str] | None
    auth_methods: frozenset[str] | None
    status: frozenset[int] | None
    outcomes: frozenset[str] | None
    #: Whether the rule depends on the identity or the response (unknown before it).
    is_conditional: bool = False

    def __post_init__(self) -> None:
        selectors = (
            self.actors, self.roles, self.actor_types, self.auth_methods, self.status,
            self.outcomes,
        )  # fmt: skip
        object.__setattr__(self, "is_conditional", any(s is not None for s in selectors))

    @classmethod
    def build(cls, order: int, rule: dict[str, Any], decision: Decision) -> CompiledRule:
        """Compile one validated rule document."""
        paths = rule.get("paths")
        status = rule.get("status")
        return cls(
            order=order,
            id=decision.rule,
            decision=decision,
            methods=_set(rule, "methods"),
            routes=_set(rule, "routes"),
            paths=_any_glob(paths) if paths is not None else None,
            globs=tuple(paths or ()),
            actors=_set(rule, "actors"),
            roles=_set(rule, "roles"),
            actor_types=_set(rule, "actor_types"),
            auth_methods=_set(rule, "auth_methods"),
            status=parse_status(status, f"/rules/{order}/status") if status is not None else None,
            outcomes=_set(rule, "outcomes"),
        )

    def only_floor(self) -> bool:
        """Whether every request this rule can match is floor traffic (401/403 or denied)."""
        if self.status is not None and self.status <= FLOOR_STATUSES:
            return True
        return self.outcomes is not None and self.outcomes <= {"denied"}

    def matches_location(self, exchange: Exchange) -> bool:
        """Pre-response selectors: method, route template, path glob."""
        if self.methods is not None and exchange.method not in self.methods:
            return False
        if self.routes is not None and exchange.route not in self.routes:
            return False
        return self.paths is None or self.paths.fullmatch(exchange.path) is not None

    def matches(self, exchange: Exchange, actor: Actor) -> bool:
        """Every selector (ANDed); list values are ORed."""
        if not self.matches_location(exchange):
            return False
        if not self.is_conditional:
            return True
        if self.actors is not None and actor.id not in self.actors:
            return False
        if self.roles is not None and self.roles.isdisjoint(actor.roles):
            return False
        if self.actor_types is not None and actor.type not in self.actor_types:
            return False
        if self.auth_methods is not None and actor.auth.method not in self.auth_methods:
            return False
        if self.status is not None or self.outcomes is not None:
            return self._matches_response(exchange)
        return True

    def _matches_response(self, exchange: Exchange) -> bool:
        status = exchange.status
        if self.status is not None and (status is None or status not in self.status):
            return False
        if self.outcomes is not None:
            return _outcome(exchange) in self.outcomes
        return True


def _outcome(exchange: Exchange) -> str:
    if exchange.exception is not None:
        return "error"
    if exchange.aborted:
        return "aborted"
    return "error" if exchange.status is None else outcome_for_status(exchange.status)


class RuleIndex:
    """Finds the candidate rules of a request without testing every rule.

    Args:
        rules: compiled rules, in document order.

    .. versionadded:: 0.1.0
    """

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        # method -> (unlocated rules, route -> rules, path prefix -> rules)
        self._any: dict[str, list[CompiledRule]] = {}
        self._routes: dict[str, dict[str, list[CompiledRule]]] = {}
        self._prefixes: dict[str, dict[str, list[CompiledRule]]] = {}
        self._depth = 0
        methods = {m for r in rules if r.methods for m in r.methods} | {_ANY_METHOD}
        for method in methods:
            self._any[method], self._routes[method], self._prefixes[method] = [], {}, {}
        for rule in rules:
            for method in rule.methods or methods:
                self._file(method, rule)

    def _file(self, method: str, rule: CompiledRule) -> None:
        if rule.routes is not None:
            for route in rule.routes:
                self._routes[method].setdefault(route, []).append(rule)
        elif rule.paths is not None:
            prefixes = {_literal_prefix(g) for g in rule.globs}
            for prefix in prefixes:
                if not prefix:
                    self._any[method].append(rule)
                    return
            for prefix in prefixes:
                self._prefixes[method].setdefault(prefix, []).append(rule)
                self._depth = max(self._depth, prefix.count("/"))
        else:
            self._any[method].append(rule)

    def candidates(self, exchange: Exchange) -> list[CompiledRule]:
        """Return the rules that could match ``exchange``, in document order."""
        method = exchange.method if exchange.method in self._any else _ANY_METHOD
        found = list(self._any[method])
        route = exchange.route
        if route is not None:
            found.extend(self._routes[method].get(route, ()))
        prefixes = self._prefixes[method]
        if prefixes:
            path = exchange.path
            end = 0
            for _ in range(self._depth):
                end = path.find("/", end + 1)
                hits = prefixes.get(path if end < 0 else path[:end])
                if hits:
                    found.extend(hits)
                if end < 0:
                    break
        if len(found) > 1:
            # Several buckets: restore document order; a rule filed twice counts once.
            found = sorted(set(found), key=_order)
        return found

    def first(self, exchange: Exchange, actor: Actor | None) -> CompiledRule | None:
        """Return the first rule matching ``exchange`` (all selectors), if any."""
        who = actor if actor is not None else ANONYMOUS
        for rule in self.candidates(exchange):
            if rule.matches(exchange, who):
                return rule
        return None


def _order(rule: CompiledRule) -> int:
    return rule.order
