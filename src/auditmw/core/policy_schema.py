"""Validation of policy documents against the published JSON Schema.

The schema (``auditmw/schema/policy.schema.json``, draft 2020-12) is the public
contract; this module interprets the subset of it that the schema uses (``type``,
``enum``, ``properties``, ``additionalProperties``, ``required``, ``items``,
``minItems``, ``minimum``, ``maximum``, ``minLength``, ``pattern``, local ``$ref``)
so that ``jsonschema`` is not a runtime dependency.  A test checks that both agree
on a table of documents.  Errors name the key path, the bad value and what is allowed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from typing import Any, Final

from auditmw.exceptions import SettingError

__all__ = ["policy_schema", "validate_document"]

_TYPE_NAMES: Final = {
    "object": "a table/object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
}
_MAX_SHOWN = 60


@functools.cache
def _schema_text() -> str:
    return resources.files("auditmw").joinpath("schema/policy.schema.json").read_text("utf-8")


def policy_schema() -> dict[str, Any]:
    """Return the policy document's JSON Schema (draft 2020-12) as a new dict.

    .. versionadded:: 0.1.0
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.cache
def _compiled_schema() -> dict[str, Any]:
    return policy_schema()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _fail(path: str, message: str, value: object) -> SettingError:
    where = path or "/"
    return SettingError(f"policy {where}: {message}", path=where, value=value)


def _is_type(value: object, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "array":
        return isinstance(value, list | tuple)
    if name == "object":
        return isinstance(value, dict)
    return False


def validate_document(document: object) -> None:
    """Validate ``document`` against the policy schema.

    Args:
        document: the parsed policy document.

    Raises:
        PolicyError: the first violation, with ``.path`` (a JSON Pointer such as
            ``/rules/2/level``) and ``.value``; the message lists the allowed values.

    .. versionadded:: 0.1.0
    """
    root = _compiled_schema()
    _check(document, root, "", root)


def _check(value: Any, schema: dict[str, Any], path: str, root: dict[str, Any]) -> None:
    ref = schema.get("$ref")
    if ref is not None:
        target = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        _check(value, target, path, root)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(value, name) for name in names):
            wanted = " or ".join(_TYPE_NAMES[n] for n in names)
            raise _fail(path, f"expected {wanted}, got {_show(value)}", value)
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        raise _fail(path, f"{_show(value)} is not allowed; use one of {allowed}", value)
    if isinstance(value, str):
        _check_string(value, schema, path)
    elif _is_type(value, "number"):
        _check_number(value, schema, path)
    elif isinstance(value, list | tuple):
        _check_array(value, schema, path, root)
    elif isinstance(value, dict):
        _check_object(value, schema, path, root)


def _check_string(value: str, schema: dict[str, Any], path: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise _fail(path, "must not be empty", value)
    pattern = schema.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        raise _fail(path, f"{_show(value)} does not match the pattern {pattern}", value)


def _check_number(value: float, schema: dict[str, Any], path: str) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and value < low:
        raise _fail(path, f"{value!r} is below the minimum {low}", value)
    if high is not None and value > high:
        raise _fail(path, f"{value!r} is above the maximum {high}", value)


def _check_array(value: Any, schema: dict[str, Any], path: str, root: dict[str, Any]) -> None:
    if len(value) < schema.get("minItems", 0):
        raise _fail(path, "must list at least one value (leave the key out to match anything)", [])
    items = schema.get("items")
    if items is not None:
        for i, item in enumerate(value):
            _check(item, items, f"{path}/{i}", root)


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, root: dict[str, Any]
) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for key, item in value.items():
        if not isinstance(key, str):
            raise _fail(path, f"keys must be strings, got {_show(key)}", key)
        child = f"{path}/{key.replace('~', '~0').replace('/', '~1')}"
        sub = properties.get(key)
        extra = schema.get("additionalProperties", True)
        if sub is not None:
            _check(item, sub, child, root)
        elif extra is False:
            raise _fail(child, _unknown_key(key, properties), key)
        elif isinstance(extra, dict):
            _check(item, extra, child, root)
    # After the keys: a misspelt required key is reported as the typo it is.
    for key in schema.get("required", ()):
        if key not in value:
            raise _fail(path, f"the key {key!r} is required", value if path else None)


def _unknown_key(key: str, properties: dict[str, Any]) -> str:
    allowed = sorted(properties)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"
