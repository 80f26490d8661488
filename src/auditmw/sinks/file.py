"""Append events to a JSON Lines file, with optional rotation, compression and retention.

Each batch is written with a single ``write`` on a descriptor opened with
``O_APPEND``, so several processes (gunicorn workers) can share one file without
torn or interleaved lines.  The file is created with mode ``0600``.

With rotation on, every batch is written under an exclusive ``flock`` on the
hidden sidecar ``.<file>-lock``, so the processes sharing the file agree on when it
rotates: a writer whose descriptor points to a file another process rotated away
reopens the live one before writing.  Rotated files are named::

    <file>.<UTC time of rotation, YYYYMMDDTHHMMSSZ>.<6-digit sequence>[.gz]

e.g. ``audit.jsonl.20261130T034500Z.000001.gz``: sorting the names sorts the files
in writing order (the sequence keeps increasing within one second), and the live
file comes last.  A file is compressed into a hidden partial file, renamed to its
``.gz`` name when complete; neither helper file looks like a log to a reader
(``auditmw verify`` on the directory skips them).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import fcntl
import gzip
import os
import re
import shutil
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from auditmw.exceptions import ConfigurationError, SinkUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from auditmw.sinks.base import Batch

__all__ = ["FileSink", "rotated_files"]

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


class FileSink:
    """Appends one JSON line per event to ``path``, rotating it by size or time.

    Args:
        path: the JSONL file; its directory must exist.
        format: the stored format.
        fsync: ``"never"`` (the OS decides), ``"batch"`` (after each batch) or
            ``"always"`` (same as batch; every batch is one write).
        mode: permission bits for new files (also the lock file).
        rotate_bytes: rotate before a batch would grow the file beyond this size.
        rotate_interval: rotate at the first write in a new window of this many
            seconds (``3600`` rotates hourly, on the hour, UTC).
        compress: gzip rotated files.
        max_files: keep at most this many rotated files (oldest deleted first).
        max_age_days: delete rotated files older than this many days.
        delivery_mode: ``"durable"`` or ``"async"`` to override the delivery mode for
            this sink; ``None`` follows ``DeliveryOptions.mode``.

    Raises:
        ConfigurationError: an option is invalid or the directory does not exist.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auditmw",
        fsync: Fsync = "batch",
        mode: int = 0o600,
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
        if not self.path.parent.is_dir():
            raise ConfigurationError(
                f"FileSink: directory {str(self.path.parent)!r} does not exist; create it first",
                setting="path",
            )
        self.format = format
        self.delivery_mode = delivery_mode
        self._fsync = fsync != "never"
        self._mode = mode
        self._rotate_bytes = rotate_bytes
        self._interval = rotate_interval
        self._compress = compress
        self._keep = max_files
        self._max_age = None if max_age_days is None else max_age_days * 86_400
        self._rotating = rotate_bytes is not None or rotate_interval is not None
        self._lock_path = self.path.with_name(f".{self.path.name}-lock")
        self._fd: int | None = None
        self._pid = 0

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, self._mode)
            self._pid = os.getpid()
        return self._fd

    def emit(self, batch: Batch) -> None:
        """Append the batch with one ``write`` (and ``fsync`` unless disabled).

        Raises:
            SinkUnavailableError: the file cannot be written.
        """
        data = batch.payload()
        if not data:
            return
        try:
            with self._locked():
                fd = self._open()
                if self._rotating:
                    fd = self._maybe_rotate(fd, len(data))
                written = os.write(fd, data)
                while written < len(data):  # short writes only happen on full disks or signals
                    written += os.write(fd, data[written:])
                if self._fsync:
                    os.fsync(fd)
        except OSError as exc:
            self._close_fd()
            raise SinkUnavailableError(f"cannot append to {self.path}: {exc.strerror}") from exc

    def _locked(self) -> AbstractContextManager[None]:
        return self._flock() if self._rotating else nullcontext()

    @contextmanager
    def _flock(self) -> Iterator[None]:
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
        existing = rotated_files(self.path)
        last = _ROTATED.search(existing[-1].name) if existing else None
        seq = int(last.group(2)) + 1 if last else 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.{stamp}.{seq:06d}")
        os.rename(self.path, target)
        self._close_fd()
        if self._compress:
            self._gzip(target)
        self._retain()

    def _gzip(self, source: Path) -> None:
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

    def _retain(self) -> None:
        files = rotated_files(self.path)
        doomed = files[: max(0, len(files) - self._keep)] if self._keep is not None else []
        if self._max_age is not None:
            horizon = time.time() - self._max_age
            doomed += [f for f in files if f not in doomed and f.stat().st_mtime < horizon]
        for path in doomed:
            path.unlink(missing_ok=True)

    def _close_fd(self) -> None:
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
