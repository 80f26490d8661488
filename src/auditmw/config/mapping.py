"""Settings mappings (Django ``settings.AUDITMW``, Flask ``app.config["AUDITMW"]``) as config.

A settings mapping is the same document as a policy file, with the same keys,
meaning and errors, and may in addition hold live objects where a user prefers
them (a ``FileSink(...)`` in ``sinks``, a hook in ``identity``, an
``IntegrityOptions(...)`` in ``integrity``) and the ``AuditConfig`` arguments that
have no plain-data form (``resolvers``, ``processors``).  ``policy`` may name a
document file whose sections are merged in; the mapping's own keys win.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from auditmw.config.build import arguments_from_document, build_sink
from auditmw.core.documents import merge, read_document, show
from auditmw.core.policy import Policy
from auditmw.core.policy_schema import policy_schema
from auditmw.exceptions import (
    ConfigurationError,
    MissingDependencyError,
    NoSinksWarning,
    PolicyError,
    SettingError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class _Configuration(Protocol):
    @property
    def sinks(self) -> Sequence[object]: ...


#: The configuration a mapping builds (:class:`~auditmw.config.AuditConfig`, passed as ``make``).
C = TypeVar("C", bound=_Configuration)

__all__ = ["NoSinksWarning", "config_from_mapping"]

#: ``AuditConfig`` arguments that have no place in the document and pass through as they are.
_PASS_THROUGH: Final = frozenset(
    {
        "resolvers",
        "processors",
        "use_framework_user",
        "trusted_proxies",
        "audit_id_header",
        "request_id_header",
        "record_headers",
    }
)


#: Document keys that configure the deployment rather than the policy's rules.
DEPLOYMENT_KEYS: Final = (
    "service",
    "sinks",
    "identity",
    "integrity",
    "delivery",
    "limits",
    "retention",
)


def _allowed() -> list[str]:
    return sorted({*policy_schema()["properties"], *_PASS_THROUGH, "policy"})


def _unknown(key: object, setting: str) -> SettingError:
    allowed = _allowed()
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SettingError(
        f"{setting}: unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)} "
        "(see docs/configuration.md)",
        path=f"/{key}",
        value=key,
    )


def _split(options: Mapping[str, Any], setting: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate plain data (the document) from live objects (``AuditConfig`` arguments)."""
    document_keys = policy_schema()["properties"]
    document: dict[str, Any] = {}
    live: dict[str, Any] = {}
    for key, value in options.items():
        if key in _PASS_THROUGH:
            live[key] = value
        elif key == "policy":
            continue
        elif key not in document_keys:
            raise _unknown(key, setting)
        elif key == "service" and isinstance(value, str):
            document[key] = {"name": value}
        elif key == "sinks" and isinstance(value, list | tuple):
            _sinks(value, document, live)
        elif key in ("service", "identity", "integrity", "delivery", "limits") and not isinstance(
            value, Mapping
        ):
            live[key] = value
        else:
            document[key] = value
    return document, live


def _sinks(
    value: list[Any] | tuple[Any, ...], document: dict[str, Any], live: dict[str, Any]
) -> None:
    if all(isinstance(entry, Mapping) for entry in value):
        document["sinks"] = list(value)
    else:
        live["sinks"] = list(value)  # mixed: plain entries are built in _build_mixed


def _build_mixed(sinks: list[Any], document: Mapping[str, Any]) -> list[Any]:
    retention = document.get("retention")
    return [
        build_sink(entry, f"/sinks/{i}", retention) if isinstance(entry, Mapping) else entry
        for i, entry in enumerate(sinks)
    ]


#: Flat ``AuditConfig`` arguments and their twin in the document's ``identity`` section.
_TWINS: Final = {
    "resolvers": ("jwt", "api_key"),
    "use_framework_user": ("framework_user",),
    "trusted_proxies": ("trusted_proxies",),
    "request_id_header": ("request_id_header",),
    "audit_id_header": ("audit_id_header",),
}


def _check_twins(identity: object, live: Mapping[str, Any], setting: str) -> None:
    """Refuse one setting given twice (flat and in ``identity``): one would silently win."""
    if not isinstance(identity, Mapping):
        return
    for flat, twins in _TWINS.items():
        both = [t for t in twins if t in identity]
        if flat in live and both:
            raise SettingError(
                f"{setting}: {flat!r} and identity.{both[0]} configure the same thing; "
                "keep one of them",
                path=f"/identity/{both[0]}",
                value=flat,
            )


def _policy_source(value: object, setting: str) -> tuple[dict[str, Any], Policy | None]:
    if value is None:
        return {}, None
    if isinstance(value, Policy):
        return {}, value
    if isinstance(value, Mapping | str | os.PathLike):
        return read_document(value), None
    raise SettingError(
        f"{setting}.policy: got {show(value)}; expected the path of a policy file, a "
        "mapping or a Policy",
        path="/policy",
        value=value,
    )


def config_from_mapping(
    options: Mapping[str, Any],
    *,
    make: Callable[..., C],
    setting: str = "AUDITMW",
    default_service: str | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> C:
    """Build an :class:`~auditmw.config.AuditConfig` from a settings mapping.

    Args:
        options: the mapping (adapter-only keys already removed).
        make: the configuration class, called with the arguments the mapping gives
            (:class:`~auditmw.config.AuditConfig`; passed in because it sits above
            this module).
        setting: the settings name used in error messages (``"AUDITMW"``).
        default_service: the service name when nothing names one (Flask's app name).
        environ: where ``*_env`` references are read (default ``os.environ``).
        **overrides: ``AuditConfig`` arguments that win.

    Raises:
        SettingError: an unknown key, a missing service, or an invalid value.

    Warns:
        NoSinksWarning: the configuration has no sink.

    .. versionadded:: 0.2.0
    """
    if not isinstance(options, Mapping):
        raise SettingError(
            f"{setting}: got {show(options)}; expected a dict such as {{'service': 'orders-api'}}",
            path="",
            value=options,
        )
    try:
        config = make(**_arguments(options, setting, default_service, environ, overrides))
    except MissingDependencyError:
        raise
    except (ConfigurationError, PolicyError) as exc:
        raise _named(exc, setting) from exc
    warn_if_no_sinks(config.sinks, setting)
    return config


def _named(exc: ConfigurationError | PolicyError, setting: str) -> SettingError:
    """The same error, its message and ``.setting`` led by the settings name."""
    path = getattr(exc, "path", "") or "/" + (getattr(exc, "setting", None) or "").replace(".", "/")
    top = path.strip("/").split("/")[0]
    message = str(exc).removeprefix("policy ")
    error = SettingError(f"{setting}: {message}", path=path, value=getattr(exc, "value", None))
    error.setting = f"{setting}.{top}" if top else setting
    return error


def _arguments(
    options: Mapping[str, Any],
    setting: str,
    default_service: str | None,
    environ: Mapping[str, str] | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    base, policy = _policy_source(options.get("policy"), setting)
    document, live = _split(options, setting)
    document = merge(base, document)
    policy_keys = set(document) - set(DEPLOYMENT_KEYS)
    if policy is not None and policy_keys:
        raise SettingError(
            f"{setting}: 'policy' is a Policy object and the mapping also holds policy keys "
            f"({', '.join(sorted(policy_keys))}); put them in one place",
            path="/policy",
        )
    _check_twins(document.get("identity"), live, setting)
    if "sinks" in live:
        live["sinks"] = _build_mixed(live["sinks"], document)
    if "service" not in document and "service" not in live and default_service is not None:
        document["service"] = {"name": default_service}
    if "service" not in document and "service" not in live and "service" not in overrides:
        raise SettingError(
            f"{setting} needs a service name, e.g. {setting} = {{'service': 'orders-api'}}",
            path="/service",
        )
    return arguments_from_document(
        document, policy=policy, environ=environ, **{**live, **overrides}
    )


def warn_if_no_sinks(sinks: Sequence[object], setting: str) -> None:
    """Warn (:class:`NoSinksWarning`) when a configuration with ``sinks`` writes events nowhere.

    .. versionadded:: 0.2.0
    """
    from auditmw.core import capture as _capture

    if not sinks and not _capture.active:  # captured by a test: not lost
        warnings.warn(
            f"{setting}: no sinks are configured, so audit events are built but written "
            "nowhere; add e.g. 'sinks': [{'type': 'file', 'path': 'audit.jsonl'}]",
            NoSinksWarning,
            stacklevel=3,
        )
