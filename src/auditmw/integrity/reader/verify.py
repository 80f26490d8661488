"""The verifier's reading pass: checks every record as it streams by.

What it trusts: only the key registry and MAC key given to it, and checkpoints kept
elsewhere (``expected_heads``).  Everything read from the log is evidence to check.
Per-record checks (hash, MAC, link, sequence) run here; the conclusions that need the
whole input (checkpoint coverage, tail, rollback) run in :mod:`auditmw.integrity.reader.conclude`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import orjson

from auditmw.integrity.layout import (
    CHECKPOINT_KIND,
    EVENT_DOMAIN,
    MAC_DOMAIN,
    find_integrity,
    is_fenced_torn,
)
from auditmw.integrity.reader.fastpath import accept_fast
from auditmw.integrity.reader.report import Finding, Location
from auditmw.integrity.reader.seal import read_checkpoint
from auditmw.integrity.reader.sources import Oversized
from auditmw.integrity.reader.state import ReadState

if TYPE_CHECKING:
    from auditmw.integrity.reader.chainstate import ChainState

__all__ = ["Reader"]

_loads = orjson.loads
_hmac = hmac.digest


class Reader(ReadState):
    """Consumes ``(Location, bytes)`` records and keeps per-chain state and findings."""

    def feed(self, location: Location, line: bytes) -> None:
        """Check one stored record."""
        if location[0] is not self.source:
            self._new_source(location[0])
        if accept_fast(self, location, line):
            return
        self.report.records += 1
        try:
            doc = _loads(line)
        except orjson.JSONDecodeError:
            if isinstance(line, Oversized):
                message = f"the record is {line.size} bytes long, over the reading cap"
                self.flag("oversized_record", message + " (--max-record-bytes)", location, None)
            elif is_fenced_torn(line):  # a crash artefact the file sink fenced: no evidence
                self.flag("torn_record", "a record torn by a crash (fenced)", location, None)
            else:
                self.flag("malformed_record", "the line is not valid JSON", location, None)
            return
        if not isinstance(doc, dict):
            self.flag("malformed_record", "the line is not a JSON object", location, None)
            return
        integrity = find_integrity(doc)
        if isinstance(integrity, dict) and "seal" not in doc:
            self.event(location, line, doc, integrity)
        elif doc.get("kind") == CHECKPOINT_KIND:
            read_checkpoint(self, location, line, doc)
        else:
            self.flag(
                "malformed_record",
                "the record carries no integrity data (inserted?)",
                location,
                None,
            )

    # -- events ------------------------------------------------------------------------

    def event(
        self, location: Location, line: bytes, doc: dict[str, Any], integrity: dict[str, Any]
    ) -> None:
        """Check one event record (the full path; see :mod:`auditmw.integrity.reader.fastpath`)."""
        try:
            chain_id, seq, stored, prev = (
                integrity["chain_id"],
                integrity["seq"],
                integrity["hash"],
                integrity["prev"],
            )
            if type(seq) is not int or not isinstance(chain_id, str):
                raise TypeError(seq)
            prev_raw = bytes.fromhex(prev)
            mac = integrity.get("mac")
            seal = b'"hash":"' + stored.encode() + b'",'
            if mac is not None:
                seal += b'"mac":"' + mac.encode() + b'",'
        except (KeyError, TypeError, ValueError, AttributeError):
            self.flag("modified_metadata", "the integrity object is unreadable", location, None)
            return
        at = line.find(seal)
        # Hash the stored bytes minus the seal without copying the line.
        hasher = sha256(EVENT_DOMAIN + prev_raw)
        view = memoryview(line)
        hasher.update(view[:at])
        hasher.update(view[at + len(seal) :])
        recomputed = hasher.digest()
        intact = at > 0 and len(prev_raw) == 32 and recomputed.hex() == stored
        chain = self.chains.get(chain_id) or self.chain(chain_id)
        chain.last_location = location
        if intact:
            digest = recomputed
            if self.mac_key is not None:
                epoch, mac, cached = integrity.get("epoch"), integrity.get("mac"), chain.epoch_key
                fast = (
                    epoch == chain.epoch == cached[0]
                    and isinstance(mac, str)
                    and hmac.compare_digest(
                        _hmac(cached[1], MAC_DOMAIN + digest, "sha256").hex(), mac
                    )
                )
                if not fast and not self._mac_ok(chain, recomputed, integrity, location, seq):
                    return
            if (
                seq == chain.expect
                and prev_raw == chain.head
                and chain.first_seq is not None
                and not chain.fresh_run
            ):
                # The common case, inlined: the next event, correctly linked.
                chain.hashes += digest
                chain.events += 1
                chain.expect, chain.head = seq + 1, digest
                chain.pending_forged = chain.last_modified = None
                if doc.get("kind") == "audit.events_dropped":
                    self._drop(chain, location, doc, seq)
                return
        else:
            digest = self._stored_digest(stored, recomputed)
        if not chain.is_plausible(seq):
            self.flag(
                "forged_event" if intact else "modified_metadata",
                f"implausible sequence number {seq}",
                location,
                chain,
            )
            return
        known = chain.get(seq)
        if known is not None:
            self._again(chain, location, seq, digest, known, intact)
        elif not intact:
            self._modified(chain, location, seq, prev_raw, digest, recomputed)
        else:
            self._accept(chain, location, seq, prev_raw, digest)
        if doc.get("kind") == "audit.events_dropped":
            self._drop(chain, location, doc, seq)

    def _drop(self, chain: ChainState, location: Location, doc: dict[str, Any], seq: int) -> None:
        details = doc.get("details")
        count = details.get("count", "?") if isinstance(details, dict) else "?"
        message = f"the writer recorded {count} dropped events (explained gap)"
        self.flag("recorded_drop", message, location, chain, seq)

    @staticmethod
    def _stored_digest(stored: Any, recomputed: bytes) -> bytes:
        try:
            raw = bytes.fromhex(stored)
        except (TypeError, ValueError):
            return recomputed
        return raw if len(raw) == 32 and raw != bytes(32) else recomputed

    def _mac_ok(
        self,
        chain: ChainState,
        digest: bytes,
        integrity: dict[str, Any],
        location: Location,
        seq: int,
    ) -> bool:
        mac, epoch = integrity.get("mac"), integrity.get("epoch")
        if (
            type(epoch) is int
            and isinstance(mac, str)
            and 0 <= epoch <= chain.epoch + 1000
            and self._mac_matches(chain, epoch, digest, mac)
        ):
            if epoch != chain.epoch:
                chain.odd_epochs.append((seq, epoch, location))
            else:
                chain.epoch_key = (epoch, chain.mac_keys[epoch])
            return True
        chain.pending_forged = (seq, digest)
        self.flag(
            "forged_event",
            "the hash is consistent but the MAC is missing or invalid "
            "(inserted or rewritten record)",
            location,
            chain,
            seq,
        )
        return False

    def _mac_matches(self, chain: ChainState, epoch: int, digest: bytes, mac: str) -> bool:
        assert self.masters is not None  # set whenever mac_key is
        key = chain.mac_key(self.masters, epoch)
        if hmac.compare_digest(hmac.digest(key, MAC_DOMAIN + digest, "sha256").hex(), mac):
            return True
        # Without the genesis checkpoint (retention, or not read yet), the chain's
        # master key index is unknown: find it from this event.
        return chain.find_mac_index(self.masters, epoch, MAC_DOMAIN + digest, mac)

    def _again(  # noqa: PLR0917 - internal, called positionally
        self,
        chain: ChainState,
        location: Location,
        seq: int,
        digest: bytes,
        known: bytes,
        intact: bool,
    ) -> None:
        if not intact:
            self.flag(
                "modified_event", "a second copy of this event was modified", location, chain, seq
            )
        elif digest == known:
            self.report.add(
                Finding(
                    "duplicate",
                    "byte-identical copy of an event already read (at-least-once delivery; benign)",
                    location,
                    chain.chain_id,
                    seq,
                )
            )
        else:
            self.flag(
                "conflicting_duplicate",
                "another record with this sequence number differs",
                location,
                chain,
                seq,
            )

    def _modified(  # noqa: PLR0917 - internal, called positionally
        self,
        chain: ChainState,
        location: Location,
        seq: int,
        prev: bytes,
        digest: bytes,
        recomputed: bytes,
    ) -> None:
        if seq != chain.expect and prev == chain.head:
            seq = chain.expect  # the position fits: its seq member was edited
            metadata = True
        else:
            metadata = seq != chain.expect or prev != chain.head
        if metadata:
            finding = self.flag(
                "modified_metadata",
                "the chain metadata of this event was changed",
                location,
                chain,
                seq,
            )
        else:
            finding = self.flag(
                "modified_event",
                "the event's content does not match its hash",
                location,
                chain,
                seq,
            )
        self._accept(chain, location, seq, prev, digest, checked=False)
        chain.last_modified = (finding, recomputed)

    def _accept(
        self,
        chain: ChainState,
        location: Location,
        seq: int,
        prev: bytes,
        digest: bytes,
        *,
        checked: bool = True,
    ) -> None:
        chain.runs.append((chain.events, seq, location))
        chain.fresh_run = False
        chain.events += 1
        if chain.first_seq is None or seq < chain.first_seq:
            chain.first_seq = seq
        if seq == chain.expect:
            if checked and prev != chain.head:
                self._bad_link(chain, location, seq, prev)
        elif seq > chain.expect:
            forged = chain.pending_forged
            if forged is not None and forged[0] == chain.expect == seq - 1:
                if prev != forged[1]:
                    self._bad_link(chain, location, seq, prev)
            else:
                chain.holes.append([chain.expect, seq - 1, location])
                chain.deferred.append((seq, prev, location))
        else:
            # Stored after a later event: a late file, or moved (judged in _order).
            chain.fill_hole(seq)
            chain.deferred.append((seq, prev, location))
            chain.fresh_run = True
            chain.put(seq, digest)
            return
        chain.put(seq, digest)
        chain.expect, chain.head = seq + 1, digest
        chain.pending_forged = None
        chain.last_modified = None if checked else chain.last_modified

    def _bad_link(self, chain: ChainState, location: Location, seq: int, prev: bytes) -> None:
        modified = chain.last_modified
        if modified is not None and prev == modified[1]:
            # The previous event's content is intact, its stored hash was altered.
            finding = modified[0]
            index = self.report.findings.index(finding)
            self.report.findings[index] = Finding(
                "modified_metadata",
                "the integrity hash of this event was changed",
                finding.location,
                finding.chain_id,
                finding.seq,
            )
            return
        chain.breaks.append(seq)
        self.flag(
            "broken_link", "prev does not match the preceding event's hash", location, chain, seq
        )
