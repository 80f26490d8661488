"""The verifier's concluding pass: links, holes, checkpoints, coverage, tails and rollback.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import bisect
import itertools
import time
from typing import TYPE_CHECKING, Any

from auditmw.integrity.merkle import merkle_root
from auditmw.integrity.reader.chainstate import ZERO, ChainState, Checkpoint
from auditmw.integrity.reader.heads import ExpectedHead, check_expected
from auditmw.integrity.reader.order import check_order
from auditmw.integrity.reader.reconcile import check_input, check_tail_coverage
from auditmw.integrity.reader.report import ChainSummary, Finding

if TYPE_CHECKING:
    from auditmw.integrity.reader.verify import Reader

__all__ = ["ExpectedHead", "conclude"]  # ExpectedHead re-exported for callers


def grace_ns(interval_s: int) -> int:
    """Return how long past its interval a heartbeat may be late before it is missing."""
    return (interval_s + max(2, interval_s // 2)) * 1_000_000_000


def conclude(
    reader: Reader,
    expected: list[ExpectedHead],
    as_of_ns: int | None,
    *,
    allow_empty: bool = False,
) -> None:
    """Draw the whole-input conclusions into ``reader.report``.

    ``allow_empty`` accepts an input without any record as clean.
    """
    as_of_ns = time.time_ns() if as_of_ns is None else as_of_ns
    successors: dict[str, tuple[Checkpoint, dict[str, Any]]] = {}
    for chain in reader.chains.values():
        for cp in chain.checkpoints:
            previous = cp.body.get("previous_chain")
            if cp.intact and cp.n == 0 and isinstance(previous, dict):
                successors[str(previous.get("chain_id"))] = (cp, previous)
    for chain in reader.chains.values():
        _Conclusion(reader, chain).run(successors, as_of_ns)
    check_expected(reader, expected)
    check_input(reader, allow_empty=allow_empty)


class _Conclusion:
    def __init__(self, reader: Reader, chain: ChainState) -> None:
        self.reader, self.chain = reader, chain
        self.flag = reader.flag
        self.by_n: dict[int, Checkpoint] = {}
        self.summary = ChainSummary(
            chain.chain_id, events=chain.events, first_seq=chain.first_seq, last_seq=chain.max_seq()
        )
        reader.report.chains.append(self.summary)
        self.flagged: list[int] = []

    def run(self, successors: dict[str, tuple[Checkpoint, dict[str, Any]]], as_of_ns: int) -> None:
        """Draw every conclusion about this chain."""
        chain = self.chain
        if not chain.checkpoints:
            self.flag(
                "foreign_event",
                f"{chain.events} event(s) of a chain with no checkpoint in "
                "the input (spliced from another log?)",
                chain.last_location,
                chain,
                chain.first_seq,
                chain.max_seq(),
            )
            return
        self._links()
        self._holes()
        self._sequence()
        check_order(self.reader.report, chain)  # events and checkpoints, per source
        if not self.by_n:
            return
        check_tail_coverage(self.reader, chain)
        self.flagged = sorted(chain.flagged)
        vouching = [cp for cp in self.by_n.values() if self._content(cp)]
        self._epochs()
        self._coverage(vouching)
        self._tail(successors.get(chain.chain_id), as_of_ns)

    def _links(self) -> None:
        chain = self.chain
        for seq, prev, location in chain.deferred:
            before = ZERO if seq == 1 else chain.get(seq - 1)
            if before is not None and before != prev:
                chain.breaks.append(seq)
                self.flag(
                    "broken_link",
                    "prev does not match the preceding event's hash",
                    location,
                    chain,
                    seq,
                )

    def _holes(self) -> None:
        chain = self.chain
        has_genesis = any(cp.body.get("n") == 0 for cp in chain.checkpoints)
        for start, end, location in chain.holes:
            chain.breaks.append(end + 1)
            if start == 1 and not has_genesis:
                self.flag(
                    "missing_start",
                    f"the chain's start (seq 1..{end}) is not in the input",
                    location,
                    chain,
                    start,
                    end,
                )
            else:
                self.flag(
                    "deleted_events",
                    f"events {start}..{end} are missing (deleted)",
                    location,
                    chain,
                    start,
                    end,
                )

    def _sequence(self) -> None:
        chain, by_n = self.chain, self.by_n
        for cp in chain.checkpoints:
            if not cp.intact:
                continue
            other = by_n.get(cp.n)
            if other is not None:
                same = other.hash == cp.hash
                self.reader.report.add(
                    Finding(
                        "duplicate" if same else "checkpoint_forged",
                        f"checkpoint {cp.n} appears twice"
                        + ("" if same else " with different content"),
                        cp.location,
                        chain.chain_id,
                    )
                )
                continue
            by_n[cp.n] = cp
        numbers = sorted(by_n)
        if numbers and numbers[0] != 0:
            first = by_n[numbers[0]]
            if chain.first_seq is None or chain.first_seq >= first.first:
                self.flag(
                    "missing_start",
                    f"checkpoints 0..{numbers[0] - 1} are not in the input",
                    first.location,
                    chain,
                )
            else:
                self.flag(
                    "checkpoint_deleted",
                    f"checkpoints 0..{numbers[0] - 1} are missing",
                    first.location,
                    chain,
                )
        for a, b in itertools.pairwise(numbers):
            self._pair(by_n[a], by_n[b])
        if numbers:
            genesis = by_n.get(numbers[0])
            self.summary.stream = None if genesis is None else genesis.body.get("stream")
            last = by_n[numbers[-1]]
            self.summary.checkpoints = len(numbers)
            self.summary.closed = bool(last.body.get("final"))
            self.summary.head = f"{chain.chain_id}:{last.n}:{last.hash}"

    def _pair(self, a: Checkpoint, b: Checkpoint) -> None:
        chain = self.chain
        if b.n != a.n + 1:
            self.flag(
                "checkpoint_deleted",
                f"checkpoints {a.n + 1}..{b.n - 1} are missing",
                b.location,
                chain,
                a.last + 1,
                b.first - 1 if b.first > a.last + 1 else None,
            )
            return
        if b.body.get("prev_checkpoint") != a.hash:
            self.flag(
                "broken_link", f"checkpoint {b.n} does not name checkpoint {a.n}", b.location, chain
            )
        if b.first != a.last + 1:
            self.flag(
                "checkpoint_mismatch",
                f"checkpoint {b.n} does not continue the range of checkpoint {a.n}",
                b.location,
                chain,
            )
        interval = a.body.get("interval_s")
        if isinstance(interval, int) and b.time_ns - a.time_ns > grace_ns(interval):
            seconds = (b.time_ns - a.time_ns) // 1_000_000_000
            self.flag(
                "missing_heartbeat",
                f"{seconds} s without a checkpoint (interval {interval} s)",
                b.location,
                chain,
            )

    def _content(self, cp: Checkpoint) -> bool:
        chain, first, last = self.chain, cp.first, cp.last
        if last >= first and cp.intact:
            leaves = chain.leaves(first, last)
            at = bisect.bisect_left(self.flagged, first)
            damaged = (at < len(self.flagged) and self.flagged[at] <= last) or any(
                start <= last and end >= first for start, end, _ in chain.holes
            )
            if (
                leaves is not None
                and not damaged
                and (
                    leaves[-1].hex() != cp.body["head"]
                    or merkle_root(leaves).hex() != cp.body.get("merkle_root")
                )
            ):
                self.flag(
                    "checkpoint_mismatch",
                    f"events {first}..{last} differ from what "
                    f"checkpoint {cp.n} committed to (rewritten)",
                    cp.location,
                    chain,
                    first,
                    last,
                )
                chain.breaks.append(last + 1)
                return False
        return cp.trusted

    def _epochs(self) -> None:
        chain = self.chain
        ranges = sorted(self.by_n.values(), key=lambda cp: cp.first)
        last = max(self.by_n.values(), key=lambda cp: cp.n)
        for seq, epoch, location in chain.odd_epochs:
            owner = next((cp for cp in ranges if cp.first <= seq <= cp.last), None)
            expected = last.n if owner is None else owner.n - 1
            if epoch != expected:
                self.flag(
                    "forged_event",
                    f"MAC epoch {epoch} does not belong at this position (expected {expected})",
                    location,
                    chain,
                    seq,
                )

    def _coverage(self, vouching: list[Checkpoint]) -> None:
        # A trusted checkpoint vouches for its head and, through verified prev links,
        # for every earlier event back to the last break in the chain.
        chain = self.chain
        start = chain.first_seq or 1
        breaks = sorted(chain.breaks)
        covered = []
        genesis = self.by_n.get(0)
        if vouching and self.reader.mac_key is not None and genesis and genesis.body.get("mac"):
            # Each event's MAC was checked, with a key discarded once a checkpoint closed
            # its epoch: events before the last trusted checkpoint are authentic.
            covered.append((start, max(cp.last for cp in vouching)))
        for cp in vouching:
            back = [b for b in breaks if b <= cp.last]
            covered.append((max(back[-1] if back else start, start), cp.last))
        gaps: list[tuple[int, int]] = []
        for first, last in sorted(covered):
            if first > start:
                gaps.append((start, first - 1))
            start = max(start, last + 1)
        if start <= chain.max_seq():
            gaps.append((start, chain.max_seq()))
        for first, last in gaps:
            if chain.leaves(first, last) is None and all(
                any(s <= seq <= e for s, e, _ in chain.holes) for seq in (first, last)
            ):
                continue  # only missing events: already reported as deleted
            self.flag(
                "unverified_events",
                f"events {first}..{last} are not covered by any trusted checkpoint",
                chain.last_location,
                chain,
                first,
                last,
            )

    def _tail(self, successor: tuple[Checkpoint, dict[str, Any]] | None, as_of_ns: int) -> None:
        # A successor links to the last checkpoint its predecessor's sink had stored
        # (auditmw.integrity.writer.lineage): the chain is closed there, cleanly or not.
        chain = self.chain
        last = self.by_n[max(self.by_n)]
        if successor is not None and not self._link_holds(successor[1]):
            named = successor[1]
            end = named.get("last_seq")
            self.flag(
                "truncated_tail",
                f"the next chain names checkpoint {named.get('n')} (up to seq "
                f"{end}), which is not in the input: the tail was cut",
                last.location,
                chain,
                last.last + 1,
                end if type(end) is int and end > last.last else None,
            )
            return
        if last.body.get("final"):
            self._closed(last, successor)
        elif successor is not None:
            self.flag(
                "unclean_stop",
                "the writer stopped without a closing checkpoint "
                "(crash or kill) and a new chain continues",
                successor[0].location,
                chain,
            )
        elif self._silent(last, as_of_ns):
            self._ended(last)

    def _link_holds(self, named: dict[str, Any]) -> bool:
        """Whether the checkpoint a successor names is here, with its range and head."""
        number = named.get("n")
        kept = self.by_n.get(number) if type(number) is int else None
        return (
            kept is not None
            and kept.hash == named.get("checkpoint")
            and named.get("last_seq", kept.last) == kept.last
            and named.get("head", kept.body.get("head")) == kept.body.get("head")
        )

    def _closed(self, last: Checkpoint, successor: tuple[Checkpoint, Any] | None) -> None:
        chain, top = self.chain, self.chain.max_seq()
        if top > last.last:
            self.flag(
                "events_after_close",
                f"events {last.last + 1}..{top} follow the closing checkpoint",
                chain.last_location,
                chain,
                last.last + 1,
                top,
            )
        if successor is not None:
            self.reader.report.add(
                Finding(
                    "restart",
                    "the chain was closed and a new chain continues it",
                    successor[0].location,
                    chain.chain_id,
                )
            )

    @staticmethod
    def _silent(last: Checkpoint, as_of_ns: int) -> bool:
        interval = last.body.get("interval_s")
        return isinstance(interval, int) and as_of_ns - last.time_ns > grace_ns(interval)

    def _ended(self, last: Checkpoint) -> None:
        genesis = self.by_n.get(0)
        if genesis is not None and genesis.body.get("lineage") is True:
            # The writer kept restart state: its process died and no later process has
            # taken its place (yet).  A cut tail looks the same; a digest kept elsewhere
            # (--digest, --expected-head) tells them apart.
            self.flag(
                "unclean_stop",
                "no closing checkpoint, no heartbeat since the last one and no later "
                "chain continues this one: the writer died (or the tail was cut)",
                last.location,
                self.chain,
                last.last + 1,
            )
            return
        self.flag(
            "truncated_tail",
            "no closing checkpoint and no heartbeat since the last "
            "one: the tail was cut or the writer died",
            last.location,
            self.chain,
            last.last + 1,
        )
