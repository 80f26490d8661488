"""Helpers for the Django audit trail app's tests: extra databases, a trail-writing auditor."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.management import call_command
from django.db import connections
from django.test.utils import override_settings

from auditmw import AuditConfig
from auditmw.config import DeliveryOptions
from auditmw.contrib.django import get_auditor
from auditmw.contrib.django_app.sink import DjangoSink
from auditmw.integrity import IntegrityOptions
from auditmw.integrity.keys import generate_keypair

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from auditmw.auditor import Auditor


@contextlib.contextmanager
def extra_database(migrate: bool = True, **overrides: Any) -> Iterator[str]:
    """A database alias of its own (default: a new SQLite file), migrated for the trail app."""
    alias = f"trail_{uuid.uuid4().hex[:10]}"
    config = dict(connections.settings["default"])
    config.update(overrides)
    config["TEST"] = dict(config.get("TEST") or {})
    connections.settings[alias] = config
    try:
        if migrate:
            call_command("migrate", "auditmw_log", database=alias, verbosity=0)
        yield alias
    finally:
        with contextlib.suppress(Exception):
            connections[alias].close()
        with contextlib.suppress(Exception):
            del connections[alias]
        connections.settings.pop(alias, None)


def sqlite_database(tmp_path: Path, migrate: bool = True) -> contextlib.AbstractContextManager[str]:
    """An SQLite database file in ``tmp_path`` (see :func:`extra_database`)."""
    return extra_database(
        migrate, ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / f"{uuid.uuid4().hex}.db")
    )


@dataclass
class Trail:
    """An auditor configured through ``settings.AUDITMW`` that writes to the trail table."""

    auditor: Auditor
    public_key: Path
    sink: DjangoSink

    def close(self) -> None:
        """Drain the auditor: every record, the final checkpoint included, is stored."""
        self.auditor.close(timeout=30)


@contextlib.contextmanager
def trail_settings(
    tmp_path: Path, *, using: str = "default", extra_sinks: tuple[Any, ...] = (), **delivery: Any
) -> Iterator[Trail]:
    """Install ``settings.AUDITMW`` with a :class:`DjangoSink` and signed checkpoints."""
    private, public, _ = generate_keypair()
    public_key = tmp_path / f"trail-{uuid.uuid4().hex[:6]}.pem"
    public_key.write_bytes(public)
    sink = DjangoSink(using=using)
    config = AuditConfig(
        service="trail",
        sinks=[sink, *extra_sinks],
        integrity=IntegrityOptions(signing_key=private, checkpoint_every=3),
        delivery=DeliveryOptions(**{"max_wait_ms": 5, **delivery}),
    )
    with override_settings(AUDITMW={"config": config}, AUDITMW_LOG={"keys": str(public_key)}):
        trail = Trail(get_auditor(), public_key, sink)
        try:
            yield trail
        finally:
            trail.close()
