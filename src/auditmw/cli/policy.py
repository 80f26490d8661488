"""``auditmw policy check|explain|schema``: validate, lint and try out a policy document.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from auditmw.cli._output import error, warn
from auditmw.exceptions import AuditError, ConfigurationError, PolicyError

if TYPE_CHECKING:
    import argparse

    from auditmw.config.options import AuditConfig
    from auditmw.core.policy import Policy

__all__ = ["build", "lint", "register"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUTH_WORDS = ("login", "logout", "signin", "signup", "token", "oauth", "password", "auth")
_BODY_LEVELS = frozenset({"request", "request_response"})
_YEAR = 365


def register(subparsers: Any) -> None:
    """Add ``policy`` and its sub-commands to the CLI."""
    parser = subparsers.add_parser("policy", help="validate, lint and explain a policy document")
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="validate and lint a policy file, building everything start-up builds"
    )
    check.add_argument("file", help="policy file (.toml, .yaml, .json)")
    check.add_argument(
        "--connect",
        action="store_true",
        help="also reach each sink (directory writable, server accepting connections); "
        "nothing is written",
    )
    check.set_defaults(func=_check)
    explain = sub.add_parser("explain", help="show the rule and event for one request")
    explain.add_argument("file")
    explain.add_argument("method", type=str.upper)
    explain.add_argument("path", help="request path, optionally with ?query")
    explain.add_argument("--header", action="append", default=[], metavar="K:V")
    explain.add_argument("--token", help="sent as 'Authorization: Bearer TOKEN'")
    explain.add_argument("--status", type=int, default=200)
    explain.add_argument("--route", help="route template, e.g. /orders/{order_id}")
    explain.add_argument("--body", help="request body (with --header content-type:...)")
    explain.set_defaults(func=_explain)
    schema = sub.add_parser("schema", help="print the policy JSON Schema")
    schema.set_defaults(func=_schema)


def _load(path: str) -> tuple[Policy, list[str]]:
    from auditmw.core.documents import read_document
    from auditmw.core.policy import Policy

    document = read_document(path)
    notes: list[str] = []
    keys: dict[str, bytes] = {}
    redaction = document.get("redaction")
    if isinstance(redaction, dict) and isinstance(redaction.get("hmac_key_id"), str):
        kid = redaction["hmac_key_id"]
        env = redaction.get("hmac_key_env", "AUDITMW_REDACTION_KEY")
        if isinstance(env, str) and env in os.environ:
            keys[kid] = os.environ[env].encode("utf-8")
        else:
            # Checking the document must not need the production secret.
            keys[kid] = os.urandom(32)
            notes.append(f"/redaction: {env} is not set; checked with a throw-away key")
    return Policy(document, keys=keys), notes


def lint(policy: Policy) -> list[str]:
    """Return warnings about a valid policy (``"<key path>: <message>"``).

    .. versionadded:: 0.1.0
    """
    doc = policy.document
    warnings: list[str] = []
    for rule in policy.rules:
        where = f"/rules/{rule.order}"
        if rule.decision.level == "none" and (rule.methods is None or rule.methods & _WRITES):
            warnings.append(
                f"{where}: rule {rule.id!r} sets level 'none' and covers write methods; "
                "writes are what an audit trail is for (limit it with methods = ['GET'])"
            )
        if rule.decision.level in _BODY_LEVELS:
            auth = [t for t in (*(rule.routes or ()), *rule.globs) if _is_auth_route(t)]
            if auth:
                warnings.append(
                    f"{where}: rule {rule.id!r} captures bodies on authentication routes "
                    f"{', '.join(sorted(auth))}; credentials would pass through redaction only"
                )
    if policy.default_level in _BODY_LEVELS:
        warnings.append(
            f"/default_level: {policy.default_level!r} captures bodies of every request, "
            "including authentication routes; prefer 'metadata' and raise it per rule"
        )
    if "integrity" not in doc:
        warnings.append("/integrity: missing; events will not be hash-chained or signed")
    return warnings + _protection(policy) + _unavailable(doc)


def _protection(policy: Policy) -> list[str]:
    """Retention shorter than PCI DSS 10.5.1's year, and bodies stored in clear."""
    doc = policy.document
    out = []
    retention = doc.get("retention") or {}
    for key in ("max_age_days", "delete_after_days"):
        days = retention.get(key)
        if isinstance(days, int | float) and days < _YEAR:
            out.append(
                f"/retention/{key}: logs are kept {days} days; PCI DSS 10.5.1 requires at "
                f"least {_YEAR} (the last 3 months immediately available)"
            )
    try:
        from auditmw.retention import RetentionRule

        RetentionRule.from_policy(doc)
    except PolicyError as exc:
        out.append(str(exc).removeprefix("policy "))
    if "max_files" in retention:
        out.append(
            "/retention/max_files: deletes by count whatever the files' age; a traffic "
            f"spike can leave less than {_YEAR} days (prefer max_age_days/delete_after_days)"
        )
    bodies = policy.default_level in _BODY_LEVELS or any(
        rule.decision.level in _BODY_LEVELS for rule in policy.rules
    )
    for i, sink in enumerate(doc.get("sinks", ())):
        clear = sink.get("type") == "file" and not ({"keyring", "keyring_env"} & sink.keys())
        if bodies and clear:
            out.append(
                f"/sinks/{i}: request bodies are captured and this file sink stores them "
                "unencrypted; set keyring = '<0600 keyring file>' (see docs/protect.md)"
            )
    return out


def _unavailable(doc: dict[str, Any]) -> list[str]:
    """Sections whose implementing class cannot be imported here (a missing extra)."""
    from auditmw.config import build

    wanted = [
        (f"/sinks/{i}", build.sink_module(entry["type"]), build.SINK_CLASSES[entry["type"]])
        for i, entry in enumerate(doc.get("sinks", ()))
    ]
    wanted += [
        (f"/identity/{name}", *build.RESOLVER_CLASSES[name])
        for name in doc.get("identity", {})
        if name in build.RESOLVER_CLASSES
    ]
    if "integrity" in doc:
        wanted.append(("/integrity", *build.INTEGRITY_CLASS))
    out = []
    for where, module, name in wanted:
        try:
            build.lookup(module, name)
        except ConfigurationError as exc:  # MissingDependencyError names the extra
            out.append(f"{where}: {exc}")
        except PolicyError as exc:
            out.append(f"{where}: {str(exc).removeprefix('policy: ')}")
    return out


def _is_auth_route(template: str) -> bool:
    lowered = template.lower()
    return any(word in lowered for word in _AUTH_WORDS)


class _CheckEnviron(Mapping[str, str]):
    """``os.environ``, answering for unset secret variables with a throw-away value (noted)."""

    def __init__(self, notes: list[str]) -> None:
        self._notes = notes

    def __getitem__(self, name: str) -> str:
        if name in os.environ:
            return os.environ[name]
        # Checking the document must not need the production secret.
        self._notes.append(f"{name} is not set; checked with a throw-away value")
        return os.urandom(32).hex()

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def build(policy: Policy, notes: list[str]) -> AuditConfig:
    """Build everything start-up builds from ``policy``'s document, without connecting.

    Sinks are constructed (options checked, nothing opened), keys loaded, resolvers
    built; a document without ``[service]`` is checked as a policy-only document.

    Raises:
        PolicyError: a section cannot be built (the message names the key path).

    .. versionadded:: 0.2.0
    """
    from auditmw.config.build import arguments_from_document
    from auditmw.config.options import AuditConfig

    overrides: dict[str, Any] = {}
    if "service" not in policy.document:
        overrides["service"] = "policy-check"
    return AuditConfig(
        **arguments_from_document(
            policy.document, policy=policy, environ=_CheckEnviron(notes), **overrides
        )
    )


def _check(args: argparse.Namespace) -> int:
    try:
        policy, notes = _load(args.file)
        config = build(policy, notes)
    except PolicyError as exc:
        return error("policy check", exc, 1)  # an invalid document is what check looks for
    except ConfigurationError as exc:
        return error("policy check", exc)
    if getattr(args, "connect", False) and not _connect(config):
        return 1
    for message in [*notes, *lint(policy)]:
        warn("policy check", message)
    print(f"ok: policy {policy.id!r} {policy.hash} ({len(policy.rules)} rules)")
    return 0


def _connect(config: AuditConfig) -> bool:
    from auditmw.cli._reach import reach

    reached = True
    for i, sink in enumerate(config.sinks):
        try:
            print(f"/sinks/{i} ({type(sink).__name__}): {reach(sink)}")
        except (OSError, ConfigurationError) as exc:
            error("policy check", f"/sinks/{i} ({type(sink).__name__}): {exc}")
            reached = False
    return reached


def _explain(args: argparse.Namespace) -> int:
    try:
        event, rule, level = _run(args)
    except (AuditError, ValueError) as exc:
        return error("policy explain", exc)
    print(f"rule: {rule}  level: {level}")
    if event is None:
        print("event: none (the policy does not record this request)")
    else:
        print(orjson.dumps(event, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


def _run(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str, str]:
    from auditmw.config.options import AuditConfig
    from auditmw.core.canonical import new_event_id
    from auditmw.core.event import Exchange, Headers
    from auditmw.identity.base import resolve_actor
    from auditmw.pipeline.builder import Pipeline

    policy, _ = _load(args.file)
    headers = _headers(args.header, args.token)
    path, _, query = args.path.partition("?")
    from auditmw.config.build import identity_options

    service = policy.document.get("service", {}).get("name", "explain")
    identity = identity_options(policy.document.get("identity", {}))
    identity["use_framework_user"] = False
    config = AuditConfig(service=service, policy=policy, **identity)
    pipeline = Pipeline(config)
    now, mono = time.time_ns(), time.perf_counter_ns()
    body = args.body.encode("utf-8") if args.body is not None else None
    exchange = Exchange(
        event_id=new_event_id(now), kind="http", method=args.method, path=path,
        headers=Headers(mapping=headers), start_ns=now, start_mono=mono, end_ns=now,
        end_mono=mono, query=query, route=args.route, status=args.status,
        client=("127.0.0.1", 50000), request_body=body, path_params=_params(args.route, path),
        request_body_size=len(body) if body is not None else 0,
        request_bytes=len(body) if body is not None else 0,
    )  # fmt: skip
    decision = policy.decide(exchange, resolve_actor(pipeline.resolvers, exchange))
    return pipeline.process(exchange), decision.rule, decision.level


def _params(route: str | None, path: str) -> dict[str, Any]:
    """Fill a route template's parameters from the path, as the framework's router would."""
    if not route:
        return {}
    pattern = re.sub(r"\\\{(\w+)(?::\w+)?\\\}", r"(?P<\1>[^/]+)", re.escape(route))
    match = re.fullmatch(pattern, path)
    return match.groupdict() if match else {}


def _headers(pairs: list[str], token: str | None) -> dict[str, str]:
    out: dict[str, str] = {"host": "localhost"}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep:
            raise ValueError(f"--header {pair!r}: write it as Name:value")
        out[name.strip().lower()] = value.strip()
    if token:
        out["authorization"] = f"Bearer {token}"
    return out


def _schema(args: argparse.Namespace) -> int:
    from auditmw.core.policy_schema import policy_schema

    print(json.dumps(policy_schema(), indent=2))
    return 0
