"""Structural tampering (deleting, moving, duplicating, splicing, cutting records) is caught.

A generator of tamperings runs over real logs in every stored format (plain, MAC,
encrypted files); each tampering must be reported with the right finding and location,
and every untampered log, however it was stored, must report no tamper finding.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw.crypto import Keyring
from auditmw.integrity import IntegrityOptions, KeyRegistry, Report, generate_keypair, verify_files
from auditmw.integrity.reader.sources import expand_paths, iter_file, use_keyring
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink
from tests.security.test_tamper import make_event

if TYPE_CHECKING:
    from pathlib import Path

MAC_KEY = bytes(range(32))
EVENTS = 30
EVERY = 7
_KEYS = generate_keypair()
_REGISTRY = KeyRegistry.from_mapping({"keys": [{"public_key": _KEYS[1].decode()}]})


@dataclass
class Chain:
    """One clean chained log: its records and, per record, the seq it carries (None: checkpoint)."""

    lines: list[bytes]
    seqs: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seqs = [_seq(line) for line in self.lines]

    def at(self, seq: int) -> int:
        """Return the index of the event with ``seq``."""
        return self.seqs.index(seq)

    @property
    def checkpoints(self) -> list[int]:
        return [i for i, s in enumerate(self.seqs) if s is None]


def _seq(line: bytes) -> int | None:
    doc = orjson.loads(line)
    return None if doc.get("kind") == "audit.checkpoint" else int(doc["integrity"]["seq"])


def make_chain(*, mac: bool = True, events: int = EVENTS, mac_index: int = 0) -> Chain:
    """Return a closed chain of ``events`` events, checkpointed every ``EVERY``."""
    options = IntegrityOptions(
        signing_key=_KEYS[0], mac_key=MAC_KEY if mac else None, checkpoint_every=EVERY
    )
    for _ in range(mac_index):  # earlier chains of the same options (a restart, a 2nd sink)
        options.encoder_for("auditmw", "other")
    encoder = options.encoder_for("auditmw", "app")
    batch = encoder.encode([make_event(i) for i in range(events)])
    batch.extend(encoder.finish() or Batch())
    return Chain(list(batch.lines))


@dataclass
class Store:
    """Writes records as one of the stored formats and verifies them."""

    tmp_path: Path
    form: str  # "plain", "mac" or "encrypted"
    keyring: Keyring = field(default_factory=Keyring.generate)

    @property
    def path(self) -> Path:
        return self.tmp_path / "audit.jsonl"

    def write(self, lines: list[bytes]) -> None:
        """Store ``lines`` as this form's file."""
        self.path.unlink(missing_ok=True)
        if self.form != "encrypted":
            self.path.write_bytes(b"".join(line + b"\n" for line in lines))
            return
        self.path.touch()
        sink = FileSink(self.path, encryption=self.keyring)
        for line in lines:  # one encrypted line per record
            sink.emit(Batch([], [line]))
        sink.close()

    def verify(self, lines: list[bytes] | None, **kwargs: Any) -> Report:
        """Store ``lines`` (unless ``None``: verify the file as it is) and verify the file."""
        if lines is not None:
            self.write(lines)
        kwargs.setdefault("keys", _REGISTRY)
        kwargs.setdefault("as_of_ns", time.time_ns())
        if self.form != "plain":
            kwargs.setdefault("mac_key", MAC_KEY)
        with use_keyring(self.keyring if self.form == "encrypted" else None):
            return verify_files([self.path], **kwargs)


def tampers(report: Report) -> list[tuple[str, int | None, int | None, int | None]]:
    """Return (code, line, seq, seq_end) of every tamper finding."""
    return [
        (f.code, f.location.line if f.location else None, f.seq, f.seq_end)
        for f in report.findings
        if f.category == "tamper"
    ]


FORMS = [pytest.param(f, id=f) for f in ("plain", "mac", "encrypted")]


def _line(store: Store, index: int) -> int:
    """The 1-based line (record number) of record ``index``."""
    return index + 1


@pytest.fixture(params=FORMS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(tmp_path, request.param)


@pytest.fixture(scope="module")
def chains() -> dict[bool, Chain]:
    return {True: make_chain(mac=True), False: make_chain(mac=False)}


def chain_for(store: Store, chains: dict[bool, Chain]) -> Chain:
    return chains[store.form != "plain"]


class TestDeletion:
    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_any_deleted_range_is_reported_with_its_seqs(
        self, store: Store, chains: dict[bool, Chain], data: st.DataObject
    ) -> None:
        """Deleting events first..last anywhere (the tail included) is deleted_events first..last."""
        chain = chain_for(store, chains)
        first = data.draw(st.integers(1, EVENTS), label="first")
        last = data.draw(st.integers(first, EVENTS), label="last")
        lines = [
            line
            for line, seq in zip(chain.lines, chain.seqs, strict=True)
            if seq is None or not first <= seq <= last
        ]
        report = store.verify(lines)
        deleted = [(f.seq, f.seq_end) for f in report.findings if f.code == "deleted_events"]
        assert deleted == [(first, last)]
        assert report.verdict == "tampered"

    def test_every_event_deleted_checkpoints_kept(
        self, store: Store, chains: dict[bool, Chain]
    ) -> None:
        """A log reduced to its checkpoints reports every event as deleted."""
        chain = chain_for(store, chains)
        report = store.verify([chain.lines[i] for i in chain.checkpoints])
        assert [(f.code, f.seq, f.seq_end) for f in report.findings if f.category == "tamper"] == [
            ("deleted_events", 1, EVENTS)
        ]
        assert report.verdict == "tampered"

    def test_last_event_deleted_before_the_final_checkpoint(
        self, store: Store, chains: dict[bool, Chain]
    ) -> None:
        """Removing the last event (audit.stopped in a real log) is deleted at the checkpoint."""
        chain = chain_for(store, chains)
        lines = list(chain.lines)
        del lines[chain.at(EVENTS)]
        assert tampers(store.verify(lines)) == [
            ("deleted_events", _line(store, len(lines) - 1), EVENTS, EVENTS)
        ]


class TestEmpty:
    def test_empty_input_is_not_verified(self, store: Store) -> None:
        """No records is a distinct not-verified verdict, never clean."""
        report = store.verify([])
        assert not report.clean
        assert "no_records" in report.codes()
        assert report.verdict == "not_verified"

    def test_empty_input_allowed(self, store: Store) -> None:
        """With allow_empty, an empty input is clean."""
        report = store.verify([], allow_empty=True)
        assert report.verdict == "clean"
        assert report.clean


def _swap(chain: Chain, a: int, b: int) -> list[bytes]:
    lines = list(chain.lines)
    i, j = chain.at(a), chain.at(b)
    lines[i], lines[j] = lines[j], lines[i]
    return lines


class TestReordering:
    @pytest.mark.parametrize("distance", [1, 2, 3, 6, 7, 8, 20, EVENTS - 1])
    def test_a_swap_is_one_finding_at_every_distance(
        self, store: Store, chains: dict[bool, Chain], distance: int
    ) -> None:
        """Swapping two events is one reordered_event spanning them, however far apart."""
        chain = chain_for(store, chains)
        a = 1 if distance == EVENTS - 1 else 3
        b = a + distance
        lines = _swap(chain, a, b)
        assert tampers(store.verify(lines)) == [
            ("reordered_event", _line(store, min(chain.at(a), chain.at(b))), a, b)
        ]

    @pytest.mark.parametrize("distance", [1, 2, 3])
    def test_swapped_checkpoints_are_one_finding(
        self, store: Store, chains: dict[bool, Chain], distance: int
    ) -> None:
        """Swapping two checkpoints is one reordered_event at the first, at any distance."""
        chain = chain_for(store, chains)
        i, j = chain.checkpoints[1], chain.checkpoints[1 + distance]
        lines = list(chain.lines)
        lines[i], lines[j] = lines[j], lines[i]
        assert tampers(store.verify(lines)) == [("reordered_event", i + 1, None, None)]

    def test_moved_block_is_one_finding(self, store: Store, chains: dict[bool, Chain]) -> None:
        """Moving a block of events elsewhere is one reordered_event."""
        chain = chain_for(store, chains)
        block = [chain.lines[chain.at(s)] for s in (4, 5, 6)]
        rest = [line for line in chain.lines if line not in block]
        target = rest.index(chain.lines[chain.at(20)])
        lines = rest[:target] + block + rest[target:]
        got = tampers(store.verify(lines))
        assert [(code, seq, end) for code, _, seq, end in got] == [("reordered_event", 4, 19)]

    def test_moved_encrypted_line_is_detected(
        self, tmp_path: Path, chains: dict[bool, Chain]
    ) -> None:
        """Swapping two encrypted lines (without the key) breaks their authentication."""
        store = Store(tmp_path, "encrypted")
        store.write(chains[True].lines)
        stored = store.path.read_bytes().split(b"\n")
        stored[5], stored[6] = stored[6], stored[5]
        store.path.write_bytes(b"\n".join(stored))
        report = store.verify(None)
        assert report.verdict == "tampered"
        assert {f.location.line for f in report.findings if f.location} & {6, 7}


class TestOtherStructuralTampering:
    def test_splice_from_another_chain(self, store: Store, chains: dict[bool, Chain]) -> None:
        """An event copied from another chain is foreign."""
        chain = chain_for(store, chains)
        other = make_chain(mac=store.form != "plain", events=5)
        lines = list(chain.lines)
        lines.insert(4, other.lines[other.at(3)])
        assert tampers(store.verify(lines)) == [("foreign_event", _line(store, 4), 3, 3)]

    def test_cut_mid_line(self, store: Store, chains: dict[bool, Chain]) -> None:
        """A file cut inside a record reports the fragment; the uncommitted rest is unverified."""
        chain = chain_for(store, chains)
        i = chain.at(20)
        report = store.verify([*chain.lines[:i], chain.lines[i][:57]])
        assert tampers(report) == [("malformed_record", i + 1, None, None)]
        assert "unverified_events" in report.codes()

    def test_fragment_joined_to_the_next_record(
        self, store: Store, chains: dict[bool, Chain]
    ) -> None:
        """A torn record glued to the next one is malformed, and both events are missing."""
        chain = chain_for(store, chains)
        i = chain.at(20)
        lines = [*chain.lines[:i], chain.lines[i][:57] + chain.lines[i + 1], *chain.lines[i + 2 :]]
        assert tampers(store.verify(lines)) == [
            ("malformed_record", i + 1, None, None),
            ("deleted_events", lines.index(chain.lines[chain.at(22)]) + 1, 20, 21),
        ]

    def test_duplicates_are_benign(self, store: Store, chains: dict[bool, Chain]) -> None:
        """Byte-identical copies (at-least-once delivery) leave the log clean."""
        chain = chain_for(store, chains)
        lines = list(chain.lines)
        lines.insert(9, lines[3])
        lines.append(lines[-2])
        report = store.verify(lines)
        assert report.clean
        assert report.verdict == "clean"


class TestNoFalseAlarm:
    @pytest.mark.parametrize("mac_index", [0, 1, 3])
    def test_retention_trimmed_chain(self, tmp_path: Path, mac_index: int) -> None:
        """A chain whose first records (genesis checkpoint included) were removed is not forged."""
        store = Store(tmp_path, "mac")
        chain = make_chain(mac_index=mac_index)
        cut = chain.checkpoints[2] + 3  # mid-range: the kept part starts inside a checkpoint
        report = store.verify(chain.lines[cut:])
        assert tampers(report) == []
        assert "missing_start" in report.codes()
        assert report.verdict == "incomplete"

    @pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
    def test_retention_by_a_real_rotating_sink_of_a_second_stream(
        self, tmp_path: Path, compress: bool
    ) -> None:
        """A second stream (MAC index 1) whose oldest files FileSink deleted is not forged."""
        options = IntegrityOptions(
            signing_key=_KEYS[0], mac_key=MAC_KEY, checkpoint_every=5, checkpoint_interval_s=1
        )
        first = options.encoder_for("auditmw", "a")  # takes master key 0
        second = options.encoder_for("auditmw", "b")  # master key 1
        sink = FileSink(tmp_path / "audit.jsonl", rotate_bytes=4000, max_files=2, compress=compress)
        now = time.time_ns()
        for n in range(30):
            sink.emit(second.encode([make_event(n), make_event(n + 100)]))
            # An interval checkpoint in its own batch: rotated files may start with it.
            now += 2 * 10**9
            sink.emit(second.tick(now) or Batch())
        sink.emit(second.finish() or Batch())
        sink.close()
        first.finish()
        first_record = next(iter_file(expand_paths([tmp_path])[0]))[1]
        assert b'"kind":"audit.checkpoint"' in first_record  # the case that looked forged
        report = verify_files([tmp_path], keys=_REGISTRY, mac_key=MAC_KEY, as_of_ns=now)
        assert tampers(report) == []
        assert "missing_start" in report.codes()

    def test_unsigned_chain_without_any_checkpoint_is_not_verified(self, tmp_path: Path) -> None:
        """Events whose checkpoints are all gone are never a clean verdict."""
        chain = make_chain()
        lines = [line for line, seq in zip(chain.lines, chain.seqs, strict=True) if seq]
        report = Store(tmp_path, "mac").verify(lines)
        assert "no_checkpoint" in report.codes()
        assert report.verdict == "tampered"  # the events are also foreign to any checkpoint


def _write_rotated(tmp_path: Path, workers: int = 2, batches: int = 12) -> Path:
    """Write interleaved batches of several chains through a rotating FileSink."""
    logs = tmp_path / "logs"
    logs.mkdir()
    sink = FileSink(logs / "audit.jsonl", rotate_bytes=6000)
    options = IntegrityOptions(signing_key=_KEYS[0], mac_key=MAC_KEY, checkpoint_every=5)
    encoders = [options.encoder_for("auditmw", "s") for _ in range(workers)]
    for n in range(batches):
        for k in range(workers)[:: 1 if n % 2 else -1]:
            sink.emit(encoders[k].encode([make_event(n * 10 + k), make_event(n * 10 + k + 1)]))
    for encoder in encoders:
        sink.emit(encoder.finish() or Batch())
    sink.close()
    return logs


def _worker(directory: str, worker: int, batches: int) -> None:
    """A forked worker: its own options and chain, appending to the shared rotating file."""
    from pathlib import Path

    sink = FileSink(Path(directory) / "audit.jsonl", rotate_bytes=5000)
    options = IntegrityOptions(signing_key=_KEYS[0], mac_key=MAC_KEY, checkpoint_every=4)
    encoder = options.encoder_for("auditmw", "s")
    for n in range(batches):
        sink.emit(encoder.encode([make_event(worker * 1000 + n)]))
    sink.emit(encoder.finish() or Batch())
    sink.close()


class TestRotatedMultiWorker:
    def test_forked_workers_sharing_a_rotating_file(self, tmp_path: Path) -> None:
        """Two forked workers appending to one rotating file: every chain verifies clean."""
        import multiprocessing

        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=_worker, args=(str(tmp_path), k, 40)) for k in range(2)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=120)  # a hang guard only
            assert process.exitcode == 0
        assert len(list(tmp_path.glob("audit.jsonl.*"))) > 3
        report = verify_files([tmp_path], keys=_REGISTRY, mac_key=MAC_KEY)
        assert report.findings == []
        assert sorted(c.events for c in report.chains) == [40, 40]

    def test_rotated_files_of_several_workers_verify_clean(self, tmp_path: Path) -> None:
        """Rotated files starting with different workers' chains verify with no finding."""
        logs = _write_rotated(tmp_path)
        assert len(list(logs.iterdir())) > 4
        report = verify_files([logs], keys=_REGISTRY, mac_key=MAC_KEY)
        assert report.findings == []
        assert report.verdict == "clean"

    def test_file_order_does_not_change_the_verdict(self, tmp_path: Path) -> None:
        """Files given in any order verify as they do in rotation order."""
        logs = _write_rotated(tmp_path)
        files = sorted(p for p in logs.iterdir() if not p.name.startswith("."))
        report = verify_files(files[::-1], keys=_REGISTRY, mac_key=MAC_KEY)
        assert report.findings == []

    def test_state_file_in_the_log_directory_is_not_a_record(self, tmp_path: Path) -> None:
        """A ``*.chain.json`` state file next to the logs is not read as a log."""
        logs = _write_rotated(tmp_path, batches=2)
        (logs / "FileSink_0.chain.json").write_text(json.dumps({"chain_id": "x", "n": 3}))
        report = verify_files([logs], keys=_REGISTRY, mac_key=MAC_KEY)
        assert report.findings == []


class TestGeneratedTampering:
    """Hypothesis draws the tampering; the verifier must name it exactly."""

    @settings(
        max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_any_swap(self, tmp_path: Path, chains: dict[bool, Chain], data: st.DataObject) -> None:
        """Any two events swapped: one reordered_event from the first to the second."""
        store = Store(tmp_path, data.draw(st.sampled_from(["plain", "mac"]), label="form"))
        chain = chain_for(store, chains)
        a = data.draw(st.integers(1, EVENTS - 1), label="a")
        b = data.draw(st.integers(a + 1, EVENTS), label="b")
        assert tampers(store.verify(_swap(chain, a, b))) == [
            ("reordered_event", chain.at(a) + 1, a, b)
        ]

    @settings(
        max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_any_moved_block(
        self, tmp_path: Path, chains: dict[bool, Chain], data: st.DataObject
    ) -> None:
        """A block of events moved anywhere is one reordered_event spanning the displacement."""
        store = Store(tmp_path, "mac")
        chain = chain_for(store, chains)
        first = data.draw(st.integers(1, EVENTS), label="first")
        last = data.draw(st.integers(first, min(EVENTS, first + 4)), label="last")
        block = [chain.lines[chain.at(s)] for s in range(first, last + 1)]
        rest = [line for line in chain.lines if line not in block]
        target = data.draw(st.integers(0, len(rest)), label="target")
        lines = rest[:target] + block + rest[target:]
        order = [s for s in (_seq(line) for line in lines) if s is not None]
        got = tampers(store.verify(lines))
        if order == sorted(order):
            assert got == []  # moved among checkpoints only: the events keep their order
            return
        assert len(got) == 1
        code, _, low, high = got[0]
        assert code == "reordered_event"
        assert low is not None
        assert high is not None
        assert low <= first
        assert last <= high

    @settings(
        max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data())
    def test_any_duplicated_record_is_benign(
        self, tmp_path: Path, chains: dict[bool, Chain], data: st.DataObject
    ) -> None:
        """A byte-identical copy of any record, stored anywhere after it, is benign."""
        store = Store(tmp_path, data.draw(st.sampled_from(["plain", "mac"]), label="form"))
        chain = chain_for(store, chains)
        source = data.draw(st.integers(0, len(chain.lines) - 1), label="source")
        target = data.draw(st.integers(source + 1, len(chain.lines)), label="target")
        lines = list(chain.lines)
        lines.insert(target, lines[source])
        report = store.verify(lines)
        assert report.verdict == "clean"
