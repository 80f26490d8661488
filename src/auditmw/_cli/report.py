"""``auditmw report``: a verified, self-contained HTML evidence report.

Exit codes: 0 report written and the log verified, 1 written with findings, 2 usage,
I/O or missing-dependency error.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auditmw.evidence._options import (
    add_verification_options,
    progress_for,
    verification_options,
)
from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="write a verified, self-contained HTML evidence report",
        description="Verify audit logs and write one offline HTML report: verdict, policy, "
        "PCI DSS 10.2.2 coverage, activity, actors, denials, writes, lifecycle, retention. "
        "Exit status: 0 verified, 1 findings, 2 error.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="log files, directories or postgresql://…?table=T"
    )
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE")
    add_verification_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report; return the exit code."""
    from auditmw.evidence.report import render_report

    progress = progress_for(args, "report")
    try:
        options = verification_options(args)
        report = render_report(
            args.paths,
            keys=options["keys"],
            mac_key=options["mac_key"],
            policy=options["policy"],
            progress=progress,
        )
        Path(args.output).write_text(report.html, encoding="utf-8")
    except ConfigurationError as exc:
        print(f"auditmw report: {exc} (setting: {exc.setting})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"auditmw report: {exc}", file=sys.stderr)
        return 2
    if progress is not None:
        sys.stderr.write("\n")
    print(f"report written to {args.output}: {report.verdict.title}")
    return 0 if report.verification.clean else 1
