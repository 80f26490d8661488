"""``auditmw simulate``: run audit scenario tests against an app, in-process.

Exit codes: 0 every scenario passed, 1 some failed, 2 usage or import error.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import orjson

from auditmw._cli._output import LineWriter, error, escape_control
from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="run audit scenario tests (requests and the events they must produce)",
        description="Send each scenario's request to the app in-process (ASGI or WSGI) and "
        "compare the audit event with the expected one. Exit status: 0 all pass, 1 some "
        "fail, 2 error.",
    )
    parser.add_argument("scenarios", metavar="SCENARIOS.toml")
    parser.add_argument("--app", metavar="MODULE:ATTR", help="the app (default: the file's app)")
    parser.add_argument(
        "--app-dir", metavar="DIR", help="import the app from DIR (default: the file's app_dir)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the scenarios and print one line per scenario; return the exit code."""
    from auditmw.evidence.scenarios import run_scenarios

    try:
        results = run_scenarios(args.scenarios, app_spec=args.app, app_dir=args.app_dir)
    except ConfigurationError as exc:
        return error("simulate", exc)
    for result in results:
        if args.json:
            data = {"name": result.name, "passed": result.passed, "problems": result.problems}
            LineWriter(sys.stdout.buffer).write_line(orjson.dumps(data))
            sys.stdout.buffer.flush()
            continue
        name = escape_control(result.name)
        print(f"{'PASS' if result.passed else 'FAIL'}  {name}  (HTTP {result.status})")
        for problem in result.problems:
            print(f"      {escape_control(problem)}")
    failed = sum(not r.passed for r in results)
    if not args.json:
        print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
