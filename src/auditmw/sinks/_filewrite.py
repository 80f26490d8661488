"""Appends that end at a record boundary, whatever the disk does; the file sink's fault rules.

A full disk (or a file size limit, a quota, an I/O error) can make ``write`` store part
of a batch before it fails.  Left there, the fragment would merge with the next record
into one unparsable line that ``auditmw verify`` must call tampering.  So every append
remembers where it started and, on any failure, truncates the file back to that offset
before the error is reported: a batch is stored whole or not at all, and delivery
retries or spools it.  The caller holds the sink's lock, so no other writer appended
after that offset.

A torn line can still be left by a crash (``SIGKILL``, power loss) in the middle of a
write.  The next writer (every batch checks the last byte, under the lock, since
another process sharing the file may be the one that died) closes that line with
:data:`~auditmw.integrity.layout.TORN_FENCE` and a newline, so the next record starts on a fresh
line and ``verify`` reports the fragment as a crash artefact (``torn_record``), not as
tampering.  The fragment itself is kept: it is evidence of the crash.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import orjson

from auditmw.exceptions import ConfigurationError
from auditmw.integrity.layout import TORN_FENCE

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["append_whole", "check_writable", "fence_torn_tail"]

_CHUNK = 1 << 16


def append_whole(fd: int, data: bytes, *, start: int, sync: bool) -> None:
    """Append ``data`` (looping over short writes), then fsync when ``sync``.

    Args:
        fd: a descriptor opened with ``O_APPEND``, the sink's lock held.
        data: whole records.
        start: the file size before this batch (anything written since is taken back).
        sync: ``fsync`` after the write.

    Raises:
        OSError: the write or the fsync failed; the file was truncated back to ``start``.
    """
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:  # pragma: no cover - a regular file never returns 0 here
                raise OSError(f"write stored {written} bytes")
            view = view[written:]
        if sync:
            os.fsync(fd)
    except OSError:
        take_back(fd, start)
        raise


def take_back(fd: int, start: int) -> None:
    """Truncate to ``start``; if even that fails, the next open fences the torn tail."""
    try:
        os.ftruncate(fd, start)
    except OSError:
        pass  # fence_torn_tail() closes the fragment when the file is next opened


def _last_line(fd: int, size: int) -> bytes:
    """The bytes after the last newline of the file (the whole file if it has none)."""
    end = size
    parts: list[bytes] = []
    while end > 0:
        begin = max(0, end - _CHUNK)
        chunk = os.pread(fd, end - begin, begin)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            parts.append(chunk[cut + 1 :])
            break
        parts.append(chunk)
        end = begin
    return b"".join(reversed(parts))


def _is_record(fragment: bytes) -> bool:
    try:
        return isinstance(orjson.loads(fragment), dict)
    except orjson.JSONDecodeError:
        return False


def fence_torn_tail(fd: int, size: int) -> int:
    """Make the file end at a record boundary; return its size afterwards.

    A last line that is a whole JSON record only lacked its newline; anything else is
    a torn record and gets the fence.  Call with the sink's lock held.

    Args:
        fd: the log file, opened for reading and appending.
        size: its current size.

    Raises:
        OSError: the file cannot be read or the fence cannot be written (nothing of the
            fence stays behind).
    """
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    fence = b"\n" if _is_record(_last_line(fd, size)) else TORN_FENCE + b"\n"
    append_whole(fd, fence, start=size, sync=True)
    return size + len(fence)


def check_writable(path: Path, *, directory: bool) -> None:
    """Refuse, at construction, a log file or directory this process cannot write.

    Args:
        path: the live log file.
        directory: the directory must be writable even when the file exists
            (rotation renames there; the lock sidecar lives there).

    Raises:
        ConfigurationError: naming the path, why, and the fix.
    """
    folder = path.parent
    effective = os.access in os.supports_effective_ids
    exists = path.exists()
    checks = [(path, os.W_OK)] if exists else []
    if directory or not exists:
        checks.insert(0, (folder, os.W_OK | os.X_OK))
    for target, needs in checks:
        if not os.access(target, needs, effective_ids=effective):
            raise ConfigurationError(
                f"FileSink: cannot write the audit log {str(path)!r}: "
                f"{_why(path, target)}, or choose another path",
                setting="path",
            )


def _why(path: Path, target: Path) -> str:
    if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
        return "its filesystem is mounted read-only; mount it read-write"
    if target is path and stat.S_ISDIR(path.stat().st_mode):
        return "it is a directory; give the path of a file"
    kind = "file" if target is path else "directory"
    return (
        f"the {kind} {str(target)!r} is not writable by uid {os.geteuid()}; "
        "chown/chmod it for the service user"
    )
