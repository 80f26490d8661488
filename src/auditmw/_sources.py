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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from auditmw._layout import find_integrity
from auditmw._report import Location

if TYPE_CHECKING:
    import os

    from auditmw.crypto import KeyProvider

__all__ = ["expand_paths", "first_chain", "iter_file", "iter_files", "use_keyring"]

# NamedTuple's own __new__ is a Python function; this is the C constructor it wraps.
new_location = tuple.__new__
_ENCRYPTED = b'{"auditmw_encryption"'
_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log")
#: Called with (bytes read so far, total bytes) while reading.
Progress = Callable[[int, int], None]


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


def _plain(stream: IO[bytes], path: Path, strict: bool = False) -> Iterator[bytes]:
    """The lines of ``stream``, decrypted when it starts with an encryption header."""
    first = stream.readline()
    if first.startswith(_ENCRYPTED):
        from auditmw.crypto import decrypt_lines, parse_header  # needs cryptography

        if parse_header(first) is not None:
            return decrypt_lines(first, stream, _keyring, str(path), strict=strict)
    return itertools.chain((first,), stream)


def _is_log(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return any(name.endswith(suffix) or f"{suffix}." in name for suffix in _SUFFIXES)


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw, raw


def _position(doc: Any) -> tuple[str, float] | None:
    if not isinstance(doc, dict):
        return None
    integrity = find_integrity(doc)
    if isinstance(integrity, dict) and "seal" not in doc:
        return str(integrity.get("chain_id", "")), float(integrity.get("seq", 0))
    body = doc.get("checkpoint")
    if isinstance(body, dict):  # written right after its last event
        return str(body.get("chain_id", "")), float(body.get("last_seq", 0)) + 0.5
    return None


def first_chain(path: Path) -> str:
    """Return the chain id of the first chained record of ``path`` (``""`` if none)."""
    return _first_position(path)[0]


def _first_position(path: Path) -> tuple[str, float]:
    raw, stream = _open(path)
    with raw, stream:
        for line in _plain(stream, path):
            try:
                found = _position(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if found is not None:
                return found
    return ("", 0.0)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand directories into their log files and order them oldest first.

    Files are ordered by the position of their first chained record: its chain id (a
    UUIDv7, so chains sort by start time) then its sequence number.  Rotated files
    (``audit.jsonl.1.gz``, dated names) are thus read in the order they were written,
    whatever their names.

    Args:
        paths: files and directories.

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            files.extend(p for p in sorted(item.rglob("*")) if p.is_file() and _is_log(p))
        elif item.exists():
            files.append(item)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return sorted(files, key=lambda p: (*_first_position(p), str(p)))


def iter_file(
    path: Path, progress: Callable[[int], None] | None = None, *, strict: bool = False
) -> Iterator[tuple[Location, bytes]]:
    """Yield ``(Location, line)`` for every non-empty line of ``path`` (gzip detected).

    Args:
        path: the file.
        progress: called now and then with the raw bytes read so far.
        strict: raise :class:`~auditmw.crypto.DecryptionError` on an encrypted line
            that fails authentication, instead of yielding it unchanged.

    .. versionadded:: 0.1.0
    """
    source = str(path)
    raw, stream = _open(path)
    with raw, stream:
        for number, raw_line in enumerate(_plain(stream, path, strict), 1):
            line = raw_line[:-1] if raw_line.endswith(b"\n") else raw_line
            if line:
                yield new_location(Location, (source, number)), line
            if progress is not None and number % 16384 == 0:
                progress(raw.tell())
    if progress is not None:
        progress(path.stat().st_size)


def iter_files(
    paths: Iterable[Path], progress: Progress | None = None
) -> Iterator[tuple[Location, bytes]]:
    """Yield the records of ``paths`` in order, reporting progress over their total size.

    .. versionadded:: 0.1.0
    """
    files = list(paths)
    total = sum(p.stat().st_size for p in files)
    done = 0
    for path in files:
        base = done
        report = None if progress is None else (lambda n, base=base: progress(base + n, total))
        yield from iter_file(path, report)
        done += path.stat().st_size
