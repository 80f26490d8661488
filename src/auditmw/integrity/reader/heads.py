"""Checkpoints known from outside the log: expected heads and digest files.

What it trusts: the heads the auditor kept where the application host cannot write.
A log that ends before one of them was rolled back or truncated.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from auditmw.integrity.reader.report import Finding, Location

if TYPE_CHECKING:
    from auditmw.integrity.reader.chainstate import Checkpoint
    from auditmw.integrity.reader.verify import Reader

__all__ = ["ExpectedHead", "check_expected"]


@dataclass(frozen=True, slots=True)
class ExpectedHead:
    """A checkpoint known from outside the log (a digest file, a head kept elsewhere).

    Args:
        chain_id: its chain.
        n: its checkpoint number.
        hash: its ``seal.hash``.
        location: where it was read, when from a file.

    .. versionadded:: 0.1.0
    """

    chain_id: str
    n: int
    hash: str
    location: Location | None = None

    @classmethod
    def parse(cls, text: str) -> ExpectedHead:
        """Parse ``CHAIN_ID:N:HASH`` as printed in a report's chain ``head``.

        Raises:
            ValueError: the text is not in that form.
        """
        chain_id, n, digest = text.strip().rsplit(":", 2)
        if len(bytes.fromhex(digest)) != 32:
            raise ValueError("the checkpoint hash must have 64 hex digits")
        return cls(chain_id, int(n), digest)


def check_expected(reader: Reader, expected: list[ExpectedHead]) -> None:
    """Report expected heads that the log lacks or contradicts.

    A head of a chain the log does not hold at all, or one older than the chain's first
    checkpoint present, is what retention leaves (it removes the oldest files): a
    completeness finding, like ``missing_start``.  A head the log should hold, after a
    checkpoint it does hold, is tampering (``checkpoint_deleted``, ``rollback``).
    """
    absent: dict[str, list[ExpectedHead]] = {}
    for head in expected:
        chain = reader.chains.get(head.chain_id)
        numbers = {cp.n: cp for cp in chain.checkpoints if cp.intact} if chain else {}
        if chain is None:
            absent.setdefault(head.chain_id, []).append(head)
        elif numbers and head.n < min(numbers):
            continue  # before the chain's first checkpoint present: its start is missing
        else:
            _check_present(reader, head, numbers.get(head.n), max(numbers, default=-1))
    for chain_id, heads in absent.items():
        last = max(heads, key=lambda head: head.n)
        reader.report.add(
            Finding(
                "missing_chain",
                f"chain {chain_id} (checkpoints up to {last.n}, kept elsewhere{_where(last)}) "
                "is absent from the log: removed by retention, or deleted",
                last.location,
                chain_id,
            )
        )


def _where(head: ExpectedHead) -> str:
    return f" in {head.location}" if head.location else ""


def _check_present(reader: Reader, head: ExpectedHead, known: Checkpoint | None, top: int) -> None:
    chain = reader.chains[head.chain_id]
    where = f" (expected head from {head.location})" if head.location else ""
    if known is not None and known.hash == head.hash:
        return
    if known is not None:
        reader.flag(
            "checkpoint_forged",
            f"checkpoint {head.n} differs from the one kept elsewhere{where}",
            known.location,
            chain,
        )
    elif head.n > top:
        reader.report.add(
            Finding(
                "rollback",
                f"the log ends before checkpoint {head.n}, "
                f"which was seen before{where}: rolled back or truncated",
                head.location,
                head.chain_id,
            )
        )
    else:
        reader.flag(
            "checkpoint_deleted",
            f"checkpoint {head.n}{where} is missing from the log",
            head.location,
            chain,
        )
