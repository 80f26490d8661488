"""Reconciling checkpoints with the events present, and judging the input as a whole.

A checkpoint commits to ``first_seq..last_seq``: every one of those events must be in
the input.  Gaps between events present are found while reading (``deleted_events``
from the holes); here the events a checkpoint covers *after the last event present*
(a deleted tail, or every event deleted) are reported, since no later event reveals
them.  An input with no record, or with no checkpoint at all, verifies nothing: it gets
a ``no_records`` / ``no_checkpoint`` finding and the ``not_verified`` verdict.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditmw.integrity.reader.report import Finding

if TYPE_CHECKING:
    from auditmw.integrity.reader.chainstate import ChainState, Checkpoint
    from auditmw.integrity.reader.verify import Reader

__all__ = ["check_input", "check_tail_coverage"]


def check_tail_coverage(reader: Reader, chain: ChainState) -> None:
    """Report the events intact checkpoints cover beyond the last event present."""
    ranges = [cp for cp in chain.checkpoints if cp.intact and cp.last >= cp.first]
    if not ranges:
        return
    top = max(cp.last for cp in ranges)
    start = chain.max_seq() + 1
    if not chain.has_genesis and start == 1:
        # Retention may have removed the files holding the start of the first range
        # present (reported as missing_start); later ranges must all be here.
        lowest = min(ranges, key=lambda cp: cp.n)
        start = lowest.last + 1
    if start > top:
        return
    owner = _owner(ranges, start)
    reader.flag(
        "deleted_events",
        f"events {start}..{top} are missing (deleted): checkpoint {owner.n} "
        f"commits to events up to {owner.last}",
        owner.location,
        chain,
        start,
        top,
    )
    chain.breaks.append(start)


def _owner(ranges: list[Checkpoint], seq: int) -> Checkpoint:
    covering = [cp for cp in ranges if cp.first <= seq <= cp.last]
    return min(covering or ranges, key=lambda cp: (cp.n, str(cp.location)))


def check_input(reader: Reader, *, allow_empty: bool) -> None:
    """Report an input that holds no record, or no checkpoint at all."""
    report = reader.report
    if report.records == 0:
        if not allow_empty:
            report.add(
                Finding(
                    "no_records",
                    "NOT VERIFIED: the input holds no audit records "
                    "(pass --allow-empty if an empty input is expected)",
                )
            )
        return
    if not any(cp.intact for chain in reader.chains.values() for cp in chain.checkpoints):
        report.add(
            Finding(
                "no_checkpoint",
                "NOT VERIFIED: the input holds no intact checkpoint, so no event can be "
                "verified (integrity off, or every checkpoint removed)",
            )
        )
