"""Verify the audit trail stored by :class:`~auditmw.contrib.django_app.sink.DjangoSink`.

The verifier reads only the ``line`` column, in ``id`` (insertion) order, exactly as
``auditmw verify`` reads a PostgreSQL table; the indexed columns are never trusted.
Keys come from ``settings.AUDITMW_LOG`` (``{"keys": <registry file or PEM public
key>, "mac_key_file": <file>}``), or else the checkpoint signing key's public half is
taken from ``settings.AUDITMW``'s integrity options.  Without keys, signatures are
not checked and the verdict says so (``unverified`` findings).

The admin verifies one record by its chain segment: the records of its chain from the
last checkpoint written before it (or the chain's start) up to the first checkpoint
written after it, at most :data:`MAX_SEGMENT` rows.  The starting checkpoint's
signature and head are checked, and every record of the segment must link to it.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditmw.exceptions import ConfigurationError
from auditmw.integrity.keys import KeyEntry, KeyRegistry, key_id_for, load_mac_key
from auditmw.integrity.layout import CHECKPOINT_KIND
from auditmw.integrity.reader.report import Location
from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD, capped

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from auditmw.contrib.django_app.models import AuditRecord
    from auditmw.integrity.reader.report import Report

__all__ = ["MAX_SEGMENT", "SegmentVerdict", "keys_from_settings", "verify_record", "verify_table"]

#: The longest chain segment the admin verifies for one record (rows).
MAX_SEGMENT = 20_000
_READ_CHUNK = 2000


def keys_from_settings() -> tuple[KeyRegistry | None, bytes | None]:
    """Return the checkpoint keys and MAC key configured for verification (or ``None``).

    Raises:
        ConfigurationError: ``AUDITMW_LOG`` is not a dict, or a key file is unreadable.

    .. versionadded:: 0.2.0
    """
    from django.conf import settings

    options = getattr(settings, "AUDITMW_LOG", None) or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            "settings.AUDITMW_LOG must be a dict like {'keys': 'keys.json', "
            "'mac_key_file': 'mac.key'}",
            setting="AUDITMW_LOG",
        )
    keys = KeyRegistry.from_file(options["keys"]) if options.get("keys") else _signer_keys()
    mac_key = None
    if options.get("mac_key_file"):
        path = Path(options["mac_key_file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read {path}: {exc.strerror}", setting="AUDITMW_LOG['mac_key_file']"
            ) from exc
        mac_key = load_mac_key(data, setting="AUDITMW_LOG['mac_key_file']", is_file=True)
    return keys, mac_key


def _signer_keys() -> KeyRegistry | None:
    try:
        from auditmw.contrib.django import get_auditor

        integrity = get_auditor().config.integrity
    except Exception:  # auditing disabled or misconfigured: verify without keys
        return None
    signer = getattr(integrity, "signer", None)
    if signer is None:
        return None
    public = signer.public_key()
    return KeyRegistry([KeyEntry(key_id_for(public), public)])


def _records(rows: QuerySet[AuditRecord], label: str) -> Iterator[tuple[Location, bytes]]:
    for row_id, line in rows.order_by("id").values_list("id", "line").iterator(_READ_CHUNK):
        yield Location(label, row_id), capped(line.encode("utf-8"), DEFAULT_MAX_RECORD)


def verify_table(
    *,
    using: str = "default",
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    **options: Any,
) -> Report:
    """Verify every stored record of the table, as ``auditmw verify`` verifies a table.

    Args:
        using: the database alias.
        keys: the trusted checkpoint keys.
        mac_key: the writer's initial MAC key.
        **options: ``expected_heads``, ``as_of_ns``, ``allow_empty`` of
            :func:`~auditmw.integrity.verify_records`.

    .. versionadded:: 0.2.0
    """
    from auditmw.contrib.django_app.models import TABLE, AuditRecord
    from auditmw.integrity.options import verify_records

    rows = AuditRecord.objects.using(using).all()
    return verify_records(_records(rows, TABLE), keys=keys, mac_key=mac_key, **options)


@dataclass(frozen=True, slots=True)
class SegmentVerdict:
    """The verdict on one record's chain segment, as the admin shows it.

    Args:
        verdict: ``clean``, ``tampered``, ``incomplete``, ``not_verified``, or
            ``pending`` (no checkpoint covers the record yet) or ``too_long``.
        summary: one sentence for people.
        findings: ``code: message`` of each finding, location included.

    .. versionadded:: 0.2.0
    """

    verdict: str
    summary: str
    findings: tuple[str, ...] = ()


def verify_record(
    record: AuditRecord,
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
) -> SegmentVerdict:
    """Verify the segment of ``record``'s chain between the checkpoints around it.

    Args:
        record: a stored record.
        keys: the trusted checkpoint keys.
        mac_key: the writer's initial MAC key.

    .. versionadded:: 0.2.0
    """
    from auditmw.contrib.django_app.models import TABLE, AuditRecord
    from auditmw.integrity.options import verify_records

    if not record.chain_id:
        return SegmentVerdict("not_verified", "This record is not chained (integrity is off).")
    chain = AuditRecord.objects.using(record._state.db or "default").filter(
        chain_id=record.chain_id
    )
    checkpoints = chain.filter(kind=CHECKPOINT_KIND)
    cover = checkpoints.filter(id__gte=record.id).order_by("id").first()
    if cover is None:
        return SegmentVerdict(
            "pending", "No checkpoint covers this record yet; it is verified once one is written."
        )
    start = checkpoints.filter(id__lt=record.id).order_by("-id").first()
    segment = chain.filter(id__lte=cover.id, id__gte=0 if start is None else start.id)
    if segment.count() > MAX_SEGMENT:
        return SegmentVerdict(
            "too_long",
            f"The chain segment exceeds {MAX_SEGMENT} records; run 'manage.py auditmw_verify'.",
        )
    as_of_ns = int(cover.time.timestamp() * 1_000_000) * 1000
    report = verify_records(_records(segment, TABLE), keys=keys, mac_key=mac_key, as_of_ns=as_of_ns)
    if start is not None:
        _from_checkpoint(report, start)
    return _verdict(report, cover.id)


def _from_checkpoint(report: Report, start: AuditRecord) -> None:
    """Judge a segment that starts at checkpoint ``start`` on purpose.

    The verifier reports what precedes the segment as ``missing_start``: expected for
    the events up to the checkpoint's ``last_seq`` and the checkpoints before it; any
    event missing after ``last_seq`` was deleted from this segment.
    """
    from auditmw.integrity.reader.report import Finding

    last_seq = int((start.document().get("checkpoint") or {}).get("last_seq", 0))
    kept: list[Finding] = []
    for finding in report.findings:
        if finding.code != "missing_start":
            kept.append(finding)
        elif finding.seq is not None and (finding.seq_end or 0) > last_seq:
            first, end = last_seq + 1, finding.seq_end
            kept.append(Finding("deleted_events", f"events {first}..{end} are missing (deleted)",
                                finding.location, finding.chain_id, first, end))  # fmt: skip
    report.findings[:] = kept


def _verdict(report: Report, cover_id: int) -> SegmentVerdict:
    findings = tuple(
        f"{f.code}: {f.message}" + (f" ({f.location})" if f.location else "")
        for f in report.findings
        if f.category != "info"
    )
    summaries = {
        "clean": f"The chain verifies up to the checkpoint in row {cover_id}.",
        "tampered": "The chain does NOT verify: records were changed, removed or inserted.",
        "incomplete": "No tampering found, but the segment is incomplete or unverified.",
        "not_verified": "Not verified: no checkpoint could be checked.",
    }
    return SegmentVerdict(report.verdict, summaries[report.verdict], findings)
