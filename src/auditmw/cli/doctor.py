"""``auditmw doctor``: which core runs here, and which optional parts are installed.

The native core is a C extension built at install time; where it could not be built
(no compiler, no OpenSSL headers) or ``AUDITMW_PURE_PYTHON=1`` is set, the
pure-Python core runs, with the same output byte for byte.  ``doctor`` says which,
and why, so that a slow deployment can be told from a misbuilt one.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from typing import TYPE_CHECKING, Any

import auditmw._native as native
from auditmw._version import __version__
from auditmw.cli._output import write_json

if TYPE_CHECKING:
    import argparse

__all__ = ["register", "report"]

#: Optional parts: (import name, distribution, the extra that installs it).
OPTIONAL = (
    ("starlette", "starlette", "starlette"),
    ("fastapi", "fastapi", "fastapi"),
    ("flask", "flask", "flask"),
    ("django", "django", "django"),
    ("httpx", "httpx", "http"),
    ("psycopg", "psycopg", "postgres"),
    ("nats", "nats-py", "nats"),
    ("yaml", "pyyaml", "yaml"),
    ("jinja2", "jinja2", "report"),
    ("opentelemetry", "opentelemetry-api", "tracing: opentelemetry-api"),
)


def register(subparsers: Any) -> None:
    """Add the ``doctor`` sub-command."""
    parser = subparsers.add_parser(
        "doctor",
        help="say which core runs (native C or pure Python) and which extras are installed",
        description="Report the core in use (native C extension or pure Python, and why), "
        "the Python runtime and the optional extras installed.  Exit status: 0.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def report() -> dict[str, Any]:
    """What ``doctor`` reports, as plain data."""
    extras: dict[str, str | None] = {}
    for module, distribution, _extra in OPTIONAL:
        version = None
        if importlib.util.find_spec(module) is not None:
            try:
                version = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                version = "installed"
        extras[module] = version
    return {
        "auditmw": __version__,
        "core": native.CORE,
        "core_reason": native.UNAVAILABLE_REASON,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{sys.platform} {platform.machine()}",
        "extras": extras,
    }


def run(args: argparse.Namespace) -> int:
    """Print the report, as text or JSON."""
    data = report()
    if args.json:
        write_json(data)
        return 0
    if data["core"] == "native":
        core = "native (C extension auditmw._native._core; SHA-256 from OpenSSL libcrypto)"
    else:
        core = f"python (pure-Python core: {data['core_reason']})"
    lines = [
        f"auditmw {data['auditmw']}",
        f"core: {core}",
        f"python: {data['python']} on {data['platform']}",
        "extras:",
    ]
    for module, _distribution, extra in OPTIONAL:
        version = data["extras"][module]
        shown = version if version is not None else f"not installed (auditmw[{extra}])"
        if version is None and extra.startswith("tracing"):
            shown = "not installed (pip install opentelemetry-api)"
        lines.append(f"  {module}: {shown}")
    print("\n".join(lines))
    return 0
