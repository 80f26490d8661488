"""``manage.py auditmw_verify``: ``auditmw verify`` for the ``auditmw_events`` table.

Same report and exit codes as ``auditmw verify``: 0 clean, 1 findings, 2 usage or
I/O error, 3 not verified.  Keys come from the options, else from
``settings.AUDITMW_LOG`` (see :mod:`auditmw.contrib.django_app.verification`).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from auditmw.cli import verify as cli
from auditmw.contrib.django_app.sink import DjangoSink
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD

__all__ = ["Command"]


class Command(BaseCommand):
    """Verify the hash chains, MACs and signed checkpoints stored in the database.

    .. versionadded:: 0.2.0
    """

    help = (
        "Verify the audit trail stored in the database (as 'auditmw verify' does). "
        "Exit status: 0 clean, 1 findings, 2 usage or I/O error, 3 not verified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Add ``auditmw verify``'s options that apply to a table."""
        parser.add_argument("--database", default="default", help="the database alias")
        parser.add_argument("--keys", metavar="REGISTRY", help="key registry (JSON/TOML) or PEM")
        parser.add_argument("--mac-key-file", metavar="FILE", help="the writer's MAC key")
        parser.add_argument("--expected-head", action="append", default=[], metavar="CHAIN:N:HASH")
        parser.add_argument("--as-of", metavar="TIME", help="judge unclosed chains at TIME")
        parser.add_argument("--allow-empty", action="store_true", help="an empty table is clean")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        """Verify the table, print the report and exit with ``auditmw verify``'s status."""
        code = self._run(options)
        if code:
            sys.stdout.flush()
            raise SystemExit(code)

    def _run(self, options: dict[str, Any]) -> int:
        from auditmw.contrib.django_app.verification import keys_from_settings, verify_table

        try:
            settings_keys, settings_mac = keys_from_settings()
            verify_options = cli._options(_namespace(options))
        except ConfigurationError as exc:
            self.stderr.write(f"auditmw_verify: error: {exc} (setting: {exc.setting})")
            return cli.EXIT_ERROR
        verify_options.setdefault("keys", settings_keys)
        verify_options.setdefault("mac_key", settings_mac)
        for unused in ("digest_paths", "jobs", "max_record_bytes"):
            verify_options.pop(unused, None)
        try:
            report = verify_table(using=options["database"], **verify_options)  # type: ignore[arg-type]
        except DatabaseError as exc:
            self.stderr.write(f"auditmw_verify: error: {DjangoSink._explain(exc)}")
            return cli.EXIT_ERROR
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):  # the CLI's own printer, unchanged
            if options["json"]:
                print(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
            else:
                cli._print_human(report)
        self.stdout.write(printed.getvalue(), ending="")
        return cli._EXIT_BY_VERDICT[report.verdict]


def _namespace(options: dict[str, Any]) -> argparse.Namespace:
    return argparse.Namespace(
        keys=options["keys"],
        mac_key_file=options["mac_key_file"],
        expected_head=options["expected_head"],
        as_of=options["as_of"],
        digest=[],
        jobs=1,
        max_record_bytes=DEFAULT_MAX_RECORD,
        allow_empty=options["allow_empty"],
    )
