"""Append events to a JSON Lines file.

Each batch is written with a single ``write`` on a descriptor opened with
``O_APPEND``, so several processes (gunicorn workers) can share one file without
torn or interleaved lines.  The file is created with mode ``0600``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from auditmw.exceptions import ConfigurationError, SinkUnavailableError

if TYPE_CHECKING:
    from auditmw.sinks.base import Batch

__all__ = ["FileSink"]

Fsync = Literal["never", "batch", "always"]


class FileSink:
    """Appends one JSON line per event to ``path``.

    Args:
        path: the JSONL file; its directory must exist.
        format: the stored format.
        fsync: ``"never"`` (the OS decides), ``"batch"`` (after each batch) or
            ``"always"`` (same as batch; every batch is one write).
        mode: permission bits for a new file.

    Raises:
        ConfigurationError: ``fsync`` is invalid or the directory does not exist.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auditmw",
        fsync: Fsync = "batch",
        mode: int = 0o600,
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ConfigurationError(
                f"FileSink fsync must be 'never', 'batch' or 'always', got {fsync!r}",
                setting="fsync",
            )
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ConfigurationError(
                f"FileSink: directory {str(self.path.parent)!r} does not exist; create it first",
                setting="path",
            )
        self.format = format
        self._fsync = fsync != "never"
        self._mode = mode
        self._fd: int | None = None
        self._pid = 0

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, self._mode)
            self._pid = os.getpid()
        return self._fd

    def emit(self, batch: Batch) -> None:
        """Append the batch with one ``write`` (and ``fsync`` unless disabled)."""
        data = batch.payload()
        if not data:
            return
        try:
            fd = self._open()
            written = os.write(fd, data)
            while written < len(data):  # short writes only happen on full disks or signals
                written += os.write(fd, data[written:])
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            self._close_fd()
            raise SinkUnavailableError(f"cannot append to {self.path}: {exc.strerror}") from exc

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
