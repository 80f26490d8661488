"""Audit scenario tests: send requests to the real app in-process, check the events.

A scenarios file (TOML) names requests and the audit event each must produce::

    app = "app:app"          # module:attribute, imported from app_dir
    app_dir = "."            # relative to the scenarios file

    [tokens.admin]           # HS256 test tokens; secret may be "env:VAR"
    secret = "test-secret-0123456789abcdef0123456789"
    claims = { sub = "u1", roles = ["admin"] }

    [[scenario]]
    name = "admin reads an order"
    request = { method = "GET", path = "/orders/1",
                headers = { authorization = "Bearer {{ token.admin }}" } }
    expect = { outcome = "success", actor = { id = "u1" }, "resource.id" = "1" }
    absent = ["{{ token.admin }}", "Bearer"]

Trust: this drives the app through its ASGI or WSGI interface without a server, so
what is checked is the event auditmw builds, not the network path (proxies, TLS).
Only use it with test secrets: tokens are minted with the secret in the file.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditmw.core.canonical import dumps
from auditmw.core.optional import require
from auditmw.evidence._driver import Driver, is_asgi
from auditmw.evidence._events import MISSING, get_path
from auditmw.exceptions import ConfigurationError
from auditmw.testing import capture_events

__all__ = [
    "ScenarioResult",
    "diff_event",
    "flatten",
    "is_asgi",
    "load_app",
    "load_scenarios",
    "run_scenarios",
]

_TOKEN_LIFETIME_S = 3600
_PLACEHOLDER = re.compile(r"\{\{\s*token\.([A-Za-z0-9_-]+)\s*\}\}")
_REQUEST_KINDS = ("http", "websocket", "auth")


@dataclass(slots=True)
class ScenarioResult:
    """The outcome of one scenario.

    Args:
        name: the scenario's name.
        passed: whether the event matched and no forbidden text appeared.
        problems: one line per mismatch (``actor.id: expected 'u1', got 'anonymous'``).
        status: the HTTP status the app answered.
        event: the request's audit event, when one was built.

    .. versionadded:: 0.1.0
    """

    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    status: int | None = None
    event: dict[str, Any] | None = None


def flatten(expected: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn nested tables into dotted paths: ``{"actor": {"id": "u1"}}`` → ``{"actor.id": "u1"}``.

    Args:
        expected: nested tables; ``__`` in a key is read as ``.``.
        prefix: the path so far (for recursion).

    .. versionadded:: 0.1.0
    """
    flat: dict[str, Any] = {}
    for key, value in expected.items():
        path = f"{prefix}{key.replace('__', '.')}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def diff_event(event: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Return one line per expected field whose value differs in ``event``.

    Args:
        event: an audit event.
        expected: dotted paths (or nested tables) and their values; the value
            ``"<absent>"`` requires that the field be missing.

    .. versionadded:: 0.1.0
    """
    problems = []
    for path, want in flatten(expected).items():
        got = get_path(event, path)
        if want == "<absent>":
            if got is not MISSING:
                problems.append(f"{path}: expected absent, got {got!r}")
        elif got is MISSING:
            problems.append(f"{path}: expected {want!r}, got nothing")
        elif got != want:
            problems.append(f"{path}: expected {want!r}, got {got!r}")
    return problems


def _secret(value: str, name: str) -> str:
    if value.startswith("env:"):
        var = value[4:]
        if var not in os.environ:
            raise ConfigurationError(
                f"scenarios: token {name!r} reads its secret from ${var}, which is not set",
                setting=f"tokens.{name}.secret",
            )
        return os.environ[var]
    return value


def _mint(tokens: dict[str, Any]) -> dict[str, str]:
    import jwt

    minted = {}
    for name, spec in tokens.items():
        alg = spec.get("alg", "HS256")
        if not alg.startswith("HS"):
            raise ConfigurationError(
                f"scenarios: token {name!r}: only HS256/HS384/HS512 test tokens can be minted",
                setting=f"tokens.{name}.alg",
            )
        secret = _secret(str(spec.get("secret", "")), name)
        minted[name] = jwt.encode(_claims(spec.get("claims", {})), secret, algorithm=alg)
    return minted


def _claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The token's claims, with ``iat`` and a one-hour ``exp`` unless the file sets them.

    A policy that requires ``exp`` (as production policies should) would otherwise
    reject every minted token and fail every scenario.
    """
    now = int(time.time())
    return {"iat": now, "exp": now + _TOKEN_LIFETIME_S, **claims}


def _fill(text: str, minted: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in minted:
            raise ConfigurationError(
                f"scenarios: {{{{ token.{name} }}}} names no [tokens.{name}] table",
                setting=f"tokens.{name}",
            )
        return minted[name]

    return _PLACEHOLDER.sub(replace, text)


def load_scenarios(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a scenarios file.

    Args:
        path: the TOML file.

    Raises:
        ConfigurationError: the file cannot be read or has no ``[[scenario]]``.

    .. versionadded:: 0.1.0
    """
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read scenarios {path}: {exc}", setting="SCENARIOS"
        ) from exc
    if not document.get("scenario"):
        raise ConfigurationError(
            f"{path}: no [[scenario]] tables; add at least one", setting="scenario"
        )
    return document


def load_app(spec: str, app_dir: str | os.PathLike[str] | None = None) -> Any:
    """Import ``module:attribute`` (from ``app_dir`` first, when given).

    Args:
        spec: ``module:attribute``.
        app_dir: a directory put first on ``sys.path``.

    Raises:
        ConfigurationError: the spec is malformed or cannot be imported.

    .. versionadded:: 0.1.0
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"--app must look like module:attribute, got {spec!r}", setting="--app"
        )
    if app_dir is not None and str(Path(app_dir).resolve()) not in sys.path:
        sys.path.insert(0, str(Path(app_dir).resolve()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name}: {exc}", setting="--app") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ConfigurationError(f"{module_name} has no {attribute!r}", setting="--app") from exc


def run_scenarios(
    path: str | os.PathLike[str],
    *,
    app: Any = None,
    app_spec: str | None = None,
    app_dir: str | os.PathLike[str] | None = None,
) -> list[ScenarioResult]:
    """Run every scenario of the file at ``path`` against the app; return the results.

    Args:
        path: the scenarios file.
        app: the ASGI or WSGI app itself (else ``app_spec`` or the file's ``app``).
        app_spec: ``module:attribute`` to import.
        app_dir: where to import it from (default: the file's ``app_dir``, relative
            to the file, else the file's directory).

    Raises:
        ConfigurationError: bad scenarios file or app.
        MissingDependencyError: httpx is not installed.

    .. versionadded:: 0.1.0
    """
    httpx = require("httpx", extra="http", feature="auditmw simulate")
    document = load_scenarios(path)
    base = Path(path).resolve().parent
    if app is None:
        spec = app_spec or document.get("app")
        if not spec:
            raise ConfigurationError("no app: pass --app module:attribute", setting="--app")
        directory = app_dir if app_dir is not None else base / document.get("app_dir", ".")
        app = load_app(str(spec), directory)
    minted = _mint(document.get("tokens", {}))
    with Driver(httpx, app) as driver:
        return [_run_one(driver, scenario, minted) for scenario in document["scenario"]]


def _auth_error(event: dict[str, Any], expected: dict[str, Any], problems: list[str]) -> list[str]:
    """Say why a credential was rejected when the actor differs from the expectation."""
    error = get_path(event, "actor.auth.error")
    checked = "actor.auth.error" in flatten(expected)
    if error is MISSING or error is None or checked:
        return []
    if not any(p.startswith("actor.") for p in problems):
        return []
    return [f"actor.auth.error: {error!r} (the credential sent was rejected)"]


def _run_one(driver: Driver, scenario: dict[str, Any], minted: dict[str, str]) -> ScenarioResult:
    name = str(scenario.get("name", "?"))
    request = scenario.get("request", {})
    headers = {k: _fill(str(v), minted) for k, v in request.get("headers", {}).items()}
    kwargs: dict[str, Any] = {"headers": headers, "params": request.get("query")}
    if "json" in request:
        kwargs["json"] = request["json"]
    elif "body" in request:
        kwargs["content"] = _fill(str(request["body"]), minted).encode()
    with capture_events() as captured:
        response = driver.send(
            str(request.get("method", "GET")),
            _fill(str(request.get("path", "/")), minted),
            **kwargs,
        )
    events: list[dict[str, Any]] = [dict(e) for e in captured if e["kind"] in _REQUEST_KINDS]
    result = ScenarioResult(name, passed=False, status=response.status_code)
    if "status" in scenario and response.status_code != scenario["status"]:
        result.problems.append(
            f"HTTP status: expected {scenario['status']}, got {response.status_code}"
        )
    if scenario.get("audited", True) is False:
        result.problems.extend(f"expected no audit event, got {e.get('action')!r}" for e in events)
    elif not events:
        result.problems.append("no audit event was built for the request")
    else:
        expected = scenario.get("expect", {})
        # The request's own event is the one that fits best (middleware may add others).
        best = min(events, key=lambda e: len(diff_event(e, expected)))
        result.event = best
        result.problems.extend(diff_event(best, expected))
        result.problems.extend(_auth_error(best, expected, result.problems))
        serialized = dumps(best).decode("utf-8", "replace")
        for text in scenario.get("absent", []):
            secret = _fill(str(text), minted)
            if secret and secret in serialized:
                shown = text if text != secret else secret[:4] + "…"
                result.problems.append(f"forbidden text {shown!r} appears in the event")
    result.passed = not result.problems
    return result
