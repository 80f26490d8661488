"""Output formats: pure functions from the canonical event to another document.

``get_exporter(name)`` returns the function for a format name; ``"auditmw"`` is the
canonical event itself.  Exporter modules are imported only when their format is used.

May import: the core, ``exceptions`` and ``_version`` only.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

from auditmw.core.types import Event
from auditmw.exceptions import ConfigurationError

__all__ = ["FORMATS", "Exporter", "get_exporter"]

#: An exporter maps a canonical event to the JSON document stored in that format.
Exporter = Callable[[Event], dict[str, Any]]

#: Format name -> module defining ``export(event) -> dict``.
FORMATS: Final[dict[str, str]] = {
    "ocsf": "auditmw.formats.ocsf",
    "ecs": "auditmw.formats.ecs",
    "otel": "auditmw.formats.otel",
    "cloudevents": "auditmw.formats.cloudevents",
}


def _identity(event: Event) -> dict[str, Any]:
    return event


def get_exporter(name: str) -> Exporter:
    """Return the exporter for format ``name``.

    Raises:
        ConfigurationError: the format is unknown or not available.
    """
    if name == "auditmw":
        return _identity
    module_name = FORMATS.get(name)
    if module_name is None:
        allowed = ", ".join(["auditmw", *sorted(FORMATS)])
        raise ConfigurationError(
            f"unknown format {name!r}; use one of: {allowed}", setting="format"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigurationError(
            f"format {name!r} is not available in this version of auditmw", setting="format"
        ) from exc
    export: Exporter = module.export
    return export
