"""``auditmw retention plan|apply|shred``: retention and cold storage from the policy.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditmw.cli._output import error
from auditmw.exceptions import AuditError

if TYPE_CHECKING:
    import argparse

    from auditmw.retention import Action

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``retention`` and its sub-commands to the CLI."""
    parser = subparsers.add_parser("retention", help="plan and apply log retention, shred files")
    sub = parser.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    for name, helptext in (
        ("plan", "print what would be archived or deleted, and why"),
        ("apply", "archive and delete as planned; record each step as an audit event"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--policy", required=True, metavar="FILE", help="the policy document")
        cmd.add_argument("--now", metavar="TIME", help="judge ages at TIME (ISO 8601, UTC)")
        cmd.add_argument("--keyring", metavar="FILE", help="keyring for encrypted files")
        if name == "apply":
            cmd.add_argument("--keys", metavar="REGISTRY", help="keys verifying checkpoints")
        cmd.set_defaults(func=_plan if name == "plan" else _apply)
    shred = sub.add_parser(
        "shred",
        help="destroy the data key of encrypted rotated files (the live file is refused)",
    )
    shred.add_argument("files", nargs="+", metavar="FILE")
    shred.set_defaults(func=_shred)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _setup(args: argparse.Namespace) -> tuple[dict[str, Any], list[Action], Any]:
    from auditmw.config.loader import read_document
    from auditmw.integrity.crypto import Keyring
    from auditmw.retention import RetentionRule, plan

    document = read_document(args.policy)
    rule = RetentionRule.from_policy(document)
    logs = [Path(s["path"]) for s in document.get("sinks", ()) if s.get("type") == "file"]
    keyring = Keyring.from_file(args.keyring) if args.keyring else None
    return document, plan(logs, rule, _now(args.now)), keyring


def _print(actions: list[Action]) -> None:
    for a in actions:
        tier = "archive" if a.archived else "hot"
        print(f"{a.kind:8} {tier:7} {a.path}  age {a.age_days:.1f}d  {a.reason}")


def _plan(args: argparse.Namespace) -> int:
    try:
        _, actions, _ = _setup(args)
    except (AuditError, ValueError, OSError) as exc:
        return error("retention", exc)
    _print(actions)
    return 0


def _apply(args: argparse.Namespace) -> int:
    import os

    from auditmw.auditor import Auditor
    from auditmw.config.loader import config_from_policy
    from auditmw.integrity.keys import KeyRegistry
    from auditmw.retention import DirectoryArchive, RetentionRule, apply

    try:
        document, actions, keyring = _setup(args)
        rule = RetentionRule.from_policy(document)
        keys = KeyRegistry.from_file(args.keys) if args.keys else None
        auditor = Auditor(config_from_policy(args.policy, environ=os.environ))
    except (AuditError, ValueError, OSError) as exc:
        return error("retention", exc)
    started: list[bool] = []

    def record(action: Action) -> None:
        # Started at the first record, after apply() verified the log: the auditor
        # appends to (and may rotate) the very files being verified.
        if not started:
            auditor.start()
            started.append(True)
        event = auditor.pipeline.lifecycle("audit.retention", action.details())
        if action.kind == "refused":
            event["outcome"] = "failure"
        auditor.submit(event)

    try:
        target = DirectoryArchive(rule.archive) if rule.archive else None
        done = apply(
            actions,
            keys=keys,
            record=record,
            keyring=keyring,
            target=target,
            encrypt=rule.archive_encrypt,
        )
    except (AuditError, OSError) as exc:
        return error("retention", exc)
    finally:
        if started:
            auditor.close()
    _print(done)
    return 1 if any(a.kind == "refused" for a in done) else 0


def _shred(args: argparse.Namespace) -> int:
    from auditmw.integrity.crypto import shred
    from auditmw.retention import shred_refusal

    # Every file is checked before any is shredded: a refusal leaves all of them intact.
    refusals = [why for name in args.files if (why := shred_refusal(Path(name)))]
    for why in refusals:
        error("retention shred", why)
    if refusals:
        return 2
    for name in args.files:
        try:
            key_id = shred(name)
        except (AuditError, OSError) as exc:
            return error("retention shred", exc)
        print(f"shredded {name}: its data key (wrapped by {key_id!r}) is destroyed")
    return 0
