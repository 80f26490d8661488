"""The on-disk spool: an append-only, framed, size-bounded file per sink stream.

While a sink is down, the delivery thread appends each batch to its spool and
replays the records in order once the sink answers again.  Each process owns its
own spool file (``<stream>.<pid>.spool``) and holds an exclusive ``flock`` on it for
its whole life; a file nobody holds is an orphan of a dead process, and the next
process that starts the same stream adopts it and replays it first.

Trust: the spool protects against a sink outage and a crash of this process.  It
is local, unencrypted storage with mode ``0600``: it is no place for events the
local host must not see, and it is not tamper evidence (the integrity chain is).

Each record is framed as ``b"AMS1"`` + length (u32 BE) + CRC-32 (u32 BE) + payload,
so a record torn by a crash is detected and skipped, never replayed half.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Spool", "read_records"]

logger = logging.getLogger("auditmw.delivery")

_MAGIC = b"AMS1"
_HEADER = struct.Struct(">4sII")


def _encode(batch: Batch) -> bytes:
    payload = orjson.dumps({"e": batch.events, "l": [line.decode("utf-8") for line in batch.lines]})
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_records(data: bytes) -> Iterator[tuple[int, Batch]]:
    """Yield ``(end_offset, batch)`` for each intact record; stop at the first torn one.

    .. versionadded:: 0.1.0
    """
    offset = 0
    while offset + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            break
        record = orjson.loads(payload)
        offset = start + length
        yield offset, Batch(record["e"], [line.encode("utf-8") for line in record["l"]])
    if offset < len(data):
        logger.error(
            "auditmw spool: skipped a torn or corrupt tail of %d bytes", len(data) - offset
        )


def _safe(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stream)


class Spool:
    """One stream's spool file, owned (locked) by this process.

    Args:
        directory: where spool files live; created if missing (mode ``0700``).
        stream: the sink stream's name (``PostgresSink:0``).
        max_bytes: the file never grows beyond this size.

    Raises:
        OSError: the directory or the file cannot be created or locked.

    .. versionadded:: 0.1.0
    """

    def __init__(self, directory: str | os.PathLike[str], stream: str, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prefix = _safe(stream)
        self.path = self.directory / f"{self._prefix}.{os.getpid()}.spool"
        self.max_bytes = max_bytes
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._pid = os.getpid()
        self._size = os.fstat(self._fd).st_size
        self._read = 0  # offset of the next record to replay
        self._cached: tuple[int, Batch] | None = None
        self._adopt_orphans()

    @property
    def pending(self) -> bool:
        """Whether records wait to be replayed."""
        return self._read < self._size

    def append(self, batch: Batch) -> bool:
        """Append ``batch`` as one record and fsync; ``False`` when the spool is full."""
        record = _encode(batch)
        if self._size + len(record) > self.max_bytes:
            return False
        os.write(self._fd, record)
        os.fsync(self._fd)
        self._size += len(record)
        return True

    def peek(self) -> Batch | None:
        """Return the next record to replay, or ``None`` (also when the rest is torn)."""
        if self._cached is None and self.pending:
            data = os.pread(self._fd, self._size - self._read, self._read)
            for end, batch in read_records(data):
                self._cached = (self._read + end, batch)
                break
            else:
                self._reset()  # only a torn tail is left
                return None
        return self._cached[1] if self._cached else None

    def advance(self) -> None:
        """Mark the record returned by :meth:`peek` as delivered."""
        if self._cached is not None:
            self._read, self._cached = self._cached[0], None
        if not self.pending:
            self._reset()

    def _reset(self) -> None:
        os.ftruncate(self._fd, 0)
        self._size = self._read = 0
        self._cached = None

    def _adopt_orphans(self) -> None:
        # A spool file nobody holds a lock on belongs to a dead process: take its
        # intact records into our file (order kept), then remove it.
        for path in sorted(self.directory.glob(f"{self._prefix}.*.spool")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process adopted it first
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                size = os.fstat(fd).st_size
                for _, batch in read_records(os.pread(fd, size, 0)):
                    if not self.append(batch):
                        logger.error("auditmw spool full while adopting %s", path.name)
                        break
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Release the file; an empty spool is removed, a pending one stays for the next start."""
        if self._fd < 0 or self._pid != os.getpid():
            self._fd = -1
            return
        if not self.pending:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1

    def forget(self) -> None:
        """Drop this (inherited) descriptor without unlocking: used in a forked child."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
