"""``auditmw verify``: check chained audit logs offline.

Exit codes: 0 clean (only informational findings), 1 findings, 2 usage or I/O error,
3 not verified (the input holds no audit record, or no checkpoint at all).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from auditmw.cli._output import error
from auditmw.evidence.sources import verify_sources
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.crypto import DecryptionError, Keyring
from auditmw.integrity.keys import KeyRegistry, load_mac_key
from auditmw.integrity.reader.conclude import ExpectedHead
from auditmw.integrity.reader.report import CATEGORIES, NOT_VERIFIED_CODES, Report
from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD, use_keyring

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_NOT_VERIFIED = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` sub-command."""
    parser = subparsers.add_parser(
        "verify",
        help="verify hash chains, MACs and signed checkpoints of audit logs",
        description="Verify JSONL audit logs (files, gzipped rotated files, directories). "
        "Exit status: 0 clean, 1 findings, 2 usage or I/O error, "
        "3 not verified (no audit record, or no checkpoint, in the input).",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="log files or directories, or one postgresql://…?table=T or nats://host:port/STREAM",
    )
    parser.add_argument("--keys", metavar="REGISTRY", help="key registry (JSON/TOML) or PEM key")
    parser.add_argument("--mac-key-file", metavar="FILE", help="the writer's initial MAC key")
    parser.add_argument(
        "--keyring", metavar="FILE", help="keyring (0600 JSON) to decrypt encrypted files"
    )
    parser.add_argument(
        "--expected-head",
        action="append",
        default=[],
        metavar="CHAIN:N:HASH",
        help="a checkpoint kept elsewhere (a report's chain head); detects rollback",
    )
    parser.add_argument(
        "--digest", action="append", default=[], metavar="FILE", help="a digest file of checkpoints"
    )
    parser.add_argument(
        "--as-of", metavar="TIME", help="judge silence of unclosed chains at TIME (RFC 3339)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="processes for files of different chains"
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="an input without any audit record is clean (default: NOT VERIFIED, exit 3)",
    )
    parser.add_argument(
        "--max-record-bytes",
        type=int,
        default=DEFAULT_MAX_RECORD,
        metavar="N",
        help="skip longer records unread, reporting them (default: 16 MiB)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--progress", action="store_true", help="show progress even if not a TTY")
    parser.set_defaults(func=run)


def _options(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    if args.keys:
        options["keys"] = KeyRegistry.from_file(args.keys)
    if args.mac_key_file:
        try:
            data = Path(args.mac_key_file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read {args.mac_key_file}: {exc.strerror}", setting="--mac-key-file"
            ) from exc
        options["mac_key"] = load_mac_key(data, setting="--mac-key-file", is_file=True)
    try:
        options["expected_heads"] = [ExpectedHead.parse(h) for h in args.expected_head]
    except ValueError as exc:
        raise ConfigurationError(
            "--expected-head must look like CHAIN_ID:N:HASH", setting="--expected-head"
        ) from exc
    if args.as_of:
        try:
            stamp = datetime.fromisoformat(args.as_of)
        except ValueError as exc:
            raise ConfigurationError("--as-of must be an RFC 3339 time", setting="--as-of") from exc
        options["as_of_ns"] = int(stamp.timestamp() * 1e6) * 1000
    options["digest_paths"] = list(args.digest)
    if args.jobs < 1:
        raise ConfigurationError("--jobs must be at least 1", setting="--jobs")
    options["jobs"] = args.jobs
    if args.max_record_bytes < 1:
        raise ConfigurationError(
            "--max-record-bytes must be at least 1 (the default is 16 MiB)",
            setting="--max-record-bytes",
        )
    options["allow_empty"] = args.allow_empty
    options["max_record_bytes"] = args.max_record_bytes
    return options


class _Bar:
    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        share = done / total if total else 1.0
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        sys.stderr.write(f"\r[{bar}] {share:4.0%} {done / 1e6:,.1f} MB")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Verify the given paths and print the report; return the exit code."""
    try:
        options = _options(args)
        show = args.progress or sys.stderr.isatty()
        keyring = Keyring.from_file(args.keyring) if args.keyring else None
        with use_keyring(keyring):
            report = verify_sources(args.paths, progress=_Bar() if show else None, **options)  # type: ignore[arg-type]
    except DecryptionError as exc:
        return error("verify", exc, EXIT_ERROR)
    except ConfigurationError as exc:
        return error("verify", f"{exc} (setting: {exc.setting})", EXIT_ERROR)
    except OSError as exc:
        return error("verify", exc, EXIT_ERROR)
    if show:
        sys.stderr.write("\n")
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_human(report)
    return _EXIT_BY_VERDICT[report.verdict]


_EXIT_BY_VERDICT = {
    "clean": EXIT_CLEAN,
    "tampered": EXIT_FINDINGS,
    "incomplete": EXIT_FINDINGS,
    "not_verified": EXIT_NOT_VERIFIED,
}


def _print_human(report: Report) -> None:
    print(f"{report.records} records, {len(report.chains)} chain(s)")
    for chain in report.chains:
        state = "closed" if chain.closed else "open"
        print(
            f"  chain {chain.chain_id} stream={chain.stream} events={chain.events} "
            f"seq={chain.first_seq}..{chain.last_seq} checkpoints={chain.checkpoints} {state}"
        )
        if chain.head:
            print(f"    head {chain.head}")
    for finding in sorted(report.findings, key=lambda f: CATEGORIES.index(f.category)):
        where = str(finding.location) if finding.location else "-"
        seq = "" if finding.seq is None else f" seq {finding.seq}"
        if finding.seq_end is not None and finding.seq_end != finding.seq:
            seq += f"..{finding.seq_end}"
        print(f"{finding.category.upper():12} {finding.code:22} {where}{seq}: {finding.message}")
    for code, count in report.suppressed.items():
        print(f"(and {count} more {code} findings)")
    counts = report.counts()  # suppressed findings included
    summary = ", ".join(f"{counts[c]} {c}" for c in CATEGORIES)
    if report.verdict == "not_verified":
        reason = next(f.message for f in report.findings if f.code in NOT_VERIFIED_CODES)
        print(f"{reason.split(' (')[0]} ({summary})")
        return
    print(("CLEAN" if report.clean else "FINDINGS") + f": {summary}")
