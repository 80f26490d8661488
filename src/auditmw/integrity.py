"""Integrity: per-stream hash chains, evolving MACs and signed checkpoints (DESIGN §9).

What it trusts: the process writing the log, up to the moment it is compromised.  The
hash chain detects any change to stored records once a later *signed* checkpoint (or a
head kept elsewhere) commits to them; the optional MAC, whose key evolves at every
checkpoint and whose old values are discarded, stops an intruder who takes the host
later from forging earlier records.  It cannot protect records written after a
compromise, nor the tail after the last checkpoint: keep checkpoints where the
application host cannot write (a digest file shipped elsewhere, ``--expected-head``).

Byte layout (``hex`` is lower-case, ``‖`` is concatenation):

- event ``hash`` = ``SHA-256(b"auditmw/v1/event" ‖ prev ‖ body)`` where ``prev`` is the
  32 raw bytes of the previous event's hash (32 zero bytes for ``seq`` 1) and ``body`` is
  the stored canonical JSON line with the ``"hash":"…",`` and ``"mac":"…",`` members
  removed from the integrity object;
- event ``mac`` = ``HMAC-SHA256(k_epoch, b"auditmw/v1/mac" ‖ hash)``;
- checkpoint ``seal.hash`` = ``SHA-256(b"auditmw/v1/checkpoint" ‖ canonical record without seal)``,
  ``seal.signature`` = Ed25519 over ``b"auditmw/v1/checkpoint-signature" ‖ seal.hash``,
  ``seal.mac`` = ``HMAC-SHA256(k_epoch, b"auditmw/v1/checkpoint-mac" ‖ seal.hash)``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import hmac
import os
import time
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from auditmw._conclude import ExpectedHead
from auditmw._keys import (
    KeyRegistry,
    evolve_mac_key,
    generate_keypair,
    key_id_for,
    load_mac_key,
    load_signing_key,
    mac_key_for_chain,
)
from auditmw._layout import (
    CHECKPOINT_DOMAIN,
    CHECKPOINT_KIND,
    CHECKPOINT_MAC_DOMAIN,
    EVENT_DOMAIN,
    MAC_DOMAIN,
    SIGNATURE_DOMAIN,
    ZERO_HASH,
)
from auditmw._merkle import merkle_root
from auditmw._report import Finding, Location, Report
from auditmw._run import verify_files, verify_records
from auditmw.canonical import dumps, format_time, loads, new_event_id
from auditmw.exceptions import ConfigurationError
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from auditmw.formats import Exporter
    from auditmw.types import Event

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

_ACTOR = {"id": "auditmw", "type": "service", "auth": {"method": "none", "verified": False}}


def integrity_key(format: str) -> str:
    """Return the top-level member holding the integrity object in ``format``'s documents.

    ``"integrity"`` for the canonical format, ``"auditmw_integrity"`` for exported ones.

    .. versionadded:: 0.1.0
    """
    return "integrity" if format == "auditmw" else "auditmw_integrity"


@dataclass(frozen=True)
class IntegrityOptions:
    """How sink streams are chained, MACed and checkpointed.

    Args:
        signing_key: Ed25519 private key (PEM bytes or key object) signing checkpoints.
        signing_key_file: path of the PEM private key, instead of ``signing_key``.
        mac_key: initial MAC key (≥ 32 bytes); per chain keys derive from it.
        mac_key_file: path of the MAC key file (64 hex digits), instead of ``mac_key``.
        checkpoint_every: events per checkpoint (and per MAC epoch).
        checkpoint_interval_s: seconds between checkpoints, heartbeats included.
        digest_path: file to which every checkpoint is also appended.
        state_dir: directory remembering each stream's last checkpoint across restarts.

    Raises:
        ConfigurationError: a key cannot be loaded or a number is not positive.

    .. versionadded:: 0.1.0
    """

    signing_key: bytes | Ed25519PrivateKey | None = field(default=None, repr=False)
    signing_key_file: str | None = None
    mac_key: bytes | None = field(default=None, repr=False)
    mac_key_file: str | None = None
    checkpoint_every: int = 1000
    checkpoint_interval_s: int = 60
    digest_path: str | None = None
    state_dir: str | None = None
    _signer: Ed25519PrivateKey | None = field(default=None, init=False, repr=False, compare=False)
    _mac: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ConfigurationError("checkpoint_every must be ≥ 1", setting="checkpoint_every")
        if self.checkpoint_interval_s < 1:
            raise ConfigurationError(
                "checkpoint_interval_s must be ≥ 1", setting="checkpoint_interval_s"
            )
        object.__setattr__(self, "_signer", self._load_signer())
        object.__setattr__(self, "_mac", self._load_mac())

    def _load_signer(self) -> Ed25519PrivateKey | None:
        key = self.signing_key
        if key is None and self.signing_key_file is not None:
            key = _read(self.signing_key_file, "signing_key_file")
        if isinstance(key, bytes):
            return load_signing_key(key)
        return key

    def _load_mac(self) -> bytes | None:
        if self.mac_key is not None:
            return load_mac_key(self.mac_key)
        if self.mac_key_file is not None:
            return load_mac_key(_read(self.mac_key_file, "mac_key_file"), setting="mac_key_file")
        return None

    @property
    def key_id(self) -> str | None:
        """The id of the signing key, or ``None`` when checkpoints are not signed."""
        return None if self._signer is None else key_id_for(self._signer.public_key())

    def encoder_for(self, format: str, stream: str) -> ChainEncoder:
        """Return a new :class:`ChainEncoder` (a new chain) for one sink stream."""
        return ChainEncoder(self, format=format, stream=stream)


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}", setting=setting) from exc


class ChainEncoder:
    """Encodes one sink stream as a hash chain with inline checkpoints.

    Called from the delivery thread only.  Each call to :meth:`encode` returns the
    events with their ``integrity`` object, plus any checkpoint that fell due.

    Args:
        options: the integrity options.
        format: the stored format of the stream.
        stream: the stream's name (recorded in checkpoints).
        exporter: the format's exporter (default: :func:`auditmw.formats.get_exporter`).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        options: IntegrityOptions,
        *,
        format: str = "auditmw",
        stream: str = "default",
        exporter: Exporter | None = None,
    ) -> None:
        from auditmw.formats import get_exporter

        self._options = options
        if exporter is None and format != "auditmw":
            exporter = get_exporter(format)
        self._export = exporter
        self.format = format
        self.stream = stream
        self.chain_id = new_event_id()
        self._key = integrity_key(format)
        self._marker = (
            b'"' + self._key.encode() + b'":{"chain_id":"' + self.chain_id.encode() + b'",'
        )
        self._signer = options._signer
        self._key_id = options.key_id
        self._mac = None if options._mac is None else mac_key_for_chain(options._mac, self.chain_id)
        self._seq = 0
        self._head = ZERO_HASH
        self._leaves: list[bytes] = []
        self._range_first = 1
        self._cp_n = -1
        self._cp_hash: str | None = None
        self._cp_time_ns = 0
        self._previous_chain = self._read_state()
        self._digest: IO[bytes] | None = None
        self._finished = False

    # -- public Encoder protocol -------------------------------------------------------

    def encode(self, events: Sequence[Event]) -> Batch:
        """Chain ``events`` in order; append checkpoints that fall due."""
        batch = self._genesis()
        every = self._options.checkpoint_every
        for event in events:
            self._append(batch, event)
            if len(self._leaves) >= every:
                self._checkpoint(batch, "count")
            elif event.get("kind") == "audit.policy_loaded":
                self._checkpoint(batch, "policy_loaded")
        return batch

    def tick(self, now_ns: int) -> Batch | None:
        """Write a checkpoint (a heartbeat when idle) once the interval has passed."""
        batch = self._genesis()
        if now_ns - self._cp_time_ns >= self._options.checkpoint_interval_s * 1_000_000_000:
            self._checkpoint(batch, "interval" if self._leaves else "heartbeat", now_ns)
        return batch or None

    def finish(self) -> Batch | None:
        """Write the closing checkpoint; the chain accepts no events afterwards."""
        if self._finished:
            return None
        batch = self._genesis()
        self._checkpoint(batch, "stop", final=True)
        self._finished = True
        if self._digest is not None:
            self._digest.close()
        return batch

    def rotate_signing_key(self, new_key: Ed25519PrivateKey) -> Batch:
        """Close the current range with a checkpoint naming ``new_key``, then sign with it.

        Args:
            new_key: the Ed25519 private key used from now on.

        .. versionadded:: 0.1.0
        """
        batch = self._genesis()
        self._checkpoint(batch, "key_rotation", next_key_id=key_id_for(new_key.public_key()))
        self._signer = new_key
        self._key_id = key_id_for(new_key.public_key())
        return batch

    # -- chaining ----------------------------------------------------------------------

    def _append(self, batch: Batch, event: Event) -> None:
        if self._finished:
            raise RuntimeError("the chain was finished; create a new encoder")
        seq = self._seq + 1
        integrity: dict[str, Any] = {
            "chain_id": self.chain_id,
            "prev": self._head.hex(),
            "seq": seq,
        }
        if self._mac is not None:
            integrity["epoch"] = self._cp_n
        if self._export is None:
            record = stored = {**event, "integrity": integrity}
        else:
            stored = {**self._export(event), self._key: integrity}
            record = {**event, "integrity": integrity}
        body = dumps(stored)
        hasher = sha256(EVENT_DOMAIN + self._head)
        hasher.update(body)
        digest = hasher.digest()
        integrity["hash"] = digest.hex()
        seal = b'"hash":"' + integrity["hash"].encode() + b'",'
        if self._mac is not None:
            integrity["mac"] = hmac.digest(self._mac, MAC_DOMAIN + digest, "sha256").hex()
            seal += b'"mac":"' + integrity["mac"].encode() + b'",'
        batch.events.append(record)
        if body.count(self._marker) == 1:
            # The integrity members sort as chain_id, epoch, hash, mac, prev, seq: the
            # seal goes right before "prev", so the stored line stays canonical JSON.
            at = body.index(self._marker) + len(self._marker)
            if self._mac is not None:
                at = body.index(b",", at) + 1
            batch.lines.append(body[:at] + seal + body[at:])
        else:  # the content mimics our integrity object: serialize again, unambiguously
            batch.lines.append(dumps(stored))
        self._seq = seq
        self._head = digest
        self._leaves.append(digest)

    # -- checkpoints -------------------------------------------------------------------

    def _genesis(self) -> Batch:
        batch = Batch()
        if self._cp_n < 0:
            self._checkpoint(batch, "start")
        return batch

    def _checkpoint(
        self,
        batch: Batch,
        reason: str,
        now_ns: int | None = None,
        *,
        final: bool = False,
        next_key_id: str | None = None,
    ) -> None:
        now_ns = time.time_ns() if now_ns is None else now_ns
        n = self._cp_n + 1
        body = self._checkpoint_body(n, reason, final, next_key_id)
        stamp = format_time(now_ns)
        record: dict[str, Any] = {
            "schema_version": "1.0",
            "event_id": new_event_id(now_ns),
            "time": stamp,
            "end_time": stamp,
            "duration_us": 0,
            "kind": CHECKPOINT_KIND,
            "action": CHECKPOINT_KIND,
            "operation": "other",
            "outcome": "success",
            "severity": "info",
            "actor": _ACTOR,
            "resource": {"type": "audit"},
            "checkpoint": body,
        }
        digest = sha256(CHECKPOINT_DOMAIN + dumps(record)).digest()
        seal: dict[str, str] = {"hash": digest.hex()}
        if self._signer is not None:
            signature = self._signer.sign(SIGNATURE_DOMAIN + digest)
            seal["signature"] = base64.b64encode(signature).decode()
        if self._mac is not None:
            seal["mac"] = hmac.digest(self._mac, CHECKPOINT_MAC_DOMAIN + digest, "sha256").hex()
            if n > 0:
                # Forward security: the key of the closed epoch is gone from memory.
                self._mac = evolve_mac_key(self._mac)
        record["seal"] = seal
        line = dumps(record)
        batch.events.append(record)
        batch.lines.append(line)
        self._cp_n, self._cp_hash, self._cp_time_ns = n, seal["hash"], now_ns
        self._leaves = []
        self._range_first = self._seq + 1
        self._write_digest(line)
        self._write_state(now_ns)

    def _checkpoint_body(
        self, n: int, reason: str, final: bool, next_key_id: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": 1,
            "chain_id": self.chain_id,
            "stream": self.stream,
            "format": self.format,
            "n": n,
            "reason": reason,
            "first_seq": self._range_first,
            "last_seq": self._seq,
            "head": self._head.hex(),
            "merkle_root": merkle_root(self._leaves).hex(),
            "interval_s": self._options.checkpoint_interval_s,
            "every": self._options.checkpoint_every,
            "mac": self._mac is not None,
        }
        if self._cp_hash is not None:
            body["prev_checkpoint"] = self._cp_hash
        if self._key_id is not None:
            body["key_id"] = self._key_id
        if final:
            body["final"] = True
        if next_key_id is not None:
            body["next_key_id"] = next_key_id
        if n == 0 and self._previous_chain is not None:
            body["previous_chain"] = self._previous_chain
        return body

    def _write_digest(self, line: bytes) -> None:
        path = self._options.digest_path
        if path is None:
            return
        if self._digest is None:
            self._digest = open(path, "ab")  # noqa: SIM115 - kept open for the chain's life
        self._digest.write(line + b"\n")
        self._digest.flush()

    # -- restart linking ---------------------------------------------------------------

    def _state_path(self) -> Path | None:
        state_dir = self._options.state_dir
        if state_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.stream)
        return Path(state_dir) / f"{safe}.chain.json"

    def _read_state(self) -> dict[str, Any] | None:
        path = self._state_path()
        if path is None or not path.exists():
            return None
        try:
            state = loads(path.read_bytes())
        except (OSError, ValueError):
            return None  # an unreadable state only loses the restart link; verify says so
        keys = ("chain_id", "n", "checkpoint", "last_seq")
        return {key: state[key] for key in keys} if all(key in state for key in keys) else None

    def _write_state(self, now_ns: int) -> None:
        path = self._state_path()
        if path is None:
            return
        state = {
            "chain_id": self.chain_id,
            "n": self._cp_n,
            "checkpoint": self._cp_hash,
            "last_seq": self._seq,
            "time": format_time(now_ns),
        }
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(dumps(state))
        os.replace(tmp, path)
