"""Per-chain state of the verifier: stored hashes by sequence number, holes, checkpoints.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditmw.integrity.keys import evolve_mac_key, mac_key_for_chain, next_master_key

if TYPE_CHECKING:
    from auditmw.integrity.reader.report import Finding, Location

__all__ = ["ChainState", "Checkpoint", "MasterKeys"]

ZERO = bytes(32)
#: A sequence number further than this beyond the last one is treated as forged,
#: so that one bad record cannot make the verifier allocate gigabytes.
MAX_JUMP = 10_000_000
#: How many records of one chain may be used to search for its master key index.
MAX_MAC_SEARCHES = 8


class MasterKeys:
    """The configured MAC key and its ratcheted successors, one per chain created."""

    #: How many chains one options object may plausibly create.
    LIMIT = 4096
    #: How many master keys are tried when no genesis checkpoint names the chain's.
    SEARCH = 65

    def __init__(self, initial: bytes) -> None:
        self._keys = [initial]

    def get(self, index: int) -> bytes:
        """Return the master key of the ``index``-th chain."""
        index = min(max(index, 0), self.LIMIT)
        while len(self._keys) <= index:
            self._keys.append(next_master_key(self._keys[-1]))
        return self._keys[index]


@dataclass(slots=True)
class Checkpoint:
    """A parsed checkpoint record and what the verifier concluded about it."""

    location: Location
    body: dict[str, Any]
    hash: str
    time_ns: int
    intact: bool
    trusted: bool

    @property
    def n(self) -> int:
        value: int = self.body["n"]
        return value

    @property
    def first(self) -> int:
        value: int = self.body["first_seq"]
        return value

    @property
    def last(self) -> int:
        value: int = self.body["last_seq"]
        return value


@dataclass(slots=True)
class ChainState:
    """Everything the verifier keeps about one chain while reading."""

    chain_id: str
    hashes: bytearray = field(default_factory=bytearray)  # 32 bytes per seq, zeros = unseen
    expect: int = 1
    head: bytes = ZERO
    events: int = 0
    first_seq: int | None = None
    last_location: Location | None = None
    holes: list[list[Any]] = field(default_factory=list)  # [start, end, location]
    deferred: list[tuple[int, bytes, Location]] = field(default_factory=list)
    flagged: set[int] = field(default_factory=set)
    breaks: list[int] = field(default_factory=list)  # seqs whose link to seq-1 is unproven
    odd_epochs: list[tuple[int, int, Location]] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    pending_forged: tuple[int, bytes] | None = None
    last_modified: tuple[Finding, bytes] | None = None
    mac_keys: list[bytes] = field(default_factory=list)
    mac_index: int | None = None
    epoch_key: tuple[int, bytes] = (-1, b"")  # the current epoch's key, for the fast path
    epoch: int = 0
    # Where a run of consecutive seqs starts in storage order: (events read before it,
    # seq, location).  The fast path extends runs; see :mod:`auditmw.integrity.reader.order`.
    runs: list[tuple[int, int, Location]] = field(default_factory=list)
    fresh_run: bool = False  # the next event starts a run (after a late one, a new source)
    mac_searches: int = 0

    def get(self, seq: int) -> bytes | None:
        """Return the stored hash of ``seq``, or ``None`` when not seen."""
        end = seq * 32
        if seq < 1 or end > len(self.hashes):
            return None
        value = bytes(self.hashes[end - 32 : end])
        return None if value == ZERO else value

    def put(self, seq: int, digest: bytes) -> None:
        """Remember ``digest`` as the hash of ``seq``."""
        end, size = seq * 32, len(self.hashes)
        if end == size + 32:  # the usual case: the next seq in order
            self.hashes += digest
            return
        if end > size:
            self.hashes.extend(bytes(end - size))
        self.hashes[end - 32 : end] = digest

    def is_plausible(self, seq: int) -> bool:
        """Whether ``seq`` is a sequence number worth storing."""
        return 1 <= seq <= self.expect + MAX_JUMP

    def leaves(self, first: int, last: int) -> list[bytes] | None:
        """Return the hashes of ``first..last``, or ``None`` when any is missing."""
        if last * 32 > len(self.hashes):
            return None
        view = self.hashes[(first - 1) * 32 : last * 32]
        leaves = [bytes(view[i : i + 32]) for i in range(0, len(view), 32)]
        return None if ZERO in leaves else leaves

    def fill_hole(self, seq: int) -> bool:
        """Mark ``seq`` as arrived late; return whether it was a hole."""
        for index, (start, end, where) in enumerate(self.holes):
            if start <= seq <= end:
                parts = [[start, seq - 1, where], [seq + 1, end, where]]
                self.holes[index : index + 1] = [p for p in parts if p[0] <= p[1]]
                return True
        return False

    def set_mac_index(self, index: int | None) -> None:
        """Use the ``index``-th master key (from the genesis checkpoint) for this chain."""
        if index != self.mac_index:
            self.mac_index, self.mac_keys, self.epoch_key = index, [], (-1, b"")

    def find_mac_index(self, masters: MasterKeys, epoch: int, message: bytes, mac: str) -> bool:
        """Find which master key this chain was given, from one MAC over ``message``.

        Only used while no genesis checkpoint (which names the index) has been read,
        e.g. when retention removed it; the search is tried a bounded number of times.
        """
        if self.mac_index is not None or self.mac_searches >= MAX_MAC_SEARCHES:
            return False
        if self.has_genesis:  # it names the index: a MAC that fails with it is bad
            return False
        self.mac_searches += 1
        for index in range(MasterKeys.SEARCH):
            self.set_mac_index(index)
            key = self.mac_key(masters, epoch)
            if hmac.compare_digest(hmac.digest(key, message, "sha256").hex(), mac):
                return True
        self.set_mac_index(None)
        return False

    def mac_key(self, masters: MasterKeys, epoch: int) -> bytes:
        """Return this chain's MAC key for ``epoch``, deriving forward as needed."""
        if not self.mac_keys:
            master = masters.get(self.mac_index or 0)
            self.mac_keys.append(mac_key_for_chain(master, self.chain_id))
        while len(self.mac_keys) <= epoch:
            self.mac_keys.append(evolve_mac_key(self.mac_keys[-1]))
        return self.mac_keys[epoch]

    @property
    def has_genesis(self) -> bool:
        """Whether the chain's intact genesis checkpoint (number 0) was read."""
        return any(cp.intact and cp.body.get("n") == 0 for cp in self.checkpoints)

    def max_seq(self) -> int:
        """Return the highest sequence number stored."""
        return len(self.hashes) // 32
