"""Building the runtime objects of one validated configuration document.

The flow runs one way: :mod:`auditmw.core.documents` reads a file, a mapping or
the environment into plain data; :class:`~auditmw.policy.Policy` validates it
against the JSON Schema; this module builds the sinks, resolvers and integrity
options from it (resolving secret references) and returns one
:class:`~auditmw.config.AuditConfig`, which checks the types of every field.
Nothing here connects to a sink: building is what ``auditmw policy check`` runs.

Secrets are given by reference: ``<name>_env`` names an environment variable and
``<name>_file`` a file holding the value (``secret_env``, ``secret_file``,
``mac_key_env``, ``signing_key_env``); inline values stay accepted.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from auditmw.config.values import DeliveryOptions, Limits, ServiceInfo
from auditmw.core.policy import Policy, document_keys
from auditmw.exceptions import ConfigurationError, PolicyError, SettingError

if TYPE_CHECKING:
    from auditmw.core.protocols import AnySink, Resolver

__all__ = [
    "INTEGRITY_CLASS",
    "RESOLVER_CLASSES",
    "SINK_CLASSES",
    "SINK_MODULES",
    "build_sink",
    "arguments_from_document",
    "identity_options",
    "lookup",
    "sink_module",
]

#: ``[[sinks]] type`` → class name in :mod:`auditmw.sinks`.
SINK_CLASSES: dict[str, str] = {
    "file": "FileSink",
    "stdout": "StdoutSink",
    "logging": "LoggingSink",
    "memory": "MemorySink",
    "http": "HTTPSink",
    "otlp": "OTLPSink",
    "syslog": "SyslogSink",
    "postgres": "PostgresSink",
    "nats": "NATSSink",
    "django": "DjangoSink",
}
#: Sink types whose class lives outside :mod:`auditmw.sinks` (``type`` → module).
SINK_MODULES: dict[str, str] = {"django": "auditmw.contrib.django_app.sink"}
#: ``[identity.<name>]`` → (module, class) of the resolver built with the section's keys.
RESOLVER_CLASSES: dict[str, tuple[str, str]] = {
    "jwt": ("auditmw.identity.jwt", "JWTResolver"),
    "api_key": ("auditmw.identity.apikey", "APIKeyResolver"),
}
#: ``[integrity]`` → (module, class) built with the section's keys.
INTEGRITY_CLASS: tuple[str, str] = ("auditmw.integrity.options", "IntegrityOptions")
#: ``[retention]`` keys are passed to each ``file`` sink under these names.
RETENTION_KWARGS: dict[str, str] = {"max_age_days": "max_age_days", "max_files": "max_files"}
_API_KEY_REFS: Final = frozenset({"registry", "keys", "secret", "secret_env", "secret_file"})


def lookup(module: str, name: str) -> Any:
    """Import ``module.name``, translating a failure into :class:`PolicyError`."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise PolicyError(
            f"policy: {module}.{name} is not available in this build of auditmw", value=name
        ) from exc


def _build(path: str, factory: Any, options: Mapping[str, Any]) -> Any:
    try:
        return factory(**options)
    except TypeError as exc:
        raise SettingError(f"policy {path}: {exc}", path=path) from exc
    except ConfigurationError as exc:
        if isinstance(exc, PolicyError):
            raise
        raise SettingError(f"policy {path}: {exc}", path=path) from exc


def secret(
    options: dict[str, Any], name: str, where: str, environ: Mapping[str, str]
) -> str | None:
    """Pop ``name``, ``name_env`` or ``name_file`` from ``options`` and return the value.

    Raises:
        SettingError: more than one is given, the variable is unset or the file unreadable.

    .. versionadded:: 0.2.0
    """
    given = [k for k in (name, f"{name}_env", f"{name}_file") if k in options]
    if len(given) > 1:
        raise SettingError(
            f"policy {where}: set one of {', '.join(given)}, not several",
            path=f"{where}/{given[1]}",
        )
    if not given:
        return None
    key = given[0]
    value = options.pop(key)
    if key == name:
        return value if isinstance(value, str) else _bad(where, key, value)
    if not isinstance(value, str) or not value:
        return _bad(where, key, value)
    if key.endswith("_env"):
        if value not in environ:
            raise SettingError(
                f"policy {where}/{key}: the environment variable {value!r} is not set; "
                f"export it or use {name}_file",
                path=f"{where}/{key}",
                value=value,
            )
        return environ[value]
    try:
        return Path(value).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(
            f"policy {where}/{key}: cannot read {value!r} ({type(exc).__name__}); "
            "check the path and its permissions",
            path=f"{where}/{key}",
            value=value,
        ) from exc


def _bad(where: str, key: str, value: object) -> str:
    raise SettingError(
        f"policy {where}/{key}: expected a non-empty string, got {type(value).__name__}",
        path=f"{where}/{key}",
    )


def build_sink(entry: Mapping[str, Any], where: str, retention: Mapping[str, Any] | None) -> Any:
    """Build one sink from its plain-data entry (``{"type": "file", "path": ...}``).

    Raises:
        SettingError: the entry is not a table, its type unknown, or an option invalid.

    .. versionadded:: 0.2.0
    """
    if not isinstance(entry, Mapping) or entry.get("type") not in SINK_CLASSES:
        got = entry.get("type") if isinstance(entry, Mapping) else entry
        raise SettingError(
            f"policy {where}: expected a sink table with type one of "
            f"{', '.join(map(repr, SINK_CLASSES))}, got {got!r}",
            path=f"{where}/type" if isinstance(entry, Mapping) else where,
            value=got,
        )
    options = {k: v for k, v in entry.items() if k != "type"}
    if entry["type"] == "file":
        for key, name in RETENTION_KWARGS.items():
            if retention and key in retention:
                options.setdefault(name, retention[key])
        _file_keyring(options, where)
    cls = lookup(sink_module(entry["type"]), SINK_CLASSES[entry["type"]])
    return _build(where, cls, options)


def sink_module(kind: str) -> str:
    """The module holding the class of sink type ``kind`` (``auditmw.sinks`` for most).

    .. versionadded:: 0.2.0
    """
    return SINK_MODULES.get(kind, "auditmw.sinks")


def _sinks(document: Mapping[str, Any]) -> list[AnySink]:
    retention = document.get("retention")
    entries = document.get("sinks", ())
    sinks = [build_sink(entry, f"/sinks/{i}", retention) for i, entry in enumerate(entries)]
    if retention and not any(e.get("type") == "file" for e in entries):
        raise SettingError(
            "policy /retention: retention applies to file sinks and no [[sinks]] entry has "
            "type = 'file'; remove [retention] or add a file sink",
            path="/retention",
        )
    return sinks


def _file_keyring(options: dict[str, Any], where: str) -> None:
    """Turn a file sink's ``keyring`` (0600 file) or ``keyring_env`` into ``encryption``."""
    if "keyring" not in options and "keyring_env" not in options:
        return
    from auditmw.integrity.crypto import Keyring

    try:
        if "keyring" in options:
            options["encryption"] = Keyring.from_file(options.pop("keyring"))
        else:
            options["encryption"] = Keyring.from_env(options.pop("keyring_env"))
    except ConfigurationError as exc:
        raise SettingError(f"policy {where}: {exc}", path=where) from exc


def _jwt_options(section: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    options = dict(section)
    value = secret(options, "secret", "/identity/jwt", environ)
    if value is not None:
        options["secret"] = value
    claims = options.get("claims")
    if isinstance(claims, Mapping):
        from auditmw.identity._claims import ClaimsMapping

        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in claims.items()}
        options["claims"] = _build("/identity/jwt/claims", ClaimsMapping, fields)
    return options


def _api_key_options(section: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    options = dict(section)
    if not _API_KEY_REFS & options.keys():
        return options
    from auditmw.identity.apikey import APIKeyRegistry

    where = "/identity/api_key"
    key = secret(options, "secret", where, environ)
    registry, keys = options.pop("registry", None), options.pop("keys", None)
    if key is None or (registry is None) == (keys is None):
        raise SettingError(
            f"policy {where}: an API key registry needs the server secret (secret_env or "
            "secret_file) and exactly one of registry (a JSON/TOML file) or keys (a list)",
            path=where,
        )
    try:
        if registry is not None:
            options["registry"] = APIKeyRegistry.from_file(registry, key)
        else:
            options["registry"] = APIKeyRegistry(key, keys)
    except ConfigurationError as exc:
        raise SettingError(f"policy {where}: {exc}", path=where) from exc
    return options


_RESOLVER_OPTIONS: Final = {"jwt": _jwt_options, "api_key": _api_key_options}


def identity_options(
    identity: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Turn an ``[identity]`` section into :class:`~auditmw.config.AuditConfig` arguments.

    Raises:
        SettingError: a resolver cannot be built (the message names the key path).
    """
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    resolvers: list[Resolver] = []
    for name, (module, cls_name) in RESOLVER_CLASSES.items():
        if name in identity:
            options = _RESOLVER_OPTIONS[name](identity[name], env)
            resolvers.append(_build(f"/identity/{name}", lookup(module, cls_name), options))
    if resolvers:
        out["resolvers"] = resolvers
    if "framework_user" in identity:
        out["use_framework_user"] = identity["framework_user"]
    if "trusted_proxies" in identity:
        out["trusted_proxies"] = tuple(identity["trusted_proxies"])
    if "request_id_header" in identity:
        out["request_id_header"] = identity["request_id_header"]
    if "audit_id_header" in identity:
        header = identity["audit_id_header"]
        out["audit_id_header"] = (
            None if header is False else "Audit-Id" if header is True else str(header)
        )
    return out


def _integrity(section: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    options = dict(section)
    where = "/integrity"
    mac = secret(options, "mac_key", where, environ) if "mac_key_env" in options else None
    if mac is not None:
        from auditmw.integrity.keys import load_mac_key

        options["mac_key"] = load_mac_key(mac.encode("utf-8"), setting="mac_key_env", is_file=True)
    if "signing_key_env" in options:
        pem = secret(options, "signing_key", where, environ)
        options["signing_key"] = None if pem is None else pem.encode("utf-8")
    module, name = INTEGRITY_CLASS
    return _build(where, lookup(module, name), options)


def arguments_from_document(
    document: Mapping[str, Any],
    *,
    policy: Policy | None = None,
    keys: Mapping[str, bytes] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The :class:`~auditmw.config.AuditConfig` arguments that one plain-data document gives.

    Args:
        document: the document (already read; validated here).
        policy: a compiled policy to use instead of compiling ``document``.
        keys: HMAC redaction keys by key id.
        environ: where ``*_env`` references are read (default ``os.environ``).
        **overrides: ``AuditConfig`` arguments that win over the document.

    Raises:
        SettingError: the document is invalid or a section cannot be built.

    .. versionadded:: 0.2.0
    """
    env = os.environ if environ is None else environ
    if policy is None:
        policy = Policy(document, keys=document_keys(document, keys, env))
    kwargs: dict[str, Any] = {"policy": policy}
    if "service" in document:
        kwargs["service"] = ServiceInfo(**document["service"])
    if "sinks" not in overrides:
        kwargs["sinks"] = _sinks(document)
    if "delivery" in document:
        kwargs["delivery"] = _build("/delivery", DeliveryOptions, document["delivery"])
    if "integrity" in document:
        kwargs["integrity"] = _integrity(document["integrity"], env)
    if "limits" in document:
        kwargs["limits"] = _build("/limits", Limits, document["limits"])
    kwargs.update(identity_options(document.get("identity", {}), env))
    kwargs.update(overrides)
    if "service" not in kwargs:
        raise SettingError(
            "policy /service: the key 'service' (with 'name') is required to build a "
            "configuration, e.g. [service] name = 'orders-api'",
            path="/service",
        )
    return kwargs
