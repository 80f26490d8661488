"""The ``auditmw`` command line.

Each sub-command lives in its own module under :mod:`auditmw._cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking
the parsed namespace and returning the exit code.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "verify",
    "keygen",
    "policy",
    "apikey",
    "simulate",
    "query",
    "report",
    "audit_ready",
    "postgres",
    "cat",
    "retention",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="auditmw", description="Audit-ready access logs: demo, verify, policy and keys."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"auditmw._cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command not shipped in this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = func(args)
    return code
