"""Type checks for the fields of :class:`~auditmw.config.AuditConfig` that hold live objects.

Plain data (the policy document) is checked against the JSON Schema in
:mod:`auditmw.core.policy_schema`; this module checks what a schema cannot: that a
``sinks`` entry is a sink, that ``integrity`` is an encoder factory, that a resolver
has ``resolve``, that ``identity`` is callable.  Every failure is a
:class:`SettingError` naming the setting, the value and what is allowed, raised
when the configuration is built, never at the first request.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence, Set
from typing import Any, TypeGuard

from auditmw.core.documents import show
from auditmw.exceptions import SettingError

__all__ = ["check_live_fields"]


def _fail(setting: str, value: object, allowed: str) -> SettingError:
    if isinstance(value, Mapping):
        # A table may hold an inline secret: name its keys, never its values.
        shown, value = f"a table with keys {sorted(map(str, value))}", None
    else:
        shown = f"{show(value)} ({type(value).__name__})"
    return SettingError(
        f"{setting}: got {shown}; {allowed}", path="/" + setting.replace(".", "/"), value=value
    )


def _is_sink(value: object) -> bool:
    return callable(getattr(value, "emit", None)) or callable(getattr(value, "aemit", None))


def _is_list(value: object) -> TypeGuard[Collection[Any]]:
    if isinstance(value, str | bytes | Mapping):
        return False
    return isinstance(value, Sequence | Set)


def _strings(name: str, value: object) -> None:
    if not _is_list(value):
        raise _fail(name, value, "expected a list of strings, e.g. ['x-tenant']")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"{name}.{i}", item, "expected a string")


def _sequence(name: str, value: object) -> list[Any]:
    if not _is_list(value):
        raise _fail(name, value, "expected a list")
    return list(value)


def check_live_fields(config: Any) -> None:
    """Check the types of every field of an ``AuditConfig`` (live objects included).

    Raises:
        SettingError: a field holds a value of the wrong type.

    .. versionadded:: 0.2.0
    """
    for i, sink in enumerate(_sequence("sinks", config.sinks)):
        if not _is_sink(sink):
            raise _fail(
                f"sinks.{i}",
                sink,
                "expected a sink (with emit(batch) or async aemit(batch)); plain data such as "
                "{'type': 'file', 'path': ...} is accepted by AuditConfig.from_mapping()",
            )
    for i, resolver in enumerate(_sequence("resolvers", config.resolvers)):
        if not callable(getattr(resolver, "resolve", None)):
            raise _fail(
                f"resolvers.{i}",
                resolver,
                "expected a resolver such as JWTResolver(...) or APIKeyResolver(...); "
                "plain data goes in the 'identity' section ({'jwt': {...}, 'api_key': {...}}) "
                "of AuditConfig.from_mapping()",
            )
    if config.identity is not None and not callable(config.identity):
        raise _fail(
            "identity",
            config.identity,
            "expected a callable hook(request) -> Actor | None; an identity section "
            "({'jwt': {...}}) is accepted by AuditConfig.from_mapping()",
        )
    for i, processor in enumerate(_sequence("processors", config.processors)):
        if not callable(processor):
            raise _fail(f"processors.{i}", processor, "expected a callable processor(event)")
    integrity = config.integrity
    if integrity is not None and not callable(getattr(integrity, "encoder_for", None)):
        raise _fail(
            "integrity",
            integrity,
            "expected an encoder factory such as auditmw.integrity.IntegrityOptions(...) or None; "
            "plain data ({'signing_key_file': ...}) is accepted by AuditConfig.from_mapping()",
        )
    _check_scalars(config)


def _check_scalars(config: Any) -> None:
    if not isinstance(config.use_framework_user, bool):
        raise _fail("use_framework_user", config.use_framework_user, "expected True or False")
    _strings("trusted_proxies", config.trusted_proxies)
    _strings("record_headers", config.record_headers)
    if config.audit_id_header is not None and not isinstance(config.audit_id_header, str):
        raise _fail("audit_id_header", config.audit_id_header, "expected a header name or None")
    if not isinstance(config.request_id_header, str) or not config.request_id_header:
        raise _fail("request_id_header", config.request_id_header, "expected a header name")
    from auditmw.config.values import DeliveryOptions, Limits

    if not isinstance(config.delivery, DeliveryOptions):
        raise _fail(
            "delivery",
            config.delivery,
            "expected DeliveryOptions(...) (or a table, in from_mapping)",
        )
    if not isinstance(config.limits, Limits):
        raise _fail("limits", config.limits, "expected Limits(...) (or a table, in from_mapping)")
