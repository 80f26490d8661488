"""The on-disk spool: framing, torn tails, ordering and adoption of orphans."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.delivery.spool import Spool, read_records
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from pathlib import Path


def batch(*ids: int) -> Batch:
    events = [{"event_id": str(i), "n": i} for i in ids]
    return Batch(events, [orjson.dumps(e) for e in events])


def ids(b: Batch) -> list[int]:
    return [e["n"] for e in b.events]


def drain(spool: Spool) -> list[list[int]]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(ids(record))
        spool.advance()
    return out


class TestSpool:
    def test_replays_records_in_order(self, tmp_path: Path) -> None:
        """Records come back in the order they were appended, lines and events intact."""
        spool = Spool(tmp_path, "HTTPSink:0", 1 << 20)
        assert spool.peek() is None
        for i in range(3):
            assert spool.append(batch(2 * i, 2 * i + 1))
        assert spool.pending
        first = spool.peek()
        assert first is not None
        assert first.lines == [orjson.dumps({"event_id": "0", "n": 0}), b'{"event_id":"1","n":1}']
        assert drain(spool) == [[0, 1], [2, 3], [4, 5]]
        assert spool.peek() is None
        assert spool.path.stat().st_size == 0  # emptied once fully replayed
        spool.close()
        assert not spool.path.exists()

    def test_file_is_private(self, tmp_path: Path) -> None:
        """The spool file is created with mode 0600 in a directory created with 0700."""
        spool = Spool(tmp_path / "spool", "s", 1 << 20)
        assert spool.path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
        spool.close()

    def test_bounded_by_size(self, tmp_path: Path) -> None:
        """An append that would pass ``max_bytes`` is refused and nothing is written."""
        spool = Spool(tmp_path, "s", 200)
        assert spool.append(batch(1))
        size = spool.path.stat().st_size
        assert not spool.append(batch(*range(20)))
        assert spool.path.stat().st_size == size
        spool.close()

    def test_pending_spool_survives_close(self, tmp_path: Path) -> None:
        """A spool closed with undelivered records stays on disk for the next process."""
        spool = Spool(tmp_path, "s", 1 << 20)
        spool.append(batch(1))
        spool.close()
        assert spool.path.exists()


class TestTornTail:
    @settings(max_examples=60, deadline=None)
    @given(cut=st.integers(min_value=0, max_value=400), count=st.integers(1, 5))
    def test_any_truncation_yields_a_prefix(self, cut: int, count: int) -> None:
        """Cutting the file anywhere yields exactly the records written before the cut."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            spool = Spool(tmp, "s", 1 << 20)
            ends = []
            for i in range(count):
                spool.append(batch(i))
                ends.append(spool.path.stat().st_size)
            data = spool.path.read_bytes()
            spool.close()
        cut = min(cut, len(data))
        got = [ids(b) for _, b in read_records(data[:cut])]
        assert got == [[i] for i in range(sum(1 for end in ends if end <= cut))]

    def test_corrupt_record_stops_replay(self, tmp_path: Path) -> None:
        """A record whose checksum fails is not replayed (it is the last one here)."""
        spool = Spool(tmp_path, "s", 1 << 20)
        spool.append(batch(1))
        spool.append(batch(2))
        data = bytearray(spool.path.read_bytes())
        data[-3] ^= 0xFF
        assert [ids(b) for _, b in read_records(bytes(data))] == [[1]]
        spool.close()


class TestOrphans:
    def test_adopts_the_spool_of_a_dead_process(self, tmp_path: Path) -> None:
        """A spool file nobody locks is taken over, replayed first, and removed."""
        dead = Spool(tmp_path, "PostgresSink:0", 1 << 20)
        dead.append(batch(1, 2))
        dead.append(batch(3))
        orphan = dead.path.with_name("PostgresSink-0.999999.spool")
        os.rename(dead.path, orphan)
        dead.forget()  # the only descriptor: the lock is released, as when a process dies
        spool = Spool(tmp_path, "PostgresSink:0", 1 << 20)
        assert not orphan.exists()
        assert drain(spool) == [[1, 2], [3]]
        spool.close()

    def test_leaves_a_live_process_spool_alone(self, tmp_path: Path) -> None:
        """A spool file still locked by its owner is not adopted."""
        live = Spool(tmp_path, "s", 1 << 20)
        live.append(batch(1))
        other = live.path.with_name("s.999999.spool")
        os.rename(live.path, other)  # same open file, still locked
        spool = Spool(tmp_path, "s", 1 << 20)
        assert not spool.pending
        assert other.exists()
        spool.close()
        live.forget()

    def test_adopts_only_its_own_stream(self, tmp_path: Path) -> None:
        """Spools of other streams are not touched."""
        dead = Spool(tmp_path, "a", 1 << 20)
        dead.append(batch(1))
        orphan = dead.path.with_name("a.999999.spool")
        os.rename(dead.path, orphan)
        dead.forget()
        spool = Spool(tmp_path, "b", 1 << 20)
        assert not spool.pending
        assert orphan.exists()
        spool.close()
