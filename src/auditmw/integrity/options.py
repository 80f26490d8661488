"""The integrity options: what a configuration turns on, and the chain each sink stream gets.

:class:`IntegrityOptions` is the encoder factory the delivery layer asks for each
stream's :class:`~auditmw.integrity.writer.encoder.ChainEncoder`; the byte layout is
described in :mod:`auditmw.integrity`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from auditmw.exceptions import ConfigurationError
from auditmw.integrity.keys import (
    KeyRegistry,
    generate_keypair,
    key_id_for,
    load_mac_key,
    load_signing_key,
    next_master_key,
)
from auditmw.integrity.layout import CHECKPOINT_KIND, integrity_key
from auditmw.integrity.reader.conclude import ExpectedHead
from auditmw.integrity.reader.report import Finding, Location, Report
from auditmw.integrity.reader.run import verify_files, verify_records
from auditmw.integrity.writer.encoder import ChainEncoder

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "CHECKPOINT_KIND",
    "ChainEncoder",
    "ExpectedHead",
    "Finding",
    "IntegrityOptions",
    "KeyRegistry",
    "Location",
    "Report",
    "generate_keypair",
    "integrity_key",
    "verify_files",
    "verify_records",
]


class _MacRatchet:
    """Hands out one master MAC key per new chain, forgetting each one it gave away."""

    def __init__(self, key: bytes) -> None:
        self._key, self._index = key, 0
        self._lock = threading.Lock()
        _ratchets.add(self)

    def reset_lock(self) -> None:
        # A fork while another thread held the lock would leave the child's copy locked.
        self._lock = threading.Lock()

    def take(self) -> tuple[int, bytes]:
        with self._lock:
            taken = (self._index, self._key)
            self._key, self._index = next_master_key(self._key), self._index + 1
        return taken

    def __repr__(self) -> str:
        return "_MacRatchet(<secret>)"


@dataclass(frozen=True)
class IntegrityOptions:
    """How sink streams are chained, MACed and checkpointed.

    The MAC key is consumed: the options keep only a ratcheted value that moves on
    each time a chain is created, so no process keeps the key that verifies earlier
    chains.  Create the options where the encoders are created (in each worker), and
    do not copy them with :func:`dataclasses.replace`, which cannot carry the key over.

    Args:
        signing_key: Ed25519 private key (PEM bytes or key object) signing checkpoints.
        signing_key_file: path of the PEM private key, instead of ``signing_key``.
        mac_key: initial MAC key (≥ 32 bytes, not stored); chain keys derive from it.
        mac_key_file: path of the MAC key file (64 hex digits), instead of ``mac_key``.
        checkpoint_every: events per checkpoint (and per MAC epoch).
        checkpoint_interval_s: seconds between checkpoints, heartbeats included.
        digest_path: file to which every checkpoint is also appended (mode 0600), once
            the sink has stored it.
        state_dir: directory, shared by a deployment's workers, where each chain keeps
            its last stored checkpoint in a slot locked for its process's life; a new
            process takes over one free slot and links its chain to it
            (see ``docs/deployment.md``).

    Raises:
        ConfigurationError: a key cannot be loaded or a number is not positive.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``state_dir`` keeps one slot per process lineage; state
       and digest are written only after the sink stored the checkpoint.
    """

    signing_key: bytes | Ed25519PrivateKey | None = field(default=None, repr=False)
    signing_key_file: str | None = None
    mac_key: InitVar[bytes | None] = None
    mac_key_file: str | None = None
    checkpoint_every: int = 1000
    checkpoint_interval_s: int = 60
    digest_path: str | None = None
    state_dir: str | None = None
    _signer: Ed25519PrivateKey | None = field(default=None, init=False, repr=False, compare=False)
    _ratchet: _MacRatchet | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self, mac_key: bytes | None) -> None:
        if self.checkpoint_every < 1:
            raise ConfigurationError("checkpoint_every must be ≥ 1", setting="checkpoint_every")
        if self.checkpoint_interval_s < 1:
            raise ConfigurationError(
                "checkpoint_interval_s must be ≥ 1", setting="checkpoint_interval_s"
            )
        object.__setattr__(self, "_signer", self._load_signer())
        key = self._load_mac(mac_key)
        object.__setattr__(self, "_ratchet", None if key is None else _MacRatchet(key))

    def _load_signer(self) -> Ed25519PrivateKey | None:
        key = self.signing_key
        if key is None and self.signing_key_file is not None:
            key = _read(self.signing_key_file, "signing_key_file")
        if isinstance(key, bytes):
            return load_signing_key(key)
        return key

    def _load_mac(self, mac_key: bytes | None) -> bytes | None:
        if mac_key is not None:
            return load_mac_key(mac_key)
        if self.mac_key_file is not None:
            data = _read(self.mac_key_file, "mac_key_file")
            return load_mac_key(data, setting="mac_key_file", is_file=True)
        return None

    @property
    def key_id(self) -> str | None:
        """The id of the signing key, or ``None`` when checkpoints are not signed."""
        return None if self._signer is None else key_id_for(self._signer.public_key())

    @property
    def signer(self) -> Ed25519PrivateKey | None:
        """The loaded signing key, or ``None``."""
        return self._signer

    def take_mac_key(self) -> tuple[int, bytes] | None:
        """Return ``(index, master key)`` for a new chain and ratchet past it, or ``None``."""
        return None if self._ratchet is None else self._ratchet.take()

    def encoder_for(self, format: str, stream: str) -> ChainEncoder:
        """Return a new :class:`ChainEncoder` (a new chain) for one sink stream."""
        return ChainEncoder(self, format=format, stream=stream)


_ratchets: weakref.WeakSet[_MacRatchet] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for ratchet in list(_ratchets):
        ratchet.reset_lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}", setting=setting) from exc
