"""Retention as code: plan and apply over rotated files with a fake clock."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.cli import main
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.crypto import Keyring
from auditmw.delivery import Delivery
from auditmw.exceptions import PolicyError
from auditmw.integrity import IntegrityOptions
from auditmw.integrity.layout import TORN_FENCE
from auditmw.integrity.reader.sources import iter_file, use_keyring
from auditmw.pipeline import Pipeline
from auditmw.retention import RetentionRule, plan
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink, rotated_files

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 6, 1, tzinfo=UTC)
AGES = [500, 450, 100, 5, 4, 3, 2, 1]  # days, oldest file first


def write_log(live: Path, integrity: IntegrityOptions | None, count: int = 120) -> None:
    sink = FileSink(live, rotate_bytes=2500)
    pipeline = Pipeline(AuditConfig("svc"))
    options = DeliveryOptions(max_wait_ms=5)
    delivery = Delivery([sink], options, integrity=integrity, lifecycle=pipeline.lifecycle)
    for n in range(count):
        delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": n}))
        if n % 5 == 0:
            delivery.flush(5)
    delivery.close(10)


def age_files(live: Path) -> list[Path]:
    """Rename the rotated files so their stamps say they are AGES days old at NOW."""
    files = rotated_files(live)
    assert len(files) >= len(AGES)
    renamed = []
    for i, (path, age) in enumerate(zip(files, AGES, strict=False)):
        stamp = (NOW - timedelta(days=age)).strftime("%Y%m%dT%H%M%SZ")
        suffix = ".gz" if path.name.endswith(".gz") else ""
        target = path.with_name(f"{live.name}.{stamp}.{i + 1:06d}{suffix}")
        path.rename(target)
        renamed.append(target)
    for path in files[len(AGES) :]:  # the newest ones: younger than a day
        stamp = (NOW - timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
        path.rename(path.with_name(path.name.replace(path.name.split(".")[2], stamp)))
    return renamed


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys), "--registry", str(keys / "registry.json")]) == 0
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "audit.jsonl"
    integrity: dict[str, Any] = {
        "signing_key_file": str(keys / "auditmw.key"),
        "checkpoint_every": 10,
    }
    write_log(live, IntegrityOptions(**integrity))
    policy = tmp_path / "policy.json"
    document = {
        "service": {"name": "svc"},
        "sinks": [{"type": "file", "path": str(live)}],
        "integrity": integrity,
        "retention": {
            "hot_days": 30,
            "min_days": 365,
            "delete_after_days": 400,
            "archive": str(tmp_path / "archive"),
        },
    }
    policy.write_bytes(orjson.dumps(document))
    return {
        "live": live,
        "files": age_files(live),
        "policy": policy,
        "registry": keys / "registry.json",
        "archive": tmp_path / "archive",
        "document": document,
    }


def retention_events(live: Path) -> list[dict[str, Any]]:
    out = []
    for part in [*rotated_files(live), live]:
        for _, line in iter_file(part):
            doc = orjson.loads(line)
            if doc.get("kind") == "audit.retention":
                out.append(doc)
    return out


class TestPlan:
    def test_plan_output(self, setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
        """plan prints delete/archive/keep with the reason, and changes nothing."""
        before = sorted(p.name for p in setup["live"].parent.iterdir())
        code = main(
            ["retention", "plan", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        )
        out = capsys.readouterr().out.splitlines()
        assert code == 0
        first, second, third, fourth = setup["files"][:4]
        assert any(
            ln.startswith("delete") and first.name in ln and "delete_after_days=400" in ln
            for ln in out
        )
        assert any(ln.startswith("delete") and second.name in ln for ln in out)
        assert any(
            ln.startswith("archive") and third.name in ln and "hot_days=30" in ln for ln in out
        )
        assert any(ln.startswith("keep") and fourth.name in ln for ln in out)
        assert sorted(p.name for p in setup["live"].parent.iterdir()) == before

    def test_min_days_guard(self) -> None:
        """A rule that would delete before min_days is refused as a policy error."""
        with pytest.raises(PolicyError, match="min_days"):
            RetentionRule(delete_after_days=100, min_days=365)

    def test_nothing_young_is_deleted(self, setup: dict[str, Any]) -> None:
        """With the clock one day later, files under min_days are still kept or archived."""
        rule = RetentionRule.from_policy(setup["document"])
        actions = plan([setup["live"]], rule, NOW + timedelta(days=1))
        assert all(a.age_days >= 365 for a in actions if a.kind == "delete")


class TestApply:
    def test_apply_moves_deletes_and_records(self, setup: dict[str, Any]) -> None:
        """apply deletes old covered files, archives warm ones read-only, records each step."""
        args = ["retention", "apply", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        assert main([*args, "--keys", str(setup["registry"])]) == 0
        first, second, third, fourth = setup["files"][:4]
        assert not first.exists()
        assert not second.exists()
        assert not third.exists()
        assert fourth.exists()
        archived = setup["archive"] / third.name
        assert archived.stat().st_mode & 0o777 == 0o400
        assert b'"audit.policy_loaded"' in gzip.decompress(archived.read_bytes())
        events = retention_events(setup["live"])
        got = {(e["details"]["action"], e["details"]["file"]) for e in events}
        assert got == {("delete", first.name), ("delete", second.name), ("archive", third.name)}
        assert all(e["integrity"]["seq"] >= 1 for e in events)  # chained like any event

    def test_fenced_crash_fragment_does_not_block_or_crash_apply(
        self, setup: dict[str, Any]
    ) -> None:
        """A torn line the sink fenced after a crash is no event: the file is judged by the rest."""
        first = setup["files"][0]
        raw = first.read_bytes()
        lines = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).splitlines(keepends=True)
        lines.insert(1, lines[1][:40] + TORN_FENCE + b"\n")
        data = b"".join(lines)
        first.chmod(0o600)
        first.write_bytes(gzip.compress(data, mtime=0) if raw[:2] == b"\x1f\x8b" else data)
        args = ["retention", "apply", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        assert main([*args, "--keys", str(setup["registry"])]) == 0
        assert not first.exists()

    def test_without_keys_nothing_is_deleted(
        self, setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without keys to verify checkpoints, deletions are refused (and recorded); exit 1."""
        args = ["retention", "apply", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        assert main(args) == 1
        assert "refused" in capsys.readouterr().out
        assert setup["files"][0].exists()
        refused = [
            e for e in retention_events(setup["live"]) if e["details"]["action"] == "refused"
        ]
        assert len(refused) == 2
        assert {e["outcome"] for e in refused} == {"failure"}
        assert "--keys" in refused[0]["details"]["reason"]

    def test_tampered_log_blocks_deletion(self, setup: dict[str, Any]) -> None:
        """A log with a tampered event is never pruned."""
        victim = setup["files"][3]
        data = gzip.decompress(victim.read_bytes()).replace(b'"n":', b'"m":', 1)
        victim.chmod(0o600)
        victim.write_bytes(gzip.compress(data))
        args = ["retention", "apply", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        assert main([*args, "--keys", str(setup["registry"])]) == 1
        assert setup["files"][0].exists()
        reasons = {
            e["details"]["reason"]
            for e in retention_events(setup["live"])
            if e["details"]["action"] == "refused"
        }
        assert any("does not verify" in r for r in reasons)

    def test_deletes_oldest_first(self, setup: dict[str, Any]) -> None:
        """A file is not deleted while an older one stays (its checkpoint may be needed)."""
        from auditmw.integrity.keys import KeyRegistry
        from auditmw.retention import Action, apply

        actions = plan([setup["live"]], RetentionRule.from_policy(setup["document"]), NOW)
        first, second = setup["files"][:2]
        actions = [
            Action("keep", a.path, a.age_days, "held") if a.path == first else a for a in actions
        ]
        recorded: list[Action] = []
        done = apply(actions, keys=KeyRegistry.from_file(setup["registry"]), record=recorded.append)
        (refused,) = [a for a in done if a.path == second]
        assert refused.kind == "refused"
        assert (
            refused.reason == f"{first.name} was written earlier and is kept; delete oldest first"
        )
        assert second.exists()
        assert recorded == done

    def test_unchained_files_are_kept(self, tmp_path: Path) -> None:
        """Files without hash-chained events (integrity off) are never deleted."""
        logs = tmp_path / "logs"
        logs.mkdir()
        live = logs / "audit.jsonl"
        write_log(live, None)
        files = age_files(live)
        keys = tmp_path / "keys"
        assert main(["keygen", "--out", str(keys), "--registry", str(keys / "registry.json")]) == 0
        policy = tmp_path / "policy.json"
        document = {
            "service": {"name": "svc"},
            "sinks": [{"type": "file", "path": str(live)}],
            "retention": {"delete_after_days": 400},
        }
        policy.write_bytes(orjson.dumps(document))
        args = ["retention", "apply", "--policy", str(policy), "--now", NOW.isoformat()]
        assert main([*args, "--keys", str(keys / "registry.json")]) == 1
        assert files[0].exists()
        reasons = {
            e["details"]["reason"]
            for e in retention_events(live)
            if e["details"]["action"] == "refused"
        }
        assert len(reasons) == 1
        assert "unverified findings" in reasons.pop()  # unchained events cannot be verified

    def test_archive_encrypts(self, setup: dict[str, Any], tmp_path: Path) -> None:
        """With archive_encrypt, archived plaintext files are encrypted with the keyring."""
        setup["document"]["retention"]["archive_encrypt"] = True
        setup["policy"].write_bytes(orjson.dumps(setup["document"]))
        ring = tmp_path / "ring.json"
        keyring = Keyring.generate("cold-2026")
        keyring.save(ring)
        args = ["retention", "apply", "--policy", str(setup["policy"]), "--now", NOW.isoformat()]
        assert main([*args, "--keys", str(setup["registry"]), "--keyring", str(ring)]) == 0
        archived = setup["archive"] / setup["files"][2].name
        data = gzip.decompress(archived.read_bytes())
        assert data.startswith(b'{"auditmw_encryption"')
        assert b"policy_loaded" not in data
        with use_keyring(keyring):
            docs = [orjson.loads(line) for _, line in iter_file(archived, strict=True)]
        assert any(d.get("kind") == "audit.policy_loaded" for d in docs)


class TestShred:
    @staticmethod
    def encrypted_log(tmp_path: Path) -> tuple[Path, Keyring, FileSink]:
        keyring = Keyring.generate("k1")
        live = tmp_path / "audit.jsonl"
        sink = FileSink(live, rotate_bytes=700, encryption=keyring)
        for n in range(12):
            line = orjson.dumps({"n": n, "pad": "x" * 60})
            sink.emit(Batch([{"n": n}], [line]))
        return live, keyring, sink

    def test_refuses_the_live_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Issue 15.10: the file a sink appends to is refused, naming it and why; exit 2."""
        live, keyring, sink = self.encrypted_log(tmp_path)
        before = live.read_bytes()
        assert main(["retention", "shred", str(live)]) == 2
        err = capsys.readouterr().err
        assert str(live) in err
        assert "live" in err
        assert "rotated" in err
        assert live.read_bytes() == before
        sink.emit(Batch([{"n": 99}], [b'{"n":99}']))  # the sink writes on, still readable
        sink.close()
        with use_keyring(keyring):
            assert [orjson.loads(line)["n"] for _, line in iter_file(live, strict=True)][-1] == 99

    def test_refusal_shreds_nothing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the live file among the arguments, not even the rotated ones are shredded."""
        live, _, sink = self.encrypted_log(tmp_path)
        sink.close()
        first = rotated_files(live)[0]
        before = first.read_bytes()
        assert main(["retention", "shred", str(first), str(live)]) == 2
        assert first.read_bytes() == before
        assert "shredded" not in capsys.readouterr().out

    def test_shreds_a_rotated_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A rotated file is shredded as before."""
        live, _, sink = self.encrypted_log(tmp_path)
        sink.close()
        assert main(["retention", "shred", str(rotated_files(live)[0])]) == 0
        assert "shredded" in capsys.readouterr().out


class TestDeletionOrder:
    """Only a prefix of each stream may be deleted; other streams never block it."""

    def test_an_archived_copy_does_not_block_the_live_log(self, tmp_path: Path) -> None:
        """A kept file in the archive directory (sorting first) does not hold back the log's."""
        from auditmw.retention import _out_of_order

        archived = tmp_path / "archive" / "audit.jsonl.20260801T000000Z.000002.gz"
        oldest = tmp_path / "logs" / "audit.jsonl.20250601T000000Z.000001.gz"
        live = tmp_path / "logs" / "audit.jsonl"
        assert _out_of_order([archived, oldest, live], {oldest}) == {}

    def test_a_newer_file_of_the_same_stream_cannot_go_first(self, tmp_path: Path) -> None:
        """Deleting a file while an older one of the same log stays is refused."""
        from auditmw.retention import _out_of_order

        older = tmp_path / "logs" / "audit.jsonl.20250601T000000Z.000001.gz"
        newer = tmp_path / "logs" / "audit.jsonl.20250701T000000Z.000002.gz"
        live = tmp_path / "logs" / "audit.jsonl"
        blocked = _out_of_order([older, newer, live], {newer})
        assert blocked == {
            newer: f"{older.name} was written earlier and is kept; delete oldest first"
        }
