"""Reading policy documents and building an :class:`~auditmw.config.AuditConfig` from one.

Documents come from TOML (stdlib ``tomllib``), YAML (``auditmw[yaml]``), JSON, a
mapping (Django ``settings.AUDITMW``, Flask ``app.config["AUDITMW"]``), or the file
named by ``AUDITMW_POLICY``.  Only :func:`config_from_env` (and the CLI) read the
environment; everything else takes ``environ`` explicitly.

The name → class tables below map document sections to the classes that implement
them; sinks, resolvers and integrity are imported only when a document uses them.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditmw.exceptions import ConfigurationError, PolicyError

if TYPE_CHECKING:
    from auditmw.config import AuditConfig
    from auditmw.policy import Policy
    from auditmw.types import AnySink, Resolver

__all__ = ["config_from_env", "config_from_policy", "load_policy", "read_document"]

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
}
#: ``[identity.<name>]`` → (module, class) of the resolver built with the section's keys.
RESOLVER_CLASSES: dict[str, tuple[str, str]] = {
    "jwt": ("auditmw.identity.jwt", "JWTResolver"),
    "api_key": ("auditmw.identity.apikey", "APIKeyResolver"),
}
#: ``[integrity]`` → (module, class) built with the section's keys.
INTEGRITY_CLASS: tuple[str, str] = ("auditmw.integrity", "IntegrityOptions")
#: ``[retention]`` keys are passed to each ``file`` sink under these names.
RETENTION_KWARGS: dict[str, str] = {"max_age_days": "max_age_days", "max_files": "max_files"}

Source = str | os.PathLike[str] | Mapping[str, Any]


def read_document(source: Source) -> dict[str, Any]:
    """Read a policy document from a mapping or a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file.

    Args:
        source: a mapping, or the path of a policy file.

    Raises:
        ConfigurationError: the file cannot be read or its suffix is unknown.
        PolicyError: the file is not valid TOML/YAML/JSON (the message gives the position).

    .. versionadded:: 0.1.0
    """
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"policy: cannot read {str(path)!r} ({exc.strerror}); check AUDITMW_POLICY or the path",
            setting="policy",
        ) from exc
    try:
        document = _parse(raw, suffix, path)
    except (ValueError, ImportError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise PolicyError(f"policy {path}: not valid {suffix[1:].upper()}: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError(f"policy {path}: the document must be a table/object", path="/")
    return document


def _parse(raw: bytes, suffix: str, path: Path) -> Any:
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(raw.decode("utf-8"))
    if suffix in (".yaml", ".yml"):
        from auditmw.sinks.base import require

        yaml = require("yaml", extra="yaml", feature="YAML policy files")
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from exc
    if suffix == ".json":
        import orjson

        return orjson.loads(raw)
    raise ConfigurationError(
        f"policy: {str(path)!r} has an unknown suffix; use .toml, .yaml, .yml or .json",
        setting="policy",
    )


def _keys(
    document: Mapping[str, Any],
    keys: Mapping[str, bytes] | None,
    environ: Mapping[str, str] | None,
) -> dict[str, bytes]:
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
    from auditmw.policy import Policy

    document = read_document(source)
    return Policy(document, keys=_keys(document, keys, environ))


def config_from_policy(
    source: Source,
    *,
    keys: Mapping[str, bytes] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AuditConfig:
    """Build the whole :class:`~auditmw.config.AuditConfig` from one policy document.

    Args:
        source: a mapping or the path of a TOML, YAML or JSON file.
        keys: HMAC redaction keys by key id.
        environ: where to read keys named in the document.
        **overrides: :class:`~auditmw.config.AuditConfig` arguments that win over
            the document (``sinks=[...]`` in tests).

    Raises:
        PolicyError: the document is invalid or a section cannot be built.

    .. versionadded:: 0.1.0
    """
    from auditmw.config import AuditConfig, DeliveryOptions, ServiceInfo
    from auditmw.policy import Policy

    document = read_document(source)
    policy = Policy(document, keys=_keys(document, keys, environ))
    identity: Mapping[str, Any] = document.get("identity", {})
    kwargs: dict[str, Any] = {"policy": policy}
    if "service" in document:
        kwargs["service"] = ServiceInfo(**document["service"])
    if "sinks" not in overrides:
        kwargs["sinks"] = _sinks(document)
    if "delivery" in document:
        kwargs["delivery"] = _build("/delivery", DeliveryOptions, document["delivery"])
    if "integrity" in document:
        module, name = INTEGRITY_CLASS
        kwargs["integrity"] = _build("/integrity", lookup(module, name), document["integrity"])
    kwargs.update(identity_options(identity))
    kwargs.update(overrides)
    if "service" not in kwargs:
        raise PolicyError(
            "policy /service: the key 'service' (with 'name') is required to build a "
            "configuration, e.g. [service] name = 'orders-api'",
            path="/service",
        )
    return AuditConfig(**kwargs)


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> AuditConfig:
    """Build the configuration from the policy file named by ``AUDITMW_POLICY``.

    Args:
        environ: the environment (default ``os.environ``); also supplies HMAC keys.
        **overrides: :class:`~auditmw.config.AuditConfig` arguments that win.

    Raises:
        ConfigurationError: ``AUDITMW_POLICY`` is unset or unreadable.
        PolicyError: the document is invalid.

    .. versionadded:: 0.1.0
    """
    env = os.environ if environ is None else environ
    path = env.get("AUDITMW_POLICY")
    if not path:
        raise ConfigurationError(
            "AUDITMW_POLICY is not set; set it to the path of a policy file (TOML, YAML or JSON)",
            setting="AUDITMW_POLICY",
        )
    return config_from_policy(path, environ=env, **overrides)


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
        raise PolicyError(f"policy {path}: {exc}", path=path) from exc
    except ConfigurationError as exc:
        if isinstance(exc, PolicyError):
            raise
        raise PolicyError(f"policy {path}: {exc}", path=path) from exc


def _sinks(document: Mapping[str, Any]) -> list[AnySink]:
    sinks: list[AnySink] = []
    retention = document.get("retention")
    has_file = False
    for i, entry in enumerate(document.get("sinks", ())):
        options = {k: v for k, v in entry.items() if k != "type"}
        if entry["type"] == "file":
            has_file = True
            for key, name in RETENTION_KWARGS.items():
                if retention and key in retention:
                    options.setdefault(name, retention[key])
            _file_keyring(options, f"/sinks/{i}")
        cls = lookup("auditmw.sinks", SINK_CLASSES[entry["type"]])
        sinks.append(_build(f"/sinks/{i}", cls, options))
    if retention and not has_file:
        raise PolicyError(
            "policy /retention: retention applies to file sinks and no [[sinks]] entry has "
            "type = 'file'; remove [retention] or add a file sink",
            path="/retention",
        )
    return sinks


def _file_keyring(options: dict[str, Any], where: str) -> None:
    """Turn a file sink's ``keyring`` (0600 file) or ``keyring_env`` into ``encryption``."""
    if "keyring" not in options and "keyring_env" not in options:
        return
    from auditmw.crypto import Keyring

    try:
        if "keyring" in options:
            options["encryption"] = Keyring.from_file(options.pop("keyring"))
        else:
            options["encryption"] = Keyring.from_env(options.pop("keyring_env"))
    except ConfigurationError as exc:
        raise PolicyError(f"policy {where}: {exc}", path=where) from exc


def identity_options(identity: Mapping[str, Any]) -> dict[str, Any]:
    """Turn an ``[identity]`` section into :class:`~auditmw.config.AuditConfig` arguments."""
    out: dict[str, Any] = {}
    resolvers: list[Resolver] = []
    for name, (module, cls_name) in RESOLVER_CLASSES.items():
        if name in identity:
            cls = lookup(module, cls_name)
            resolvers.append(_build(f"/identity/{name}", cls, identity[name]))
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
