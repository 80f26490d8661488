"""Chain state per process lineage: which earlier chain a new chain continues (``state_dir``).

What it trusts: the local file system's ``flock`` (a lock dies with its process) and
the state files under ``state_dir``; a state file only ever names a checkpoint that
the sink already stored, so an intruder editing it can break a restart link (verify
then reports the predecessor's tail) but cannot make a cut tail look complete.

Each stream has numbered *slots* in ``state_dir``.  Slot ``k`` is a lock file
``<stream>[.k].chain.lock`` and a state file ``<stream>[.k].chain.json`` (slot 0 has
no number, the name used before slots existed).  A new chain claims the first slot
whose lock it can take with ``LOCK_EX | LOCK_NB`` and keeps the lock for its whole
life: a live process's slot is never taken over, and a slot whose process exited or
was killed is taken over by exactly one new chain, which links its genesis checkpoint
to the state found there.  Several workers (gunicorn, uvicorn ``--workers``) thus form
several lineages side by side; worker numbers need not be stable.

The state file is replaced atomically (temporary file, ``fsync``, ``rename``,
``fsync`` of the directory), mode 0600, only once the sink reported the batch holding
the checkpoint stored (:meth:`auditmw.sinks.base.Batch.stored`).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import fcntl
import logging
import os
import weakref
from pathlib import Path
from typing import Any

from auditmw.core import process as _process
from auditmw.core.canonical import dumps, loads

__all__ = ["LINK_KEYS", "Slot", "claim", "write_private"]

logger = logging.getLogger("auditmw.integrity")

#: What a state file records, and a genesis checkpoint's ``previous_chain`` repeats.
LINK_KEYS = ("chain_id", "n", "checkpoint", "last_seq", "head")
_REQUIRED = ("chain_id", "n", "checkpoint", "last_seq")  # "head" is absent in 0.1 state
_MAX_SLOTS = 4096  # a guard against a file system where every lock attempt fails


def _safe(stream: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stream)


class Slot:
    """One claimed slot: the lock held for the chain's life, and its state file.

    Args:
        directory: the ``state_dir``.
        stem: the slot's file stem (``<stream>`` or ``<stream>.<k>``).
        fd: the open, locked lock file.

    .. versionadded:: 0.2.0
    """

    def __init__(self, directory: Path, stem: str, fd: int) -> None:
        self.directory = directory
        self.path = directory / f"{stem}.chain.json"
        self._fd = fd
        self._pid = _process.pid
        self._closer = weakref.finalize(self, os.close, fd)
        _slots.add(self)

    @property
    def held(self) -> bool:
        """Whether this process still holds the slot (not released, not a forked copy)."""
        return self._closer.alive and self._pid == _process.pid

    def read(self) -> dict[str, Any] | None:
        """Return the predecessor's link (:data:`LINK_KEYS`), or ``None``."""
        try:
            state = loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # An unreadable state only loses the restart link; verify then reports
            # the predecessor as stopped without a successor.
            logger.error("auditmw ignores the chain state %s: %s", self.path, exc)
            return None
        if not isinstance(state, dict) or not all(key in state for key in _REQUIRED):
            logger.error("auditmw ignores the chain state %s: not a chain state", self.path)
            return None
        return {key: state[key] for key in LINK_KEYS if key in state}

    def write(self, state: dict[str, Any]) -> None:
        """Replace the state file atomically and durably; log (never raise) on failure."""
        if not self.held:
            return
        try:
            write_private(self.path, dumps(state))
        except OSError as exc:
            logger.error("auditmw cannot write the chain state %s: %s", self.path, exc.strerror)

    def release(self) -> None:
        """Unlock the slot, so that the next chain (of any process) continues this one."""
        if self._pid == _process.pid:
            self._closer()

    def forget(self) -> None:
        """Drop a copy inherited through ``fork``: the lock stays with the parent."""
        if self._pid != _process.pid:
            self._closer()  # closes only the child's descriptor; the parent keeps its lock


_slots: weakref.WeakSet[Slot] = weakref.WeakSet()


def claim(state_dir: str, stream: str) -> Slot | None:
    """Claim the first slot of ``stream`` that no live process holds.

    Returns:
        The claimed slot, or ``None`` (logged) when ``state_dir`` cannot be used.
    """
    directory = Path(state_dir)
    safe = _safe(stream)
    for index in range(_MAX_SLOTS):
        stem = safe if index == 0 else f"{safe}.{index}"
        try:
            fd = os.open(
                directory / f"{stem}.chain.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            logger.error(
                "auditmw cannot use the chain state directory %s (state_dir): %s",
                state_dir,
                exc.strerror,
            )
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live process's lineage: never taken over
            continue
        except OSError as exc:
            os.close(fd)
            logger.error(
                "auditmw cannot lock the chain state in %s (state_dir needs a local file "
                "system with flock): %s",
                state_dir,
                exc.strerror,
            )
            return None
        return Slot(directory, stem, fd)
    logger.error("auditmw found no free chain state slot in %s (state_dir)", state_dir)
    return None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably, readable by the owner only.

    Raises:
        OSError: the file or its directory cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _forget_after_fork() -> None:
    for slot in list(_slots):
        slot.forget()


os.register_at_fork(after_in_child=_forget_after_fork)
