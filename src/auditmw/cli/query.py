"""``auditmw query``: filter stored audit events; table, JSON lines or CSV.

Exit codes: 0 at least one event matched, 1 none matched, 2 usage or I/O error.
Filter values are checked first: a value no event can carry (``--outcome deny``,
``--status 45``) is a usage error, not an empty answer.  Skipped malformed records
are counted on stderr.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from auditmw.cli._output import LineWriter, error, warn
from auditmw.evidence._options import add_keyring_option, load_keyring
from auditmw.evidence._values import (
    OPERATIONS,
    OUTCOMES,
    SEVERITIES,
    check_choice,
    check_kind,
    check_status,
)
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.crypto import DecryptionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["register"]


def _checked(flag: str, check: Callable[[str, str], str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            return check(flag, value)
        except ConfigurationError as exc:
            # argparse prefixes "argument --flag: " itself.
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from None

    return parse


def _choice(allowed: tuple[str, ...]) -> Callable[[str, str], str]:
    return lambda flag, value: check_choice(flag, value, allowed)


_FILTERS: tuple[tuple[str, str, Callable[[str, str], str] | None], ...] = (
    ("--actor", "actor.id (shell pattern: svc-*)", None),
    ("--action", "action (shell pattern: orders.*)", None),
    ("--operation", ", ".join(OPERATIONS), _choice(OPERATIONS)),
    ("--resource-type", "resource.type", None),
    ("--resource-id", "resource.id", None),
    ("--outcome", ", ".join(OUTCOMES), _choice(OUTCOMES)),
    ("--severity", ", ".join(SEVERITIES), _choice(SEVERITIES)),
    ("--status", "response status: 100 to 599, or a class such as 5xx", check_status),
    ("--route", "request.route (shell pattern)", None),
    ("--request-id", "request.id", None),
    ("--kind", "kind (shell pattern: audit.*)", check_kind),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``query`` sub-command."""
    parser = subparsers.add_parser(
        "query",
        help="filter stored audit events (files, rotated and gzipped; PostgreSQL tables)",
        description="Stream stored audit events through filters (all must hold). "
        "Exit status: 0 matches, 1 no match, 2 usage or I/O error.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="log files, directories or postgresql://…?table=T"
    )
    parser.add_argument(
        "--since", type=_bound("--since"), help="RFC 3339 time or a duration ago: 90s, 1h, 7d"
    )
    parser.add_argument(
        "--until", type=_bound("--until"), help="RFC 3339 time or a duration ago (exclusive)"
    )
    for flag, text, check in _FILTERS:
        parser.add_argument(flag, help=text, type=_checked(flag, check) if check else str)
    parser.add_argument(
        "--checkpoints", action="store_true", help="include integrity checkpoint records"
    )
    parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    parser.add_argument("--follow", action="store_true", help="then keep reading new lines")
    parser.add_argument(
        "--follow-seconds", type=float, metavar="S", help="stop following after S seconds"
    )
    add_keyring_option(parser)
    parser.set_defaults(func=run)


def _bound(flag: str) -> Callable[[str], str]:
    def check(flag: str, value: str) -> str:
        from auditmw.evidence._events import format_bound, parse_time

        return format_bound(parse_time(value, setting=flag))

    return _checked(flag, check)


def _filter(args: argparse.Namespace) -> Any:
    from auditmw.evidence.query import EventFilter

    bounds = {name: value for name in ("since", "until") if (value := getattr(args, name))}
    criteria = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag, _, _ in _FILTERS
    }
    return EventFilter(**bounds, **criteria, checkpoints=args.checkpoints)


class _Skipped:
    """Counts the malformed records a query skipped, and remembers the first."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def __call__(self, where: str) -> None:
        self.count += 1
        self.first = self.first or where

    def report(self) -> None:
        if self.count:
            warn(
                "query",
                f"skipped {self.count} malformed record(s) that are not JSON objects "
                f"(first: {self.first}); run auditmw verify on the log",
            )


def run(args: argparse.Namespace) -> int:
    """Run the query; return the exit code."""
    from auditmw.evidence.query import query_events

    skipped = _Skipped()
    try:
        where = _filter(args)
        follow = args.follow_seconds if args.follow else 0.0
        matches = query_events(
            args.paths,
            where,
            follow_seconds=follow,
            keyring=load_keyring(args),
            on_malformed=skipped,
        )
        count = _write(args, matches)
    except BrokenPipeError:
        # `auditmw query … | head`: the reader has what it wanted; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigurationError, DecryptionError, OSError) as exc:
        skipped.report()
        return error("query", exc)
    except KeyboardInterrupt:
        count = 1  # following until interrupted: not a "no match"
    skipped.report()
    return 0 if count else 1


def _write(args: argparse.Namespace, matches: Iterator[tuple[bytes, dict[str, Any]]]) -> int:
    from auditmw.evidence.query import write_csv, write_table

    if args.format == "csv":
        return write_csv(_events(matches), sys.stdout)
    if args.format == "table":
        return write_table(_events(matches), sys.stdout, batch=1 if args.follow else 200)
    out, count = LineWriter(sys.stdout.buffer), 0
    for count, (line, _) in enumerate(matches, 1):  # noqa: B007 - count is the result
        out.write_line(line)
        sys.stdout.buffer.flush()
    return count


def _events(matches: Iterator[tuple[bytes, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for _, event in matches:
        yield event
