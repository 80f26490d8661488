"""``auditmw query``: filter stored audit events; table, JSON lines or CSV.

Exit codes: 0 at least one event matched, 1 none matched, 2 usage or I/O error.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

__all__ = ["register"]

_FILTERS = (
    ("--actor", "actor.id (shell pattern: svc-*)"),
    ("--action", "action (shell pattern: orders.*)"),
    ("--operation", "create, read, update, delete, login, logout or other"),
    ("--resource-type", "resource.type"),
    ("--resource-id", "resource.id"),
    ("--outcome", "success, denied, failure, error or aborted"),
    ("--status", "response status: 404 or a class such as 5xx"),
    ("--route", "request.route (shell pattern)"),
    ("--request-id", "request.id"),
    ("--kind", "kind (shell pattern: audit.*)"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``query`` sub-command."""
    parser = subparsers.add_parser(
        "query",
        help="filter stored audit events (files, rotated and gzipped; PostgreSQL tables)",
        description="Stream stored audit events through filters (all must hold). "
        "Exit status: 0 matches, 1 no match, 2 error.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="log files, directories or postgresql://…?table=T"
    )
    parser.add_argument("--since", help="RFC 3339 time or a duration ago: 90s, 15m, 1h, 7d")
    parser.add_argument("--until", help="RFC 3339 time or a duration ago (exclusive)")
    for flag, text in _FILTERS:
        parser.add_argument(flag, help=text)
    parser.add_argument(
        "--checkpoints", action="store_true", help="include integrity checkpoint records"
    )
    parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    parser.add_argument("--follow", action="store_true", help="then keep reading new lines")
    parser.add_argument(
        "--follow-seconds", type=float, metavar="S", help="stop following after S seconds"
    )
    parser.set_defaults(func=run)


def _filter(args: argparse.Namespace) -> Any:
    from auditmw.evidence._events import format_bound, parse_time
    from auditmw.evidence.query import EventFilter

    bounds = {
        name: format_bound(parse_time(value, setting=f"--{name}"))
        for name in ("since", "until")
        if (value := getattr(args, name))
    }
    criteria = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag, _ in _FILTERS
    }
    return EventFilter(**bounds, **criteria, checkpoints=args.checkpoints)


def run(args: argparse.Namespace) -> int:
    """Run the query; return the exit code."""
    from auditmw.evidence.query import query_events, write_csv, write_table

    try:
        where = _filter(args)
        follow = (
            (args.follow_seconds if args.follow_seconds is not None else None)
            if args.follow
            else 0.0
        )
        matches = query_events(args.paths, where, follow_seconds=follow)
        if args.format == "jsonl":
            count = 0
            for count, (line, _) in enumerate(matches, 1):  # noqa: B007 - count is the result
                sys.stdout.buffer.write(line + b"\n")
                sys.stdout.flush()
        elif args.format == "csv":
            count = write_csv(_events(matches), sys.stdout)
        else:
            count = write_table(_events(matches), sys.stdout, batch=1 if args.follow else 200)
    except ConfigurationError as exc:
        print(f"auditmw query: {exc} (setting: {exc.setting})", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `auditmw query … | head`: the reader has what it wanted; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"auditmw query: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0 if count else 1


def _events(matches: Iterator[tuple[bytes, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for _, event in matches:
        yield event
