"""The reordering rule: within one source, a chain's events are stored in sequence order.

A writer appends a chain's events in ``seq`` order to each file, table or stream, so
within one source the storage order is evidence; across sources it is not (rotated
files may be listed in any order, and each chain's order is defined by its ``seq``
numbers and ``prev`` links, which the reader checks whatever the order).

The reader records where each run of consecutive sequence numbers starts in storage
order (:attr:`ChainState.runs`).  Here, per source, the longest in-order subsequence
of runs (weighted by events) is kept in place; every other run is displaced.  Each
displaced run spans the stretch between where it is stored and where it belongs;
overlapping stretches merge into one *region*, reported as one ``reordered_event``
naming the sequence numbers stored in it.  So a swap of two events is one finding at
any distance, and so is a moved block.  Checkpoints are judged the same way by their
numbers (their position among the events is not evidence: they commit by seq).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, NamedTuple

from auditmw.integrity.reader.report import Finding

if TYPE_CHECKING:
    from auditmw.integrity.reader.chainstate import ChainState
    from auditmw.integrity.reader.report import Location, Report

__all__ = ["check_order"]


class _Run(NamedTuple):
    start: int
    end: int
    location: Location


def _runs_by_source(chain: ChainState) -> dict[str, list[_Run]]:
    by_source: dict[str, list[_Run]] = {}
    marks = chain.runs
    for k, (index, seq, location) in enumerate(marks):
        count = (marks[k + 1][0] if k + 1 < len(marks) else chain.events) - index
        runs = by_source.setdefault(location.source, [])
        if runs and runs[-1].end + 1 == seq:
            runs[-1] = runs[-1]._replace(end=seq + count - 1)
        else:
            runs.append(_Run(seq, seq + count - 1, location))
    return by_source


def _kept(runs: list[_Run]) -> list[bool]:
    """Mark the heaviest subsequence of runs in increasing seq order (O(n log n))."""
    ranks = {start: r for r, start in enumerate(sorted({run.start for run in runs}))}
    size = len(ranks)
    tree = [(0, -1)] * (size + 1)  # Fenwick tree of (best weight, run index) prefix maxima
    best: list[tuple[int, int]] = []
    for i, run in enumerate(runs):
        rank, found = ranks[run.start], (0, -1)
        while rank > 0:
            found = max(found, tree[rank])
            rank -= rank & -rank
        entry = (found[0] + run.end - run.start + 1, i)
        best.append((entry[0], found[1]))
        rank = ranks[run.start] + 1
        while rank <= size:
            tree[rank] = max(tree[rank], entry)
            rank += rank & -rank
    kept = [False] * len(runs)
    i = max(range(len(runs)), key=lambda k: best[k][0]) if runs else -1
    while i >= 0:
        kept[i] = True
        i = best[i][1]
    return kept


def _regions(runs: list[_Run]) -> list[tuple[int, int]]:
    kept = _kept(runs)
    places = [i for i, keep in enumerate(kept) if keep]
    starts = [runs[i].start for i in places]
    spans = []
    for i, run in enumerate(runs):
        if kept[i]:
            continue
        after = bisect.bisect(starts, run.start)  # the kept run it belongs before
        home = places[after] if after < len(places) else len(runs)
        spans.append((i, home - 1) if home > i else (home, i))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _checkpoint_runs(chain: ChainState) -> dict[str, list[_Run]]:
    by_source: dict[str, list[_Run]] = {}
    seen: set[int] = set()
    for cp in chain.checkpoints:
        if not cp.intact or cp.n in seen:  # copies are judged as duplicates
            continue
        seen.add(cp.n)
        runs = by_source.setdefault(cp.location.source, [])
        if runs and runs[-1].end + 1 == cp.n:
            runs[-1] = runs[-1]._replace(end=cp.n)
        else:
            runs.append(_Run(cp.n, cp.n, cp.location))
    return by_source


def _report_regions(
    report: Report, chain: ChainState, by_source: dict[str, list[_Run]], what: str
) -> None:
    for runs in by_source.values():
        if len(runs) < 2:
            continue
        for lo, hi in _regions(runs):
            first = min(run.start for run in runs[lo : hi + 1])
            last = max(run.end for run in runs[lo : hi + 1])
            is_events = what == "events"
            report.add(
                Finding(
                    "reordered_event",
                    f"{what} {first}..{last} are stored out of "
                    + ("sequence" if is_events else "number")
                    + " order",
                    runs[lo].location,
                    chain.chain_id,
                    first if is_events else None,
                    last if is_events else None,
                )
            )


def check_order(report: Report, chain: ChainState) -> None:
    """Report each out-of-order stretch of ``chain``'s events or checkpoints, per source."""
    _report_regions(report, chain, _runs_by_source(chain), "events")
    _report_regions(report, chain, _checkpoint_runs(chain), "checkpoints")
