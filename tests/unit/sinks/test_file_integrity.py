"""Rotated, compressed, spooled files still verify as one chain with ``auditmw verify``."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.cli import main
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.delivery import Delivery
from auditmw.integrity import IntegrityOptions
from auditmw.pipeline import Pipeline
from auditmw.sinks.file import FileSink, rotated_files

if TYPE_CHECKING:
    from pathlib import Path


def read_all(path: Path) -> list[dict[str, Any]]:
    out = []
    for part in [*rotated_files(path), path]:
        data = part.read_bytes()
        data = gzip.decompress(data) if part.name.endswith(".gz") else data
        out += [orjson.loads(line) for line in data.splitlines()]
    return out


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out), "--registry", str(out / "registry.json")]) == 0
    assert main(["keygen", "--out", str(out), "--mac"]) == 0
    return out


class TestRotatedChain:
    def test_rotation_outage_and_spool_verify_clean(
        self, tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A chain cut into gzipped files, across an outage replayed from the spool, verifies."""
        logs = tmp_path / "logs"
        logs.mkdir()
        integrity = IntegrityOptions(
            signing_key_file=str(keys / "auditmw.key"),
            mac_key_file=str(keys / "auditmw.mac"),
            checkpoint_every=25,
        )
        sink = FileSink(logs / "audit.jsonl", rotate_bytes=4000)
        options = DeliveryOptions(
            spool_dir=str(tmp_path / "spool"), max_wait_ms=5, retry_initial=0.01, retry_max=0.02
        )
        pipeline = Pipeline(AuditConfig("svc"))
        delivery = Delivery([sink], options, integrity=integrity, lifecycle=pipeline.lifecycle)
        for n in range(60):
            delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": n}))
        delivery.flush(5)
        live, aside = logs / "audit.jsonl", tmp_path / "aside.bin"
        live.rename(aside)
        live.mkdir()  # a directory where the file was: every write fails, batches are spooled
        for n in range(60, 90):
            delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": n}))
        delivery.flush(5)
        (spooled,) = (tmp_path / "spool").glob("*.spool")
        assert spooled.stat().st_size > 0
        live.rmdir()
        aside.rename(live)
        for n in range(90, 120):
            delivery.submit(pipeline.lifecycle("audit.policy_loaded", {"n": n}))
        delivery.close(10)
        assert len(rotated_files(logs / "audit.jsonl")) >= 3
        kinds = [e["kind"] for e in read_all(logs / "audit.jsonl")]
        assert kinds.index("audit.sink_failed") < kinds.index("audit.sink_recovered")
        numbers = [
            e["details"]["n"] for e in read_all(logs / "audit.jsonl") if "n" in e.get("details", {})
        ]
        assert numbers == list(range(120))
        args = ["verify", str(logs), "--keys", str(keys / "registry.json")]
        assert main([*args, "--mac-key-file", str(keys / "auditmw.mac")]) == 0, capsys.readouterr()
        assert "CLEAN" in capsys.readouterr().out
