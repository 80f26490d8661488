"""Where configuration comes from: files, mappings and environment variables, as plain data.

This module only *reads*: it turns a TOML/YAML/JSON file, a settings mapping or
the environment into one plain-data document, and imports nothing that builds
runtime objects (``policy``, ``config`` and ``_config_build`` sit above it).

Environment convention (``AuditConfig.from_env``):

* ``AUDITMW_POLICY`` names a document file (optional when overrides are given);
* ``AUDITMW_<KEY>`` sets a top-level key (``AUDITMW_DEFAULT_LEVEL=request``);
* ``AUDITMW_<SECTION>__<KEY>`` sets a nested key, ``__`` separating the levels and
  a number indexing a list (``AUDITMW_SERVICE__NAME=orders-api``,
  ``AUDITMW_DELIVERY__MODE=durable``, ``AUDITMW_SINKS__0__PATH=/var/log/a.jsonl``);
* names are case-insensitive; a value is kept as a string where the schema allows
  a string, and parsed as JSON otherwise (``10``, ``true``, ``["GET","POST"]``);
* overrides win over the file; a name with ``__`` whose first part is not a
  document key is an error (a typo must not be ignored); other ``AUDITMW_*``
  names without ``__`` that are not document keys are left alone.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from auditmw.core.policy_schema import policy_schema
from auditmw.exceptions import ConfigurationError, PolicyError, SettingError

__all__ = [
    "ENV_PREFIX",
    "Source",
    "document_from_env",
    "env_overrides",
    "merge",
    "read_document",
    "show",
]

ENV_PREFIX: Final = "AUDITMW_"
_MAX_SHOWN: Final = 60
Source = str | os.PathLike[str] | Mapping[str, Any]


def show(value: object) -> str:
    """``repr(value)`` cut to a readable length (never used for secrets)."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


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
        from auditmw.core.optional import require

        yaml = require("yaml", extra="yaml", feature="YAML policy files")
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from exc
    if suffix == ".json":
        return orjson.loads(raw)
    raise ConfigurationError(
        f"policy: {str(path)!r} has an unknown suffix; use .toml, .yaml, .yml or .json",
        setting="policy",
    )


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``top`` over ``base`` (tables merge key by key; anything else is replaced).

    .. versionadded:: 0.2.0
    """
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, Mapping) and _indexed(value):
            out[key] = _merge_list(old, value)
        else:
            out[key] = value
    return out


def _indexed(value: Mapping[str, Any]) -> bool:
    return all(isinstance(k, int) for k in value)


def _merge_list(old: list[Any], patch: Mapping[int, Any]) -> list[Any]:
    out = list(old)
    for index, value in sorted(patch.items()):
        if index < len(out):
            prev = out[index]
            both = isinstance(prev, Mapping) and isinstance(value, Mapping)
            out[index] = merge(prev, value) if both else value
        elif index == len(out):
            out.append(_lists(value))
        else:
            raise SettingError(
                f"environment: list index {index} skips entries (the list has {len(out)}); "
                "number list entries from 0 without gaps",
                path=f"/{index}",
                value=index,
            )
    return out


def _lists(value: Any) -> Any:
    """Turn ``{0: a, 1: b}`` tables (from indexed variable names) into lists."""
    if isinstance(value, Mapping):
        if value and _indexed(value):
            return _merge_list([], value)
        return {k: _lists(v) for k, v in value.items()}
    return value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``AUDITMW_<KEY>[__<KEY>…]`` variables into a nested document.

    Args:
        environ: the environment to read.

    Raises:
        SettingError: a ``__`` name whose first part is not a document key, or a value
            that is not valid JSON where the schema wants a non-string.

    .. versionadded:: 0.2.0
    """
    return {k: _lists(v) for k, v in _env_tree(environ).items()}


def _env_tree(environ: Mapping[str, str]) -> dict[str, Any]:
    schema = policy_schema()
    out: dict[str, Any] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == "AUDITMW_POLICY":
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if parts[0] not in schema["properties"]:
            if len(parts) > 1:
                raise SettingError(
                    f"environment {name}: {parts[0]!r} is not a configuration key; allowed: "
                    f"{', '.join(sorted(schema['properties']))}",
                    path="/" + "/".join(parts),
                    value=name,
                )
            continue
        keys: list[str | int] = [int(p) if p.isdigit() else p for p in parts]
        value = _env_value(name, environ[name], _schema_at(schema, keys))
        _set(out, keys, value)
    return out


def _set(out: dict[Any, Any], keys: list[str | int], value: Any) -> None:
    node = out
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _schema_at(schema: dict[str, Any], keys: list[str | int]) -> dict[str, Any]:
    node: dict[str, Any] = schema
    for key in keys:
        node = _deref(schema, node)
        if isinstance(key, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(key, {})
    return _deref(schema, node)


def _deref(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: dict[str, Any] = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _env_value(name: str, raw: str, schema: dict[str, Any]) -> Any:
    types = schema.get("type", [])
    names = [types] if isinstance(types, str) else list(types)
    if "string" in names or (not names and "oneOf" not in schema and "enum" not in schema):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SettingError(
            f"environment {name}: {show(raw)} is not valid JSON; write numbers, true/false "
            'and lists as JSON (10, true, ["GET"])',
            path=name,
            value=raw,
        ) from exc


def document_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The document named by ``AUDITMW_POLICY`` with the ``AUDITMW_*`` overrides merged in.

    Raises:
        ConfigurationError: neither ``AUDITMW_POLICY`` nor any override is set.

    .. versionadded:: 0.2.0
    """
    path = environ.get("AUDITMW_POLICY")
    overrides = _env_tree(environ)
    if not path and not overrides:
        raise ConfigurationError(
            "AUDITMW_POLICY is not set; set it to the path of a policy file (TOML, YAML or "
            "JSON), or set AUDITMW_SERVICE__NAME and other AUDITMW_<SECTION>__<KEY> variables",
            setting="AUDITMW_POLICY",
        )
    document = read_document(path) if path else {}
    merged = merge(document, overrides)
    return {k: _lists(v) for k, v in merged.items()}
