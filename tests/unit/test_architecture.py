"""Architecture rules: the core imports no framework or driver; the public API is stable."""

from __future__ import annotations

import subprocess
import sys

import pytest

import auditmw

CORE = [
    "auditmw",
    "auditmw.event",
    "auditmw.canonical",
    "auditmw.pipeline",
    "auditmw.policy",
    "auditmw.processors",
    "auditmw.integrity",
    "auditmw.formats.ocsf",
    "auditmw.formats.ecs",
    "auditmw.formats.otel",
    "auditmw.formats.cloudevents",
    "auditmw.identity",
    "auditmw.delivery",
    "auditmw.asgi",
    "auditmw.sinks",
    "auditmw.testing",
]
FORBIDDEN = [
    "starlette",
    "fastapi",
    "flask",
    "django",
    "werkzeug",
    "psycopg",
    "nats",
    "httpx",
    "yaml",
]


class TestLayering:
    def test_core_loads_no_framework_or_driver(self) -> None:
        """Importing the core (and the ASGI shell) loads no web framework or DB driver."""
        code = (
            "import sys\n"
            + "".join(f"import {name}\n" for name in CORE)
            + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
            + "print(','.join(bad))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == ""


class TestPublicAPI:
    def test_all_is_sorted_and_importable(self) -> None:
        """__all__ is sorted and every name in it exists."""
        names = [n for n in auditmw.__all__ if n != "__version__"]
        assert names == sorted(names, key=str.lower) or names == sorted(names)
        for name in auditmw.__all__:
            assert hasattr(auditmw, name), name

    def test_sinks_are_lazy(self) -> None:
        """Sink classes resolve lazily from auditmw.sinks; unknown names raise AttributeError."""
        from auditmw import sinks

        assert sinks.FileSink.__name__ == "FileSink"
        with pytest.raises(AttributeError, match="NoSuchSink"):
            sinks.NoSuchSink  # noqa: B018
