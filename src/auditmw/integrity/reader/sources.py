"""Reading stored records for verification: JSONL files, gzipped or not, and directories.

Files encrypted by :mod:`auditmw.crypto` are decrypted transparently with the key
provider installed by :func:`use_keyring` (``auditmw verify --keyring``); a line
that fails authentication is passed on unchanged, so the verifier reports it.

Other stores (a PostgreSQL table, a JetStream stream) plug into the verifier by yielding
``(Location, bytes)`` pairs in storage order, as :func:`iter_file` does.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import orjson

from auditmw.integrity.layout import find_integrity
from auditmw.integrity.reader.report import Location

if TYPE_CHECKING:
    from auditmw.integrity.crypto import KeyProvider

__all__ = [
    "DEFAULT_MAX_RECORD",
    "Oversized",
    "capped",
    "expand_paths",
    "first_chain",
    "iter_file",
    "iter_files",
    "read_records",
    "rotation_key",
    "use_keyring",
]

# NamedTuple's own __new__ is a Python function; this is the C constructor it wraps.
new_location = tuple.__new__
_ENCRYPTED = b'{"auditmw_encryption"'
_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log")
#: Files that sit next to logs but are not logs: ``IntegrityOptions(state_dir=...)`` state.
_NOT_LOGS = (".chain.json",)
#: Rotated names written by :class:`~auditmw.sinks.FileSink` (``<file>.<stamp>.<seq>[.gz]``)
#: and by logrotate (``<file>.<n>[.gz]``, higher is older).
_ROTATED = re.compile(r"\.(\d{8}T\d{6}Z)\.(\d{6})(\.gz)?$")
_NUMBERED = re.compile(r"\.(\d{1,6})(\.gz)?$")
#: Called with (bytes read so far, total bytes) while reading.
Progress = Callable[[int, int], None]
#: The default cap on one stored record (``--max-record-bytes``).
DEFAULT_MAX_RECORD: Final = 16 * 1024 * 1024
_CHUNK = 1 << 20
#: Past this many blank lines in a chunk, records are found with a regex, not a split.
_BLANK_RUN = 4096
_NON_EMPTY = re.compile(rb"[^\n]+")
_BLANKS = b"\n" * 64  # cheap to look for: absent from any ordinary chunk


class Oversized(bytes):
    """Stands for a record longer than the cap: empty, with the record's length in ``size``.

    Readers skip the record without holding it; the verifier reports it as
    ``oversized_record``, other commands treat it as an unreadable line.

    .. versionadded:: 0.2.0
    """

    size: int


def _oversized(size: int) -> Oversized:
    marker = Oversized()
    marker.size = size
    return marker


# Process-wide on purpose: ``verify --jobs`` workers are forked and inherit it.
_keyring: KeyProvider | None = None


@contextmanager
def use_keyring(provider: KeyProvider | None) -> Iterator[None]:
    """Decrypt encrypted files with ``provider`` while the block runs.

    .. versionadded:: 0.1.0
    """
    global _keyring
    previous, _keyring = _keyring, provider
    try:
        yield
    finally:
        _keyring = previous


def capped(line: bytes, limit: int) -> bytes:
    """Return ``line``, or an :class:`Oversized` marker when it is longer than ``limit``.

    .. versionadded:: 0.2.0
    """
    return line if len(line) <= limit else _oversized(len(line))


def _split(body: bytes, number: int, limit: int) -> tuple[list[tuple[int, bytes]], int]:
    """Return the non-empty lines of ``body`` numbered from ``number``, and its line count.

    ``body`` holds whole lines without the final newline.
    """
    if _BLANKS in body and body.count(b"\n\n") > _BLANK_RUN:
        # Runs of blank lines: find the records in C rather than loop over every line.
        count = body.count(b"\n") + 1
        if not body.translate(None, b"\n"):
            return [], count  # nothing but newlines
        found, at, line_no = [], 0, number
        for match in _NON_EMPTY.finditer(body):
            line_no += body.count(b"\n", at, match.start())
            at = match.start()
            found.append((line_no, capped(match.group(), limit)))
        return found, count
    parts = body.split(b"\n")
    if len(body) <= limit:  # no line can be over the cap
        return [(n, line) for n, line in enumerate(parts, number) if line], len(parts)
    return [(n, capped(line, limit)) for n, line in enumerate(parts, number) if line], len(parts)


def read_records(
    read: Callable[[int], bytes], limit: int = DEFAULT_MAX_RECORD
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` for each non-empty line read by ``read(size)``.

    Memory stays bounded by ``limit`` and the chunk size whatever the input: a line
    longer than ``limit`` is discarded as it streams by and yielded as an
    :class:`Oversized` marker.

    .. versionadded:: 0.2.0
    """
    # Records are produced a chunk at a time and flattened in C: no Python frame per line.
    return itertools.chain.from_iterable(_chunks(read, limit))


def _chunks(read: Callable[[int], bytes], limit: int) -> Iterator[list[tuple[int, bytes]]]:
    parts: list[bytes] = []  # the line being assembled across chunks
    number, held, skipping = 1, 0, -1  # skipping: length so far of an oversized line
    while chunk := read(_CHUNK):
        start = 0
        if parts or skipping >= 0:
            end = chunk.find(b"\n")
            if end < 0:
                parts, held, skipping = _carry(parts, held, skipping, chunk, limit)
                continue
            parts, held, skipping = _carry(parts, held, skipping, chunk[:end], limit)
            if skipping >= 0:
                yield [(number, _oversized(skipping))]
            elif held:
                yield [(number, b"".join(parts))]
            number, parts, held, skipping, start = number + 1, [], 0, -1, end + 1
        last = chunk.rfind(b"\n", start)
        if last >= 0:
            found, count = _split(chunk[start:last], number, limit)
            yield found
            number += count
            start = last + 1
        parts, held, skipping = _carry([], 0, -1, chunk[start:], limit)
    if skipping >= 0:
        yield [(number, _oversized(skipping))]
    elif held:
        yield [(number, b"".join(parts))]


def _carry(
    parts: list[bytes], held: int, skipping: int, piece: bytes, limit: int
) -> tuple[list[bytes], int, int]:
    """Add ``piece`` to the line being assembled, or to the length of the one skipped."""
    if skipping >= 0:
        return parts, 0, skipping + len(piece)
    if held + len(piece) > limit:
        return [], 0, held + len(piece)
    if piece:
        parts.append(piece)
    return parts, held + len(piece), -1


def _raw_lines(records: Iterator[tuple[int, bytes]], previous: int) -> Iterator[bytes]:
    """Rebuild the stored lines after line ``previous - 1``, newline included.

    Encrypted lines are bound to their byte offset, so blank lines must count too.
    """
    for number, line in records:
        blank = number - previous
        while blank > 0:  # blank lines still advance the offset
            yield b"\n" * min(blank, _CHUNK)
            blank -= _CHUNK
        previous = number + 1
        yield line + b"\n"


def _plain(
    stream: IO[bytes], path: Path, strict: bool = False, limit: int = DEFAULT_MAX_RECORD
) -> Iterator[tuple[int, bytes]]:
    """The numbered records of ``stream``, decrypted when it starts with an encryption header."""
    records = read_records(stream.read, limit)
    first = next(records, None)
    if first is None:
        return iter(())
    if first[0] == 1 and first[1].startswith(_ENCRYPTED):
        from auditmw.integrity.crypto import parse_header  # needs cryptography

        header = first[1] + b"\n"
        if parse_header(header) is not None:
            return _decrypted(header, records, path, strict, limit)
    return itertools.chain((first,), records)


def _decrypted(
    header: bytes, records: Iterator[tuple[int, bytes]], path: Path, strict: bool, limit: int
) -> Iterator[tuple[int, bytes]]:
    from auditmw.integrity.crypto import decrypt_lines

    plain = decrypt_lines(header, _raw_lines(records, 2), _keyring, str(path), strict=strict)
    for number, line in enumerate(plain, 1):
        record = line[:-1] if line.endswith(b"\n") else line
        if record:
            yield number, capped(record, limit)


def _is_log(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    if name.endswith(_NOT_LOGS):
        return False
    return any(name.endswith(suffix) or f"{suffix}." in name for suffix in _SUFFIXES)


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    if gzipped:
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw, raw


def _position(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    integrity = find_integrity(doc)
    if isinstance(integrity, dict) and "seal" not in doc:
        return str(integrity.get("chain_id", ""))
    body = doc.get("checkpoint")
    if isinstance(body, dict):
        return str(body.get("chain_id", ""))
    return None


def first_chain(path: Path) -> str:
    """Return the chain id of the first chained record of ``path`` (``""`` if none)."""
    raw, stream = _open(path)
    with raw, stream:
        for _, line in _plain(stream, path):
            try:
                found = _position(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if found is not None:
                return found
    return ""


def rotation_key(path: Path) -> tuple[str, str, int, str, int, str]:
    """Sort key putting a log's rotated files in writing order, the live file last.

    .. versionadded:: 0.2.0
    """
    name = path.name
    rotated = _ROTATED.search(name)
    if rotated:
        return (str(path.parent), name[: rotated.start()], 0, rotated[1], int(rotated[2]), name)
    numbered = _NUMBERED.search(name)
    if numbered and _is_log(path.with_name(name[: numbered.start()])):
        return (str(path.parent), name[: numbered.start()], 0, "", -int(numbered[1]), name)
    return (str(path.parent), name.removesuffix(".gz"), 1, "", 0, name)


def _walk(directory: Path, skipped: list[Path]) -> Iterator[Path]:
    for root, dirs, names in os.walk(directory, followlinks=False):
        here = Path(root)
        skipped.extend(here / d for d in sorted(dirs) if (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            if path.is_symlink():
                skipped.append(path)
            elif path.is_file() and _is_log(path):
                yield path


def expand_paths(
    paths: Iterable[str | os.PathLike[str]], *, skipped: list[Path] | None = None
) -> list[Path]:
    """Expand directories into their log files and order them in writing order.

    Rotated files (``audit.jsonl.20261130T034500Z.000001.gz`` as written by
    :class:`~auditmw.sinks.FileSink`, or ``audit.jsonl.1.gz``) come in rotation order,
    oldest first, before their live file.  Symbolic links found inside a directory
    are not followed: they are left out and appended to ``skipped``.  State files
    (``*.chain.json``) are not logs and are left out.

    Args:
        paths: files and directories.
        skipped: receives the symbolic links left out (``.. versionadded:: 0.2.0``).

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    files: list[Path] = []
    links: list[Path] = [] if skipped is None else skipped
    for item in map(Path, paths):
        if item.is_dir():
            files.extend(_walk(item, links))
        elif item.exists():
            files.append(item)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return sorted(dict.fromkeys(files), key=rotation_key)


def iter_file(
    path: Path,
    progress: Callable[[int], None] | None = None,
    *,
    strict: bool = False,
    max_record_bytes: int = DEFAULT_MAX_RECORD,
) -> Iterator[tuple[Location, bytes]]:
    """Yield ``(Location, line)`` for every non-empty line of ``path`` (gzip detected).

    Args:
        path: the file.
        progress: called now and then with the raw bytes read so far.
        strict: raise :class:`~auditmw.crypto.DecryptionError` on an encrypted line
            that fails authentication, instead of yielding it unchanged.
        max_record_bytes: a longer line is yielded as an :class:`Oversized` marker,
            never held in memory (``.. versionadded:: 0.2.0``).

    .. versionadded:: 0.1.0
    """
    source = str(path)
    raw, stream = _open(path)
    with raw, stream:
        tick = 0
        for number, line in _plain(stream, path, strict, max_record_bytes):
            yield new_location(Location, (source, number)), line
            if progress is not None and number >= tick:
                tick = number + 16384
                progress(raw.tell())
    if progress is not None:
        progress(path.stat().st_size)


def iter_files(
    paths: Iterable[Path],
    progress: Progress | None = None,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD,
) -> Iterator[tuple[Location, bytes]]:
    """Yield the records of ``paths`` in order, reporting progress over their total size.

    Args:
        paths: the files, in reading order.
        progress: called with (bytes read, total bytes).
        max_record_bytes: see :func:`iter_file` (``.. versionadded:: 0.2.0``).

    .. versionadded:: 0.1.0
    """
    files = list(paths)
    total = sum(p.stat().st_size for p in files)
    done = 0
    for path in files:
        base = done
        report = None if progress is None else (lambda n, base=base: progress(base + n, total))
        yield from iter_file(path, report, max_record_bytes=max_record_bytes)
        done += path.stat().st_size
