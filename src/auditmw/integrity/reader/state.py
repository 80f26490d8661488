"""The state of one verification pass: keys, chains seen so far and the report.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditmw.integrity.reader.chainstate import ChainState, MasterKeys
from auditmw.integrity.reader.report import Finding

if TYPE_CHECKING:
    from auditmw.integrity.keys import KeyRegistry
    from auditmw.integrity.reader.report import Location, Report

__all__ = ["ReadState"]


class ReadState:
    """What a verification pass knows so far: keys, per-chain state and findings.

    The streaming pass (:class:`~auditmw.integrity.reader.verify.Reader`) extends it;
    the fast path and the checkpoint checks take it as it is.
    """

    def __init__(self, report: Report, keys: KeyRegistry | None, mac_key: bytes | None) -> None:
        self.report = report
        self.keys = keys
        self.mac_key = mac_key
        self.masters = None if mac_key is None else MasterKeys(mac_key)
        self.chains: dict[str, ChainState] = {}
        self.unchecked: set[str] = set()
        self.source: str | None = None

    def _new_source(self, source: str) -> None:
        # Order is evidence only within one source: every chain starts a new run.
        self.source = source
        for chain in self.chains.values():
            chain.fresh_run = True

    def chain(self, chain_id: str) -> ChainState:
        """Return the state of ``chain_id``, created on first sight."""
        state = self.chains.get(chain_id)
        if state is None:
            state = self.chains[chain_id] = ChainState(chain_id)
        return state

    def flag(  # noqa: PLR0917 - internal, called positionally
        self,
        code: str,
        message: str,
        location: Location | None,
        chain: ChainState | None,
        seq: int | None = None,
        seq_end: int | None = None,
    ) -> Finding:
        """Record a finding; mark the (first) sequence number it concerns as damaged."""
        if chain is not None and seq is not None:
            chain.flagged.add(seq)  # ranges (gaps, unverified tails) are tracked apart
        cid = None if chain is None else chain.chain_id
        return self.report.add(Finding(code, message, location, cid, seq, seq_end))
