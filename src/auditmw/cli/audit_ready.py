"""``auditmw audit-ready``: the compliance checklist as a CI gate.

Exit codes: 0 every check passed, 1 some failed, 2 usage or I/O error.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from auditmw.cli._output import error, escape_control, write_json
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
    """Add the ``audit-ready`` sub-command."""
    parser = subparsers.add_parser(
        "audit-ready",
        help="check completeness, consistency, integrity, traceability and retention",
        description="Run the audit-readiness checklist over stored logs. Exit status: 0 all "
        "checks pass, 1 some fail, 2 error.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="log files, directories or postgresql://…?table=T"
    )
    parser.add_argument("--profile", choices=("pci-dss", "soc2", "iso27001"), default="pci-dss")
    parser.add_argument(
        "--min-traceability",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="least share (0..1) of requests with a verified identity (default 0.5)",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    add_verification_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the checklist and print it; return the exit code."""
    from auditmw.evidence.readiness import check_readiness

    try:
        if not 0.0 <= args.min_traceability <= 1.0:
            raise ConfigurationError(
                "--min-traceability is a share between 0 and 1", setting="--min-traceability"
            )
        options = verification_options(args)
        progress = progress_for(args, "verify")
        result = check_readiness(
            args.paths,
            profile=args.profile,
            min_traceability=args.min_traceability,
            progress=progress,
            keyring=load_keyring(args),
            **options,
        )
    except (ConfigurationError, DecryptionError, OSError) as exc:
        return error("audit-ready", exc)
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        data = {
            "profile": result.profile,
            "passed": result.passed,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in result.checks
            ],
        }
        write_json(data)
    else:
        for check in result.checks:
            # Details quote log content (event ids, schema errors): escape it.
            detail = escape_control(check.detail)
            print(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<13} {detail}")
        verdict = "READY" if result.passed else "NOT READY"
        print(
            f"{verdict} for {result.profile}: "
            f"{sum(c.passed for c in result.checks)}/{len(result.checks)} checks pass"
        )
    return 0 if result.passed else 1
