"""The ``auditmw`` command line.

Each sub-command lives in its own module under :mod:`auditmw.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking
the parsed namespace and returning the exit code.

Every command reports errors the same way: ``auditmw <command>: error: <message>`` on
stderr.  Exit status: 0 success, 1 findings (tampering, failed checks, no match),
2 usage, configuration or I/O error.  An :class:`~auditmw.exceptions.AuditError` or
:class:`OSError` that a command does not handle itself is reported here in that
format, never as a traceback.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from auditmw._version import __version__
from auditmw.cli._output import EXIT_USAGE, error
from auditmw.exceptions import AuditError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = (
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
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="auditmw",
        description="Audit-ready access logs: verify, query, report, policy and keys. "
        "Exit status: 0 ok, 1 findings, 2 usage, configuration or I/O error.",
    )
    parser.add_argument("--version", action="version", version=f"auditmw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"auditmw.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command not shipped in this build
        module.register(subparsers)
    _name_commands(parser)
    return parser


def _name_commands(parser: argparse.ArgumentParser) -> None:
    # Each (sub-)parser stores itself, so errors say ``auditmw postgres init: …``;
    # the innermost parser's default wins because argparse applies it last.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(auditmw_parser=sub)
                _name_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    .. versionadded:: 0.1.0
    """
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # Reported by the command's own parser: ``auditmw query: error: …``.
            command: argparse.ArgumentParser = getattr(args, "auditmw_parser", parser)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # --help, --version and usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = func(args)
    except (AuditError, OSError) as exc:
        return error(args.auditmw_parser.prog.removeprefix("auditmw "), exc)
    return code
