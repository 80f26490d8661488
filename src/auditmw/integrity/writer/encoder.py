"""The writer side of integrity: :class:`ChainEncoder` chains one sink stream.

What it trusts: the events handed to it by the delivery thread, and its own memory up
to the moment the host is compromised; see :mod:`auditmw.integrity` for the byte layout.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import hmac
import importlib
import logging
import os
import time
from functools import partial
from hashlib import sha256
from typing import IO, TYPE_CHECKING, Any, Protocol

from auditmw import _native
from auditmw.core.canonical import dumps, format_time, new_event_id
from auditmw.core.degrade import degrade, metadata_only
from auditmw.core.records import Batch
from auditmw.integrity.keys import evolve_mac_key, key_id_for, mac_key_for_chain
from auditmw.integrity.layout import (
    CHECKPOINT_DOMAIN,
    CHECKPOINT_KIND,
    CHECKPOINT_MAC_DOMAIN,
    EVENT_DOMAIN,
    MAC_DOMAIN,
    SIGNATURE_DOMAIN,
    ZERO_HASH,
    integrity_key,
    with_integrity,
)
from auditmw.integrity.merkle import merkle_root
from auditmw.integrity.writer.lineage import Slot, claim

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from auditmw._native import NativeMacKey
    from auditmw.core.types import Event
    from auditmw.formats import Exporter

__all__ = ["ChainEncoder", "ChainSettings"]


def _openssl_hmac() -> Any:
    """CPython's OpenSSL HMAC constructor (what ``hmac.new`` wraps), or ``None``."""
    try:
        return importlib.import_module("_hashlib").hmac_new
    except (ImportError, AttributeError):  # an interpreter without OpenSSL
        return None


_hmac_new: Any = _openssl_hmac()


def _hmac_state(key: bytes) -> Any:
    """An HMAC-SHA256 state keyed with ``key``, to be copied for each message.

    OpenSSL's HMAC object itself where CPython exposes it (``hmac.new`` wraps it in a
    Python class whose copy/update/digest cost a third more), else ``hmac.new``.
    """
    if _hmac_new is not None:
        try:
            return _hmac_new(key, digestmod="sha256")
        except Exception:  # noqa: S110 - OpenSSL refused (e.g. FIPS): hmac.new below
            pass
    return hmac.new(key, digestmod=sha256)


class ChainSettings(Protocol):
    """What a chain needs from its configuration (:class:`~auditmw.integrity.IntegrityOptions`).

    .. versionadded:: 0.2.0
    """

    @property
    def checkpoint_every(self) -> int: ...
    @property
    def checkpoint_interval_s(self) -> int: ...
    @property
    def digest_path(self) -> str | None: ...
    @property
    def state_dir(self) -> str | None: ...
    @property
    def signer(self) -> Ed25519PrivateKey | None: ...
    @property
    def key_id(self) -> str | None: ...

    def take_mac_key(self) -> tuple[int, bytes] | None:
        """``(index, master key)`` for a new chain, or ``None`` without MACs."""


logger = logging.getLogger("auditmw.integrity")

_ACTOR = {"id": "auditmw", "type": "service", "auth": {"method": "none", "verified": False}}


class ChainEncoder:
    """Encodes one sink stream as a hash chain with inline checkpoints.

    Called from the delivery thread only.  Each call to :meth:`encode` returns the
    events with their ``integrity`` object, plus any checkpoint that fell due.

    Args:
        options: the integrity options (:class:`ChainSettings`).
        format: the stored format of the stream.
        stream: the stream's name (recorded in checkpoints).
        exporter: the format's exporter (default: :func:`auditmw.formats.get_exporter`).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        options: ChainSettings,
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
        self._signer = options.signer
        self._key_id = options.key_id
        taken = options.take_mac_key()
        self._mac_index = None if taken is None else taken[0]
        self._mac = None if taken is None else mac_key_for_chain(taken[1], self.chain_id)
        del taken  # the chain keeps only its own, evolving key
        # The C chain step (None: the Python reference in _append runs), and its MAC key
        # with the HMAC states precomputed, rebuilt whenever self._mac changes.
        self._step = None if _native.MacKey is None else _native.chain_step
        self._step_mac = self._native_mac()
        self._py_mac = self._python_mac()
        self._seq = 0
        self._head = ZERO_HASH
        self._leaves: list[bytes] = []
        self._range_first = 1
        self._cp_n = -1
        self._cp_hash: str | None = None
        self._cp_time_ns = 0
        self._slot: Slot | None = None
        self._previous_chain = self._read_state()
        self._digest: IO[bytes] | None = None
        self._finished = False
        #: events that could not be encoded even in their degraded forms (see _degraded)
        self.dropped = 0

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
        if self._finished:
            return None
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
        head = self._head
        mac = self._mac
        integrity: dict[str, Any] = {"chain_id": self.chain_id, "prev": head.hex(), "seq": seq}
        if mac is not None:
            integrity["epoch"] = self._cp_n
        try:
            if self._export is None:  # the stored form is the event: _serialize, inlined
                record = stored = {**event, "integrity": integrity}
                body = dumps(stored)
            else:
                record, stored, body = self._serialize(event, integrity)
        except Exception as exc:  # never let one event stop the stream: degrade it
            encoded = self._degraded(event, integrity, exc)
            if encoded is None:
                return
            record, stored, body = encoded
        if self._step is not None:  # the native core: the same bytes (tests/native)
            line, digest, integrity["hash"], mac_hex = self._step(
                body, head, self._marker, EVENT_DOMAIN, self._step_mac, MAC_DOMAIN
            )
            if mac_hex is not None:
                integrity["mac"] = mac_hex
            batch.events.append(record)
            batch.lines.append(dumps(stored) if line is None else line)
            self._seq = seq
            self._head = digest
            self._leaves.append(digest)
            return
        digest = sha256(EVENT_DOMAIN + head + body).digest()
        hash_hex = integrity["hash"] = digest.hex()
        seal = b'"hash":"' + hash_hex.encode() + b'",'
        if mac is not None:
            state = self._py_mac.copy()  # the key schedule is computed once per key
            state.update(MAC_DOMAIN + digest)
            integrity["mac"] = mac_hex = state.hexdigest()
            seal += b'"mac":"' + mac_hex.encode() + b'",'
        batch.events.append(record)
        marker = self._marker
        found = body.find(marker)
        if found >= 0 and body.find(marker, found + 1) < 0:
            # The integrity members sort as chain_id, epoch, hash, mac, prev, seq: the
            # seal goes right before "prev", so the stored line stays canonical JSON.
            at = found + len(marker)
            if mac is not None:
                at = body.index(b",", at) + 1
            batch.lines.append(b"".join((body[:at], seal, body[at:])))
        else:  # the content mimics our integrity object: serialize again, unambiguously
            batch.lines.append(dumps(stored))
        self._seq = seq
        self._head = digest
        self._leaves.append(digest)

    def _native_mac(self) -> NativeMacKey | None:
        """The native core's form of the current MAC key (``None`` without either)."""
        if self._mac is None or self._step is None or _native.MacKey is None:
            return None  # no MAC, or the Python core
        return _native.MacKey(self._mac)

    def _python_mac(self) -> Any:
        """The Python core's form of the current MAC key: an HMAC-SHA256 state keyed once.

        Each event copies it (``HMAC_CTX_copy``) instead of keying a new HMAC: about
        40% fewer instructions for the MAC (``benchmarks/callgrind_parts.py encode``),
        the same bytes as ``hmac.digest``.  ``None`` without a MAC.
        """
        if self._mac is None:
            return None
        return _hmac_state(self._mac)

    def _serialize(
        self, event: Event, integrity: dict[str, Any]
    ) -> tuple[Event, dict[str, Any], bytes]:
        if self._export is None:
            record = stored = {**event, "integrity": integrity}
        else:
            stored = with_integrity(self.format, self._export(event), integrity)
            record = {**event, "integrity": integrity}
        return record, stored, dumps(stored)

    def _degraded(
        self, event: Event, integrity: dict[str, Any], exc: Exception
    ) -> tuple[Event, dict[str, Any], bytes] | None:
        """Serialize the degraded form of ``event``; ``None`` (counted in ``dropped``) if none."""
        logger.error("auditmw event cannot be serialized (%s): degraded", type(exc).__name__)
        for reduce in (degrade, metadata_only):
            try:
                return self._serialize(reduce(event), integrity)
            except Exception:  # noqa: S112 - the next, smaller form is tried
                continue
        self.dropped += 1
        return None

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
                self._step_mac = self._native_mac()
                self._py_mac = self._python_mac()
        record["seal"] = seal
        line = dumps(record)
        batch.events.append(record)
        batch.lines.append(line)
        self._cp_n, self._cp_hash, self._cp_time_ns = n, seal["hash"], now_ns
        self._leaves = []
        self._range_first = self._seq + 1
        # Nothing outside the log may name this checkpoint before the log holds it: a
        # kill inside the sink's emit would make the log look cut (truncated_tail).
        state = {"chain_id": self.chain_id, **_link(body, seal["hash"]), "time": stamp}
        batch.on_stored.append(partial(self._stored, line, state, final))

    def _stored(self, line: bytes, state: dict[str, Any], final: bool) -> None:
        """Run when the sink stored a checkpoint: copy it to the digest, then the state."""
        self._write_digest(line, final)
        self._write_state(state, final)

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
        if n == 0 and self._mac_index is not None:
            body["mac_index"] = self._mac_index
        if n == 0 and self._slot is not None:
            body["lineage"] = True  # a later chain will name this one when it stops
            if self._previous_chain is not None:
                body["previous_chain"] = self._previous_chain
        return body

    def _write_digest(self, line: bytes, final: bool = False) -> None:
        path = self._options.digest_path
        if path is None:
            return
        try:
            if self._digest is None:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._digest = os.fdopen(fd, "ab")  # kept open for the chain's life
            self._digest.write(line + b"\n")
            self._digest.flush()
        except OSError as exc:
            # The inline checkpoint is written anyway; never stop auditing over the copy.
            logger.error("auditmw cannot write the digest file %s: %s", path, exc.strerror)
        if final and self._digest is not None:
            self._digest.close()
            self._digest = None

    # -- restart linking (see auditmw.integrity.writer.lineage) -------------------------

    def _read_state(self) -> dict[str, Any] | None:
        state_dir = self._options.state_dir
        if state_dir is None:
            return None
        self._slot = claim(state_dir, self.stream)
        return None if self._slot is None else self._slot.read()

    def _write_state(self, state: dict[str, Any], final: bool = False) -> None:
        slot = self._slot
        if slot is None:
            return
        slot.write(state)
        if final:
            slot.release()  # closed: the next chain, of any process, continues this one


def _link(body: dict[str, Any], checkpoint: str) -> dict[str, Any]:
    """Return what a successor's ``previous_chain`` names: the checkpoint and its head."""
    return {
        "n": body["n"],
        "checkpoint": checkpoint,
        "last_seq": body["last_seq"],
        "head": body["head"],
    }
