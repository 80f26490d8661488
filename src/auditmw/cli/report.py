"""``auditmw report``: a verified, self-contained HTML evidence report.

Exit codes: 0 report written and the log verified, 1 written but not ``VERIFIED``
(tampering, gaps, no records or no checkpoint), 2 usage, I/O or missing-dependency
error.  An existing output file is replaced only with ``--force``, and a symlink at
the output path is never followed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from auditmw.cli._files import write_output
from auditmw.cli._output import error
from auditmw.evidence._options import (
    add_verification_options,
    load_keyring,
    progress_for,
    verification_options,
)
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.crypto import DecryptionError

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
        "Exit status: 0 verified, 1 not verified (findings, no records, no checkpoint), "
        "2 usage or I/O error.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="log files, directories or postgresql://…?table=T"
    )
    parser.add_argument(
        "-o", "--output", default="report.html", metavar="FILE", help="default: report.html"
    )
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
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
            keyring=load_keyring(args),
        )
        if progress is not None:
            sys.stderr.write("\n")
        write_output(args.output, report.html.encode("utf-8"), force=args.force)
    except (ConfigurationError, DecryptionError, OSError) as exc:
        return error("report", exc)
    print(f"report written to {args.output}: {report.verdict.title}")
    return 0 if report.verdict.verified else 1
