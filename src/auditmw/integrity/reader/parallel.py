"""Verifying several chains in parallel processes, one group of files per chain.

Files are grouped by the chain of their first record (each worker writing its own file,
or rotated files of one stream).  Each group is read in its own process; the main
process merges what they read and draws the conclusions.  When a chain turns out to
span several groups (interleaved writers), the input is read again in one process, so
the result is always the one a sequential run gives.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from auditmw.integrity.reader.report import Report
from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD, first_chain, iter_files
from auditmw.integrity.reader.verify import Reader

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.integrity.keys import KeyRegistry
    from auditmw.integrity.reader.chainstate import ChainState

__all__ = ["group_files", "read_in_parallel"]


def group_files(files: list[Path]) -> list[list[Path]]:
    """Group ``files`` (already in reading order) by the chain of their first record."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(first_chain(path), []).append(path)
    return list(groups.values())


def _read_group(
    files: list[Path], keys: KeyRegistry | None, mac_key: bytes | None, limit: int
) -> tuple[Report, dict[str, ChainState], set[str]]:
    reader = Reader(Report(), keys, mac_key)
    for location, line in iter_files(files, max_record_bytes=limit):
        reader.feed(location, line)
    return reader.report, reader.chains, reader.unchecked


def read_in_parallel(
    groups: list[list[Path]],
    keys: KeyRegistry | None,
    mac_key: bytes | None,
    jobs: int,
    limit: int = DEFAULT_MAX_RECORD,
) -> Reader | None:
    """Read each group in a worker process; ``None`` when a chain spans two groups."""
    merged = Reader(Report(), keys, mac_key)
    count = len(groups)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(
            pool.map(_read_group, groups, [keys] * count, [mac_key] * count, [limit] * count)
        )
    for report, chains, unchecked in results:
        if merged.chains.keys() & chains.keys():
            return None
        merged.chains.update(chains)
        merged.unchecked |= unchecked
        merged.report.records += report.records
        for finding in report.findings:
            merged.report.add(finding)
        for code, extra in report.suppressed.items():
            merged.report.suppressed[code] = merged.report.suppressed.get(code, 0) + extra
            merged.report.count_suppressed(code, extra)
    return merged
