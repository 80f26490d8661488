"""Real small filesystems for fault tests: a tmpfs of a given size, remountable read-only.

A tmpfs mount needs root (CI runs as root); where ``mount`` is refused the tests that
need a real full or read-only filesystem are skipped with the reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(directory: Path, size: str = "2m", *, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``directory`` for the block; skip when mount is refused."""
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700" + (",ro" if read_only else "")
    done = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield directory
    finally:
        _run("umount", "-l", str(directory))


def remount(directory: Path, *, read_only: bool) -> None:
    """Switch a tmpfs mounted by :func:`tmpfs` between read-only and read-write."""
    mode = "ro" if read_only else "rw"
    done = _run("mount", "-o", f"remount,{mode}", str(directory))
    assert done.returncode == 0, done.stderr


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``directory``, but ``leave`` bytes; return the filler file."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * chunk) < chunk:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        if leave:
            os.ftruncate(fd, os.fstat(fd).st_size - leave)
    finally:
        os.close(fd)
    return filler
