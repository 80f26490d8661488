"""Append events to a JSON Lines file, with optional rotation, compression and retention.

Each batch is appended under an exclusive ``flock`` (on the file itself; with
rotation or encryption on the hidden sidecar ``.<file>-lock``), on a descriptor
opened with ``O_APPEND``, so several processes (gunicorn workers) can share one
file without torn or interleaved lines.  A batch is stored whole or not at all:
when the disk is full (or the write fails for any other reason) the file is
truncated back to where the batch began before the error is raised, and a torn
last line left by a crash is fenced before the next batch (see
:mod:`auditmw.sinks._filewrite`).  The file is created with mode ``0600``
(``0640`` with ``group_read=True``), its directory ``0700`` when the sink creates
it (``create_dir=True``), and rotated files are made read-only (``0400``/``0440``).
A world-writable directory is refused: anyone could replace the log there.
With ``encryption=`` (a :class:`~auditmw.crypto.KeyProvider`) every file is
encrypted with its own data key; see :mod:`auditmw.crypto`.

With rotation on, the same lock makes the processes sharing the file agree on
when it rotates: a writer whose descriptor points to a file another process
rotated away reopens the live one before writing.  Rotated files are named::

    <file>.<UTC time of rotation, YYYYMMDDTHHMMSSZ>.<6-digit sequence>[.gz]

e.g. ``audit.jsonl.20261130T034500Z.000001.gz``: sorting the names sorts the files
in writing order (the sequence keeps increasing within one second), and the live
file comes last.  A file is compressed into a hidden partial file, renamed to its
``.gz`` name when complete (when the disk is too full to compress, the rotated file
stays uncompressed and the partial file is removed); neither helper file looks like
a log to a reader (``auditmw verify`` on the directory skips them).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import fcntl
import gzip
import logging
import os
import re
import shutil
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from auditmw.exceptions import ConfigurationError, SinkUnavailableError
from auditmw.sinks._filewrite import append_whole, check_writable, fence_torn_tail

if TYPE_CHECKING:
    from collections.abc import Iterator

    from auditmw.integrity.crypto import KeyProvider, SegmentKey
    from auditmw.sinks.base import Batch

__all__ = ["FileSink", "rotated_files"]

logger = logging.getLogger("auditmw.delivery")

Fsync = Literal["never", "batch", "always"]
_ROTATED = re.compile(r"\.(\d{8}T\d{6}Z)\.(\d{6})(\.gz)?$")


def rotated_files(path: str | os.PathLike[str]) -> list[Path]:
    """Return the rotated files of ``path`` in writing order (oldest first).

    The live file itself is not included; append it to read the whole stream.

    .. versionadded:: 0.1.0
    """
    live = Path(path)
    found = []
    for candidate in live.parent.glob(live.name + ".*"):
        match = _ROTATED.fullmatch(candidate.name[len(live.name) :])
        if match:
            found.append((match.group(1), match.group(2), candidate))
    return [entry[2] for entry in sorted(found)]


def _check_directory(directory: Path, *, create: bool, allow: bool) -> None:
    if not directory.is_dir():
        if not create:
            raise ConfigurationError(
                f"FileSink: directory {str(directory)!r} does not exist; create it first "
                "or pass create_dir=True",
                setting="path",
            )
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"FileSink: cannot create the directory {str(directory)!r}: {exc.strerror}; "
                "create it for the service user or choose another path",
                setting="path",
            ) from exc
    if not allow and directory.stat().st_mode & stat.S_IWOTH:
        raise ConfigurationError(
            f"FileSink: directory {str(directory)!r} is world-writable, so anyone could "
            "replace or remove the audit log; use a directory only the service can write "
            "(chmod o-w) or pass allow_world_writable=True",
            setting="allow_world_writable",
        )


class FileSink:
    """Appends one JSON line per event to ``path``, rotating it by size or time.

    Args:
        path: the JSONL file; its directory must exist.
        format: the stored format.
        fsync: ``"never"`` (the OS decides), ``"batch"`` (after each batch) or
            ``"always"`` (same as batch; every batch is one write).
        mode: permission bits for new files (also the lock file).
        group_read: add group read (``0640``, rotated ``0440``) so a log-shipper
            group can read the files.
        create_dir: create the directory (mode ``0700``) when missing.
        allow_world_writable: accept a world-writable directory (``o+w``), e.g. one
            with the sticky bit you have reviewed; refused by default.
        encryption: encrypt every file with a fresh data key wrapped by this key
            provider (a :class:`~auditmw.crypto.Keyring`).
        rotate_bytes: rotate before a batch would grow the file beyond this size.
        rotate_interval: rotate at the first write in a new window of this many
            seconds (``3600`` rotates hourly, on the hour, UTC).
        compress: gzip rotated files.
        max_files: keep at most this many rotated files (oldest deleted first).
        max_age_days: delete rotated files older than this many days.
        delivery_mode: ``"durable"`` or ``"async"`` to override the delivery mode for
            this sink; ``None`` follows ``DeliveryOptions.mode``.

    Raises:
        ConfigurationError: an option is invalid, or the directory does not exist, is
            world-writable, or this process cannot write the directory or the file
            (e.g. a read-only mount): found at start, not at the first request.

    .. versionchanged:: 0.2.0
       A failed or short write is taken back (the file always ends at a record
       boundary), a torn tail left by a crash is fenced, and an unwritable path is
       refused at construction.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auditmw",
        fsync: Fsync = "batch",
        mode: int = 0o600,
        group_read: bool = False,
        create_dir: bool = False,
        allow_world_writable: bool = False,
        encryption: KeyProvider | None = None,
        rotate_bytes: int | None = None,
        rotate_interval: float | None = None,
        compress: bool = True,
        max_files: int | None = None,
        max_age_days: float | None = None,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ConfigurationError(
                f"FileSink fsync must be 'never', 'batch' or 'always', got {fsync!r}",
                setting="fsync",
            )
        for name, value in (
            ("rotate_bytes", rotate_bytes),
            ("rotate_interval", rotate_interval),
            ("max_files", max_files),
            ("max_age_days", max_age_days),
        ):
            if value is not None and value <= 0:
                raise ConfigurationError(
                    f"FileSink {name} must be > 0 or None, got {value!r}", setting=name
                )
        self.path = Path(path)
        _check_directory(self.path.parent, create=create_dir, allow=allow_world_writable)
        self._rotating = rotate_bytes is not None or rotate_interval is not None
        # Rotation renames in the directory, and rotating or encrypted writers lock a
        # sidecar file there; a plain file is locked through its own descriptor.
        self._sidecar = self._rotating or encryption is not None
        check_writable(self.path, directory=self._sidecar)
        self.format = format
        self.delivery_mode = delivery_mode
        self._fsync = fsync != "never"
        self._mode = mode | 0o040 if group_read else mode
        self._encryption = encryption
        self._segment: SegmentKey | None = None  # the data key of the file ``_fd`` is open on
        self._rotate_bytes = rotate_bytes
        self._interval = rotate_interval
        self._compress = compress
        self._keep = max_files
        self._max_age = None if max_age_days is None else max_age_days * 86_400
        self._lock_path = self.path.with_name(f".{self.path.name}-lock")
        self._fd: int | None = None
        self._pid = 0
        self._end = -1  # the file's size after our last append to ``_fd``

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, self._mode)
            self._pid = os.getpid()
            self._end = -1
            self._segment = None  # a forked child may open another file than its parent
        return self._fd

    def _boundary(self, fd: int) -> int:
        """Return where this batch starts, fencing a torn tail first (under the lock).

        Checked before every batch, not only at open: another process sharing the
        file may have been killed in the middle of its write since our last one.  The
        last byte is read only when the file is not as our own last append left it.
        """
        size = os.fstat(fd).st_size
        if size == self._end:
            return size
        fenced = fence_torn_tail(fd, size)
        if fenced != size:
            logger.warning("auditmw: fenced a torn last line in %s", self.path)
        return fenced

    def emit(self, batch: Batch) -> None:
        """Append the batch whole (and ``fsync`` unless disabled), or nothing of it.

        Raises:
            SinkUnavailableError: the file cannot be written; what was written of the
                batch has been taken back, so delivery can retry it.
        """
        data = batch.payload()
        if not data:
            return
        try:
            with self._flock():
                fd = self._open()
                if self._rotating:
                    self._boundary(fd)  # fenced before the file may be rotated away
                    # Encrypted, a batch is stored as base64 (4/3) plus nonce and tag.
                    grow = len(data) if self._encryption is None else len(data) * 4 // 3 + 40
                    fd = self._maybe_rotate(fd, grow)
                # Under the lock nobody else appends: a failure is taken back to here.
                start = self._boundary(fd)
                if self._encryption is not None:
                    data = self._encrypt(fd, data, self._encryption)
                append_whole(fd, data, start=start, sync=self._fsync)
                # Where our batch ended (not tracked when encrypting: a header may precede it).
                self._end = -1 if self._encryption is not None else start + len(data)
        except OSError as exc:
            self._close_fd()  # an encrypted file's header may have been taken back too
            why = exc.strerror or str(exc)
            raise SinkUnavailableError(f"cannot append to {self.path}: {why}") from exc

    @contextmanager
    def _flock(self) -> Iterator[None]:
        if not self._sidecar:
            # The file never changes inode: its own descriptor is the lock, and a
            # directory the service cannot write (e.g. /var/log) still works.
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        lock = os.open(self._lock_path, flags, self._mode)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)  # closing releases the lock

    def _maybe_rotate(self, fd: int, incoming: int) -> int:
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            live = None
        current = os.fstat(fd)
        if live is None or live.st_ino != current.st_ino:  # another process rotated it
            self._close_fd()
            fd = self._open()
            current = os.fstat(fd)
        if current.st_size and self._due(current.st_size + incoming, current.st_mtime):
            self._rotate()
            fd = self._open()
        return fd

    def _due(self, size_after: int, mtime: float) -> bool:
        if self._rotate_bytes is not None and size_after > self._rotate_bytes:
            return True
        if self._interval is not None:
            return int(time.time() // self._interval) != int(mtime // self._interval)
        return False

    def _rotate(self) -> None:
        # The highest sequence, not the last name: after a clock step back (or files
        # renamed by hand) name order and writing order differ, and a reused name
        # would make the rename below overwrite a rotated file.
        seqs = [_ROTATED.search(p.name) for p in rotated_files(self.path)]
        seq = max((int(m.group(2)) for m in seqs if m), default=0) + 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.{stamp}.{seq:06d}")
        os.rename(self.path, target)
        self._close_fd()
        if self._compress:
            target = self._try_gzip(target)
        os.chmod(target, self._mode & 0o444)  # a rotated file is never written again
        self._retain()

    def _try_gzip(self, source: Path) -> Path:
        """Compress ``source``; when the disk is too full, keep it plain (still a log)."""
        try:
            return self._gzip(source)
        except OSError as exc:
            partial = source.with_name("." + source.name.replace(".", "_") + ".gz-partial")
            partial.unlink(missing_ok=True)
            logger.warning("auditmw: kept %s uncompressed: %s", source.name, exc.strerror)
            return source

    def _gzip(self, source: Path) -> Path:
        final = source.with_name(source.name + ".gz")
        partial = source.with_name("." + source.name.replace(".", "_") + ".gz-partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self._mode)
        with source.open("rb") as src, os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                shutil.copyfileobj(src, out, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(partial, final)
        source.unlink()
        return final

    def _encrypt(self, fd: int, data: bytes, provider: KeyProvider) -> bytes:
        from auditmw.integrity.crypto import new_segment, open_segment

        # The segment is tied to the open descriptor (reset whenever it is closed), not
        # to an inode number: a rotated file's inode number can be reused at once.
        if self._segment is None:
            size = os.fstat(fd).st_size
            if size == 0:
                header, segment = new_segment(provider)
                append_whole(fd, header, start=size, sync=False)
                self._segment = segment
            else:  # another process started this file; under the lock, path is our file
                with open(self.path, "rb") as existing:
                    self._segment = open_segment(existing.readline(), provider, str(self.path))
        # Under the lock no one else appends: this is where the line will start.
        return self._segment.encrypt(data, os.fstat(fd).st_size)

    def _retain(self) -> None:
        files = rotated_files(self.path)
        doomed = files[: max(0, len(files) - self._keep)] if self._keep is not None else []
        if self._max_age is not None:
            horizon = time.time() - self._max_age
            doomed += [f for f in files if f not in doomed and f.stat().st_mtime < horizon]
        for path in doomed:
            path.unlink(missing_ok=True)

    def _close_fd(self) -> None:
        self._segment = None
        self._end = -1
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass  # already closed; nothing left to release
        self._fd = None

    def close(self) -> None:
        """Close the file."""
        self._close_fd()

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r}, format={self.format!r})"
