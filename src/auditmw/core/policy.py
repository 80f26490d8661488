"""The audit policy: which requests are recorded, at which level, under which rule.

A policy document (DESIGN §5) is validated against the published JSON Schema, its
rules compiled and indexed once, and its canonical form hashed; the hash is
stamped on each event as ``policy.hash``.  Rules follow Kubernetes audit policy
semantics: ordered, first match wins, selectors AND together, list values OR.

Trust: the policy decides what is *recorded*, never what the app does.  A floor no
rule can lower keeps authentication failures, 401/403 denials and auditmw's own
lifecycle events: a rule that could only match such traffic at level ``none`` is
rejected at load, and the pipeline re-checks the floor at runtime.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from auditmw.core.canonical import dumps
from auditmw.core.decision import (
    DEFAULT_MAX_BODY_BYTES,
    LEVEL_RANK,
    Decision,
    Level,
)
from auditmw.core.documents import Source, read_document
from auditmw.core.policy_schema import validate_document
from auditmw.core.processors import (
    DETECTORS,
    SECRET_HEADERS,
    ClientIPRedactor,
    FieldRule,
    Pseudonymizer,
    Redactor,
)
from auditmw.core.rules import CompiledRule, RuleIndex
from auditmw.exceptions import PolicyError

if TYPE_CHECKING:
    from auditmw.core.event import Actor, Exchange
    from auditmw.core.types import Processor

__all__ = ["Policy", "document_keys", "load_policy"]


class Policy:
    """An audit policy, compiled from a validated document.

    Args:
        document: the policy document; ``None`` or ``{}`` is the default policy
            (everything at ``metadata``).
        id: the policy id when the document has none.
        keys: HMAC redaction keys by key id, needed when the document uses the
            ``hmac`` action or ``client_ip = "hmac"``.

    Raises:
        PolicyError: the document is invalid; ``.path`` names the bad key.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        *,
        id: str = "default",
        keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self.document: dict[str, Any] = dict(document or {})
        validate_document(self.document)
        doc = self.document
        self.id = str(doc.get("id", id))
        try:
            # The service is stamped on every event on its own; leaving it out of the hash
            # gives one policy the same hash whichever service name a source supplies.
            canonical = dumps({k: v for k, v in doc.items() if k != "service"})
        except TypeError as exc:
            raise PolicyError(
                f"policy: the document must hold only JSON data (strings, numbers, booleans, "
                f"lists, tables), so that it can be hashed and reviewed: {exc}"
            ) from exc
        self.hash = "sha256:" + hashlib.sha256(canonical).hexdigest()
        self.stamp: dict[str, str] = {"id": self.id, "hash": self.hash}
        self.default_level: Level = doc.get("default_level", "metadata")
        self.max_body_bytes: int = doc.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        redaction = doc.get("redaction", {})
        self._hasher = _hasher(redaction, keys or {})
        self._default_rule = _field_rule(redaction, redaction, self._hasher, "/redaction")
        self._secret_headers = frozenset(h.lower() for h in redaction.get("headers", ()))
        base = self._processors(redaction, [], "")
        self.default_decision = Decision(
            level=self.default_level,
            max_body_bytes=self.max_body_bytes,
            headers=self._headers(doc.get("headers")),
            processors=base,
        )
        self.rules = tuple(
            CompiledRule.build(i, rule, self._decision(i, rule, redaction, base))
            for i, rule in enumerate(doc.get("rules", ()))
        )
        _check_ids(self.rules)
        for rule in self.rules:
            if rule.decision.level == "none" and rule.only_floor():
                raise PolicyError(
                    f"policy /rules/{rule.order}/level: rule {rule.id!r} sets level 'none' on "
                    "traffic that is always recorded (401/403 denials, authentication "
                    "failures); remove the rule or choose 'metadata' or higher",
                    path=f"/rules/{rule.order}/level",
                    value="none",
                )
        self.index = RuleIndex(self.rules)
        self._route_bound: tuple[Level, int] = ("none", 0)
        for rule in self.rules:
            if rule.routes is not None:
                self._route_bound = _higher(*self._route_bound, rule.decision)
        levels = [self.default_level, *(r.decision.level for r in self.rules)]
        #: Whether any rule may capture bodies (shells skip capture entirely otherwise).
        self.captures_bodies = any(LEVEL_RANK[lvl] >= LEVEL_RANK["request"] for lvl in levels)

    def _headers(self, names: list[str] | None) -> tuple[str, ...] | None:
        if names is None:
            return None
        hidden = SECRET_HEADERS | self._secret_headers
        return tuple(dict.fromkeys(n.lower() for n in names if n.lower() not in hidden))

    def _processors(
        self, redaction: dict[str, Any], extra: list[Any], path: str
    ) -> tuple[Processor, ...]:
        entries = [
            _entry(f, redaction, self._hasher, f"/redaction/fields/{i}")
            for i, f in enumerate(redaction.get("fields", ()))
        ]
        entries += [_entry(f, redaction, self._hasher, f"{path}/{i}") for i, f in enumerate(extra)]
        redactor = Redactor(
            entries,
            detectors=redaction.get("detectors", DETECTORS),
            default=self._default_rule,
            query=redaction.get("query", ()),
            headers=self._secret_headers,
        )
        processors: list[Processor] = [redactor]
        mode = redaction.get("client_ip", "keep")
        if mode != "keep":
            processors.append(ClientIPRedactor(mode, self._hasher))
        return tuple(processors)

    def _decision(
        self, i: int, rule: dict[str, Any], redaction: dict[str, Any], base: tuple[Processor, ...]
    ) -> Decision:
        resource = rule.get("resource", {})
        headers = rule.get("headers")
        return Decision(
            level=rule["level"],
            rule=rule.get("id", f"rules[{i}]"),
            action=rule.get("action"),
            resource_type=resource.get("type"),
            resource_id=resource.get("id"),
            max_body_bytes=rule.get("max_body_bytes", self.max_body_bytes),
            headers=(
                self._headers(headers) if headers is not None else self.default_decision.headers
            ),
            processors=(
                self._processors(redaction, rule["redact"], f"/rules/{i}/redact")
                if "redact" in rule
                else base
            ),
        )

    def decide(self, exchange: Exchange, actor: Actor | None = None) -> Decision:
        """Return the decision for ``exchange``, once its response and actor are known.

        Args:
            exchange: the finished exchange.
            actor: the resolved actor (``None`` is treated as anonymous).

        .. versionadded:: 0.1.0
        """
        rule = self.index.first(exchange, actor)
        return rule.decision if rule is not None else self.default_decision

    def body_capture(self, exchange: Exchange) -> tuple[Level, int]:
        """Return the highest level any rule may reach for ``exchange``, and its body cap.

        Only pre-response selectors (method, route, path) are known, so rules with
        identity or response selectors count as possible matches; the first rule
        without them ends the search.  While the route is unknown, every rule that
        selects routes counts too.  The final :meth:`decide` may pick a lower level.

        Args:
            exchange: the request, before its response.

        .. versionadded:: 0.1.0
        """
        level: Level = "none"
        limit = 0
        if exchange.route is None:
            # The route is not known yet (read before routing, or a shell without
            # routes): any rule selecting routes may still match once it is.
            level, limit = self._route_bound
        for rule in self.index.candidates(exchange):
            if not rule.matches_location(exchange):
                continue
            level, limit = _higher(level, limit, rule.decision)
            if not rule.is_conditional:
                return level, limit
        return _higher(level, limit, self.default_decision)

    def capture_level(self, exchange: Exchange) -> Level:
        """Return the level decided before the response (to decide body capture).

        Args:
            exchange: the request, before its response (method, route and path known).

        .. versionadded:: 0.1.0
        """
        return self.body_capture(exchange)[0]

    @classmethod
    def coerce(cls, value: object) -> Policy:
        """Turn a policy, mapping, file path or ``None`` into a :class:`Policy`.

        Args:
            value: what ``AuditConfig(policy=...)`` was given.

        Raises:
            PolicyError: the document is invalid.
            ConfigurationError: the value is of another type or the file is unreadable.

        .. versionadded:: 0.1.0
        """
        if isinstance(value, Policy):
            return value
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(value)
        if isinstance(value, str | os.PathLike):
            return load_policy(value)
        from auditmw.exceptions import ConfigurationError

        raise ConfigurationError(
            f"policy: cannot load {type(value).__name__}; pass a Policy, a mapping, a path or None",
            setting="policy",
        )

    def __repr__(self) -> str:
        return f"Policy(id={self.id!r}, hash={self.hash!r}, rules={len(self.rules)})"


def document_keys(
    document: Mapping[str, Any],
    keys: Mapping[str, bytes] | None,
    environ: Mapping[str, str] | None,
) -> dict[str, bytes]:
    """Return ``keys`` plus the redaction key named by ``redaction.hmac_key_env``, if set.

    .. versionadded:: 0.2.0
    """
    found = dict(keys or {})
    redaction = document.get("redaction")
    if not isinstance(redaction, Mapping) or environ is None:
        return found
    kid = redaction.get("hmac_key_id")
    env = redaction.get("hmac_key_env", "AUDITMW_REDACTION_KEY")
    if isinstance(kid, str) and kid not in found and isinstance(env, str) and env in environ:
        found[kid] = environ[env].encode("utf-8")
    return found


def load_policy(
    source: Source,
    *,
    keys: Mapping[str, bytes] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Policy:
    """Read, validate and compile a policy document.

    Args:
        source: a mapping or the path of a TOML, YAML or JSON file.
        keys: HMAC redaction keys by key id.
        environ: where to read the key named by ``redaction.hmac_key_env`` (pass
            ``os.environ`` explicitly; nothing is read from the environment otherwise).

    Raises:
        PolicyError: the document is invalid.
        ConfigurationError: the file cannot be read.

    .. versionadded:: 0.1.0
    """
    document = read_document(source)
    return Policy(document, keys=document_keys(document, keys, environ))


_RESERVED_IDS: Final = frozenset({"default", "lifecycle"})


def _check_ids(rules: tuple[CompiledRule, ...]) -> None:
    seen: dict[str, int] = {}
    for rule in rules:
        path = f"/rules/{rule.order}/id"
        if rule.id in _RESERVED_IDS:
            raise PolicyError(
                f"policy {path}: {rule.id!r} is reserved (stamped when no rule matches, or on "
                "auditmw's own events); choose another id",
                path=path,
                value=rule.id,
            )
        if rule.id in seen:
            raise PolicyError(
                f"policy {path}: duplicate rule id {rule.id!r} (also /rules/{seen[rule.id]}); "
                "each event names its rule, so ids must be unique",
                path=path,
                value=rule.id,
            )
        seen[rule.id] = rule.order


def _higher(level: Level, limit: int, decision: Decision) -> tuple[Level, int]:
    if LEVEL_RANK[decision.level] > LEVEL_RANK[level]:
        level = decision.level
    if LEVEL_RANK[decision.level] >= LEVEL_RANK["request"]:
        limit = max(limit, decision.max_body_bytes)
    return level, limit


def _hasher(redaction: dict[str, Any], keys: Mapping[str, bytes]) -> Pseudonymizer | None:
    kid = redaction.get("hmac_key_id")
    if kid is None:
        return None
    key = keys.get(kid)
    if key is None:
        env = redaction.get("hmac_key_env", "AUDITMW_REDACTION_KEY")
        raise PolicyError(
            f"policy /redaction/hmac_key_id: no key for key id {kid!r}; set {env} "
            f"(read by load_policy(..., environ=os.environ)) or pass keys={{{kid!r}: b'...'}}",
            path="/redaction/hmac_key_id",
            value=kid,
        )
    try:
        return Pseudonymizer(kid, key)
    except ValueError as exc:
        raise PolicyError(
            f"policy /redaction/hmac_key_id: {exc}", path="/redaction/hmac_key_id", value=kid
        ) from exc


def _field_rule(
    entry: Mapping[str, Any], redaction: Mapping[str, Any], hasher: Pseudonymizer | None, path: str
) -> FieldRule:
    action = entry.get("action", redaction.get("action", "drop"))
    if action == "hmac" and hasher is None:
        raise PolicyError(
            f"policy {path}/action: 'hmac' needs a key; set /redaction/hmac_key_id",
            path=f"{path}/action",
            value=action,
        )
    return FieldRule(action, entry.get("keep", redaction.get("keep", 4)), hasher)


def _entry(
    entry: str | Mapping[str, Any],
    redaction: Mapping[str, Any],
    hasher: Pseudonymizer | None,
    path: str,
) -> tuple[str, FieldRule]:
    if isinstance(entry, str):
        return entry, _field_rule({}, redaction, hasher, path)
    return entry["field"], _field_rule(entry, redaction, hasher, path)
