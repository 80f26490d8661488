"""The on-disk spool: an append-only, framed, size-bounded file per sink stream.

While a sink is down, the delivery thread appends each batch to its spool and
replays the records in order once the sink answers again.  Each process owns its
own spool file (``<stream>.<pid>.<random>.spool``), locked before it gets that
name, and holds an exclusive ``flock`` on it for its whole life; a file nobody holds
is an orphan of a dead process, and the next process that starts the same stream
adopts it and replays it first.

Trust: the spool protects against a sink outage and a crash of this process.  It
is local, unencrypted storage with mode ``0600``: it is no place for events the
local host must not see, and it is not tamper evidence (the integrity chain is).

Each record is framed as ``b"AMS1"`` + length (u32 BE) + CRC-32 (u32 BE) + payload,
so a record torn by a crash is detected and skipped, never replayed half, and the
records after it are still replayed; the loss is counted (:meth:`Spool.take_damage`)
for the delivery thread to record as ``audit.events_dropped``.  A write that fails
(a full disk stores part of it first) is taken back, never left torn, and the record
is held in memory until the disk takes it (see :meth:`Spool.append`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from auditmw.core.records import Batch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["Spool", "read_records"]

logger = logging.getLogger("auditmw.delivery")

_MAGIC = b"AMS1"
_HEADER = struct.Struct(">4sII")
_EVENT_KEY = b'"event_id":'


def _encode(batch: Batch) -> bytes:
    payload = orjson.dumps({"e": batch.events, "l": [line.decode("utf-8") for line in batch.lines]})
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _intact(data: bytes, offset: int) -> Batch | None:
    magic, length, crc = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    payload = data[start : start + length]
    if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        record = orjson.loads(payload)
        return Batch(record["e"], [line.encode("utf-8") for line in record["l"]])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None  # a checksum collision on garbage: as torn as any other


def _lost_events(region: bytes) -> int:
    # The events list comes first in a record: a torn one usually still names them all.
    return max(1, region.count(_EVENT_KEY))


def read_records(
    data: bytes, on_damage: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Batch]]:
    """Yield ``(end_offset, batch)`` for each intact record, skipping torn or corrupt ones.

    A damaged region (a record torn by a crash or a failed write, or corrupted) is
    skipped up to the next intact record, so the records after it are still replayed.

    Args:
        data: the spool's bytes.
        on_damage: called once per damaged region with the number of events it held
            (estimated, at least 1), so the loss can be recorded.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Records after a damaged one are read too; ``on_damage`` reports the loss.
    """
    offset = 0
    while offset < len(data):
        batch = _intact(data, offset) if offset + _HEADER.size <= len(data) else None
        if batch is not None:
            offset += _HEADER.size + _HEADER.unpack_from(data, offset)[1]
            yield offset, batch
            continue
        resume = _next_intact(data, offset + 1)
        logger.error("auditmw spool: skipped %d torn or corrupt bytes", resume - offset)
        if on_damage is not None:
            on_damage(_lost_events(data[offset:resume]))
        offset = resume


def _next_intact(data: bytes, offset: int) -> int:
    while (found := data.find(_MAGIC, offset)) >= 0:
        if found + _HEADER.size <= len(data) and _intact(data, found) is not None:
            return found
        offset = found + 1
    return len(data)


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
        self._ours = re.compile(re.escape(self._prefix) + r"\.\d+(?:\.[0-9a-f]+)?\.spool")
        self.max_bytes = max_bytes
        self._damage = 0  # events lost in damaged records, not yet reported
        self._fd, self.path = self._create()
        self._pid = os.getpid()
        self._size = os.fstat(self._fd).st_size
        self._read = 0  # offset of the next record to replay
        # (end offset, batch) of the record peek() returned; end -1: the first held one.
        self._cached: tuple[int, Batch] | None = None
        # Records the disk refused (full, read-only, I/O error), in order after the file's.
        self._held: deque[tuple[bytes, Batch]] = deque()
        self._held_bytes = 0
        try:
            self._adopt_orphans()
        except BaseException:
            self.close()  # unlock; what was adopted so far stays for the next start
            raise

    def _create(self) -> tuple[int, Path]:
        """Create the file locked *before* another process can see it under a spool name.

        It is created under a hidden temporary name, locked, then renamed: a process
        adopting orphans only ever finds spool files that are locked while alive.  The
        random part keeps a restarted process that got the same pid (a container's)
        from taking over a dead one's file, which is adopted instead.
        """
        name = f"{self._prefix}.{os.getpid()}.{os.urandom(4).hex()}.spool"
        temp = self.directory / f".{name}-new"
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temp, self.directory / name)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        return fd, self.directory / name

    @property
    def pending(self) -> bool:
        """Whether records wait to be replayed."""
        return self._read < self._size or bool(self._held)

    def take_damage(self) -> int:
        """Return (and reset) the events lost in damaged records found since the last call.

        .. versionadded:: 0.2.0
        """
        damage, self._damage = self._damage, 0
        return damage

    def _damaged(self, events: int) -> None:
        self._damage += events

    def append(self, batch: Batch) -> bool:
        """Append ``batch`` as one record and fsync; ``False`` when the spool is full.

        A record the disk refuses (full, read-only, an I/O error; a full disk stores part
        of a write before it fails) is taken back from the file and held in memory, in
        order, until the disk takes it: every later append writes the held records
        first.  Held records count against ``max_bytes`` and, like a memory backlog,
        are lost only if the process dies before the disk takes them.  A held record is
        never dropped: dropping an already chained batch would cut a hole in its chain.

        .. versionchanged:: 0.2.0
           A short or failed write is taken back and held, never left torn.
        """
        record = _encode(batch)
        if self._size + self._held_bytes + len(record) > self.max_bytes:
            return False
        if not self._write_held() or not self._write(record):
            self._held.append((record, batch))
            self._held_bytes += len(record)
        return True

    def _write(self, record: bytes) -> bool:
        try:
            view = memoryview(record)
            while view:  # a full disk stores part of a write before it fails
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            self._take_back()
            if not self._held:
                logger.error(
                    "auditmw spool %s cannot be written (%s): holding records in memory",
                    self.path.name,
                    exc.strerror,
                )
            return False
        self._size += len(record)
        return True

    def _write_held(self) -> bool:
        """Move the held records to the file, in order; ``False`` if the disk still refuses."""
        while self._held:
            record, _ = self._held[0]
            if not self._write(record):
                return False
            self._held.popleft()
            self._held_bytes -= len(record)
            if self._cached is not None and self._cached[0] < 0:
                self._cached = None  # it is in the file now: peek() finds it there
        return True

    def _take_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # The torn bytes stay: count them as pending, replay skips them as damage.
            self._size = os.fstat(self._fd).st_size

    def peek(self) -> Batch | None:
        """Return the next record to replay, or ``None`` (also when the rest is torn)."""
        if self._cached is None and self._read < self._size:
            data = os.pread(self._fd, self._size - self._read, self._read)
            for end, batch in read_records(data, self._damaged):
                self._cached = (self._read + end, batch)
                break
            else:
                self._reset()  # only a torn tail is left in the file
        if self._cached is None and self._held:
            self._cached = (-1, self._held[0][1])
        return self._cached[1] if self._cached else None

    def advance(self) -> None:
        """Mark the record returned by :meth:`peek` as delivered."""
        if self._cached is not None:
            end = self._cached[0]
            if end < 0:
                record, _ = self._held.popleft()
                self._held_bytes -= len(record)
            else:
                self._read = end
            self._cached = None
        if self._size and self._read >= self._size:
            self._reset()

    def _reset(self) -> None:
        """Empty the file once everything in it was replayed."""
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            self._read = self._size  # keep the replayed bytes; appends go after them
        else:
            self._size = self._read = 0
        if self._cached is not None and self._cached[0] >= 0:
            self._cached = None

    def _adopt_orphans(self) -> None:
        # A spool file nobody holds a lock on belongs to a dead process: take its
        # intact records into our file (order kept), then remove it.
        for path in sorted(self.directory.iterdir()):
            if path == self.path:
                continue
            # Hidden ``.spool-new`` files are never touched: one may be a starting
            # process's, not locked yet (one left by a crash is empty).
            if self._ours.fullmatch(path.name):
                self._adopt(path)

    def _adopt(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # another process adopted it first
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return  # alive
        try:
            size = os.fstat(fd).st_size
            for _, batch in read_records(os.pread(fd, size, 0), self._damaged):
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
        if not self._write_held():
            logger.error(
                "auditmw spool %s: %d records held in memory are lost: the disk refused them",
                self.path.name,
                len(self._held),
            )
        if not self.pending:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1

    def forget(self) -> None:
        """Drop this (inherited) descriptor without unlocking: used in a forked child."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
