"""Entry points of the verifier: :func:`verify_records` and :func:`verify_files`.

What it trusts: only ``keys``, ``mac_key`` and ``expected_heads``/``digests`` given by
the caller.  A log that verifies without them is only self-consistent, which an
attacker who rewrites the whole file can also achieve: such events stay "unverified".

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from auditmw.integrity.reader.conclude import ExpectedHead, conclude
from auditmw.integrity.reader.parallel import group_files, read_in_parallel
from auditmw.integrity.reader.report import Finding, Location, Report
from auditmw.integrity.reader.sources import DEFAULT_MAX_RECORD, Progress, expand_paths, iter_files
from auditmw.integrity.reader.verify import Reader

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Sequence

    from auditmw.integrity.keys import KeyRegistry

__all__ = ["verify_files", "verify_records"]


def verify_records(
    records: Iterable[tuple[Location, bytes]],
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    expected_heads: Sequence[ExpectedHead] = (),
    digests: Iterable[tuple[Location, bytes]] = (),
    as_of_ns: int | None = None,
    allow_empty: bool = False,
) -> Report:
    """Verify stored records given in storage order, from any store.

    Args:
        records: ``(location, stored bytes)`` pairs, one per record, in storage order.
        keys: the trusted public keys; without them signatures are not checked.
        mac_key: the initial MAC key the writer was configured with.
        expected_heads: checkpoints kept elsewhere; a log that ends before one is rolled back.
        digests: the records of a digest file (checkpoints kept apart from the log).
        as_of_ns: the time at which an unclosed chain's silence is judged (default: now).
        allow_empty: an input without any record is clean instead of ``not_verified``
            (``.. versionadded:: 0.2.0``).

    .. versionadded:: 0.1.0
    """
    reader = _read(records, keys, mac_key)
    heads = list(expected_heads) + _digest_heads(digests, keys, mac_key)
    conclude(reader, heads, as_of_ns, allow_empty=allow_empty)
    return reader.report


def _read(
    records: Iterable[tuple[Location, bytes]], keys: KeyRegistry | None, mac_key: bytes | None
) -> Reader:
    reader = Reader(Report(), keys, mac_key)
    feed = reader.feed
    for location, line in records:
        feed(location, line)
    return reader


def _digest_heads(
    digests: Iterable[tuple[Location, bytes]], keys: KeyRegistry | None, mac_key: bytes | None
) -> list[ExpectedHead]:
    side = Reader(Report(), keys, mac_key)
    heads = []
    for location, line in digests:
        side.feed(location, line)
        for chain in side.chains.values():
            while chain.checkpoints:
                cp = chain.checkpoints.pop()
                if cp.trusted:
                    heads.append(ExpectedHead(chain.chain_id, cp.n, cp.hash, location))
    return heads


def verify_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    keys: KeyRegistry | None = None,
    mac_key: bytes | None = None,
    expected_heads: Sequence[ExpectedHead] = (),
    digest_paths: Iterable[str | os.PathLike[str]] = (),
    as_of_ns: int | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    allow_empty: bool = False,
    max_record_bytes: int = DEFAULT_MAX_RECORD,
) -> Report:
    """Verify JSONL files (gzipped or not) and directories of them as one input.

    Args:
        paths: files and directories; their files are read oldest first.
        keys: the trusted public keys.
        mac_key: the initial MAC key.
        expected_heads: checkpoints kept elsewhere.
        digest_paths: digest files written with ``IntegrityOptions(digest_path=...)``.
        as_of_ns: the time at which an unclosed chain's silence is judged.
        progress: called with (bytes read, total bytes) while reading.
        jobs: processes reading files of different chains in parallel; the result is
            the same as with one.
        allow_empty: an input without any record is clean instead of ``not_verified``
            (``.. versionadded:: 0.2.0``).
        max_record_bytes: a longer record is skipped unread and reported as
            ``oversized_record`` (``.. versionadded:: 0.2.0``).

    Raises:
        FileNotFoundError: a path does not exist.
        OSError: a file cannot be read.

    .. versionadded:: 0.1.0
    """
    skipped: list[Path] = []
    files = expand_paths(paths, skipped=skipped)
    digests = iter_files([Path(p) for p in digest_paths], max_record_bytes=max_record_bytes)
    heads = list(expected_heads) + _digest_heads(digests, keys, mac_key)
    reader = None
    groups = group_files(files) if jobs > 1 else []
    if len(groups) > 1:
        reader = read_in_parallel(groups, keys, mac_key, jobs, max_record_bytes)
    if reader is None:
        records = iter_files(files, progress, max_record_bytes=max_record_bytes)
        reader = _read(records, keys, mac_key)
    elif progress is not None:
        total = sum(path.stat().st_size for path in files)
        progress(total, total)
    for link in skipped:
        message = f"{link} is a symbolic link and was not read (give its target explicitly)"
        reader.report.add(Finding("skipped_symlink", message))
    conclude(reader, heads, as_of_ns, allow_empty=allow_empty)
    return reader.report
