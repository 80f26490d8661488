"""Writing output files without clobbering anything by accident.

Trust: the output path is given by the user, but the directory it names may be shared
(a CI workspace, ``/tmp``) and the path may already be a symlink planted by someone
else.  A file is therefore never written *through* a symlink, and an existing path
is replaced only with ``--force``, and then atomically (a temporary file in the same
directory renamed over it, which replaces a symlink itself, never its target).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from auditmw.exceptions import ConfigurationError

__all__ = ["write_output"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def write_output(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to a new file at ``path`` (mode 0644 less the umask).

    Args:
        path: the output file.
        data: its content.
        force: replace an existing file (atomically; a symlink is replaced, not followed).

    Raises:
        ConfigurationError: ``path`` exists (or is a symlink) and ``force`` is false,
            or ``path`` is a directory.
        OSError: the file cannot be written.

    .. versionadded:: 0.2.0
    """
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise ConfigurationError(
            f"{target} is a directory; give a file name with -o/--output", setting="--output"
        )
    if force:
        _replace(target, data)
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except FileExistsError:
        raise ConfigurationError(
            f"{target} already exists; pass --force to replace it, or choose another "
            "file with -o/--output",
            setting="--force",
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        # No half-written report left behind (a full disk, an interrupt).
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def _replace(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
