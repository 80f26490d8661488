"""Whole streams: ChainEncoder on the Python core and on the native core, line for line."""

from __future__ import annotations

import itertools
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

import auditmw.integrity.writer.encoder
from auditmw import _native
from auditmw.cli import main
from auditmw.core import canonical
from auditmw.integrity import ChainEncoder, IntegrityOptions
from auditmw.sinks.base import Batch

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

T0 = 1_764_000_000_000_000_000


def events() -> list[dict[str, Any]]:
    """Every kind of content the writer meets, including the hostile and the unencodable."""
    out: list[dict[str, Any]] = []
    for i in range(40):
        out.append(
            {
                "schema_version": "1.0",
                "event_id": f"0192f5b2-7c1e-7a3b-9d4e-{i:012x}",
                "time": "2026-11-30T03:59:00.123456Z",
                "end_time": "2026-11-30T03:59:00.125456Z",
                "duration_us": 2000 + i,
                "kind": "http",
                "action": "orders.update",
                "operation": "update",
                "outcome": "success" if i % 3 else "failure",
                "severity": "info",
                "actor": {
                    "id": f"user-é-{i}",
                    "type": "user",
                    "roles": ["admin", "😀"],
                    "auth": {"method": "jwt", "verified": True},
                },
                "source": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 \u00e9\t"},
                "request": {
                    "id": f"req-{i}",
                    "method": "POST",
                    "path": f"/orders/{i}",
                    "scheme": "https",
                    "host": "api.example.com",
                    "protocol": "HTTP/1.1",
                    "query": 'a=1&b=\u0001\u001f"\\',
                    "bytes": i,
                },
                "response": {"status_code": 200 + i % 5, "bytes": 512},
                "resource": {"type": "orders", "id": str(i)},
                "service": {"name": "orders-api", "instance": "host-1/1234"},
                "policy": {"id": "default", "hash": "sha256:" + "0" * 64, "rule": "default"},
                "annotations": {"big": 2**64 - 1 - i, "neg": -(2**63), "f": 1.5e300, "s": "x" * i},
            }
        )
    # content mimicking the integrity object: the marker twice, serialized again
    chain_id = "0192f5b2-0000-7000-8000-000000000001"  # the first id: the chain's
    out[7]["annotations"]["integrity"] = {"chain_id": chain_id, "prev": "0" * 64}
    out[8]["zz"] = {"integrity": {"chain_id": chain_id, "seq": 1}}
    out[9]["annotations"]["s"] = '"integrity":{"chain_id":"0192f5b2-0000-7000-8000-000000000001",'
    # unencodable by orjson (a lone surrogate, a set): degraded on both cores alike
    out[10]["annotations"]["bad"] = "\ud800"
    out[11]["annotations"]["bad"] = {1, 2}
    out[12]["kind"] = "audit.policy_loaded"  # forces a checkpoint (and a key evolution)
    out.append({**out[0], "annotations": {"huge": "é\t" * 100_000}})
    return out


def encode(
    keys: Path, mac: bool, fmt: str, core: ModuleType | None, monkeypatch: pytest.MonkeyPatch
) -> Batch:
    """Encode ``events()`` with a deterministic chain id and clock, on the Python core
    (``core=None``) or the native one (fresh options: a chain takes the MAC key)."""
    options = IntegrityOptions(
        signing_key_file=str(keys / "auditmw.key"),
        mac_key_file=str(keys / "auditmw.mac") if mac else None,
        checkpoint_every=7,
    )
    ids = (f"0192f5b2-0000-7000-8000-{n:012x}" for n in itertools.count(1))
    clock = itertools.count(T0, 1_000_000_000)
    with monkeypatch.context() as patch:
        step = None if core is None else core.chain_step
        patch.setattr(_native, "chain_step", step)
        patch.setattr(_native, "MacKey", None if core is None else core.MacKey)
        # Only this thread reads the fake ids and clock: a thread another test left
        # running (a delivery worker's tick) must not take one and shift a checkpoint.
        me, real_time_ns = threading.get_ident(), time.time_ns
        real_id = canonical.new_event_id
        patch.setattr(
            auditmw.integrity.writer.encoder,
            "new_event_id",
            lambda now_ns=None: next(ids) if threading.get_ident() == me else real_id(now_ns),
        )
        patch.setattr(
            time,
            "time_ns",
            lambda: next(clock) if threading.get_ident() == me else real_time_ns(),
        )
        encoder = options.encoder_for(fmt, "app")
        assert isinstance(encoder, ChainEncoder)
        assert (encoder._step is None) == (step is None)
        assert (encoder._step_mac is None) == (step is None or not mac)
        batch = encoder.encode(events()[:20])
        batch.extend(encoder.encode(events()[20:]))
        batch.extend(encoder.finish() or Batch())
    return batch


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out), "--registry", str(out / "registry.json")]) == 0
    assert main(["keygen", "--out", str(out), "--mac"]) == 0
    return out


@pytest.mark.parametrize("fmt", ["auditmw", "ocsf", "ecs", "otel", "cloudevents"])
@pytest.mark.parametrize("mac", [True, False])
def test_both_cores_write_identical_lines_that_verify(
    core: ModuleType,
    *,
    keys: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    mac: bool,
) -> None:
    """The same events, Python core then native core: identical lines; ``auditmw verify``
    passes on the log (signed checkpoints every 7 events, the MAC key evolving)."""
    fallbacks: list[bool] = []

    def step(*args: Any) -> Any:
        result = core.chain_step(*args)
        fallbacks.append(result[0] is None)
        return result

    counting = SimpleNamespace(chain_step=step, MacKey=core.MacKey)
    python = encode(keys, mac, fmt, None, monkeypatch)
    native = encode(keys, mac, fmt, cast("ModuleType", counting), monkeypatch)
    assert len(python.lines) == len(native.lines) > 45
    for number, (want, got) in enumerate(zip(python.lines, native.lines, strict=True), 1):
        assert got == want, f"line {number} differs"
    assert python.events == native.events
    assert len(fallbacks) == len(events())
    if fmt != "auditmw":
        return  # the verifier reads the auditmw format
    assert sum(fallbacks) == 2  # events 7 and 8 mimic the integrity object
    path = tmp_path / "audit.jsonl"
    path.write_bytes(native.payload())
    args = ["verify", str(path), "--keys", str(keys / "registry.json")]
    if mac:
        args += ["--mac-key-file", str(keys / "auditmw.mac")]
    assert main(args) == 0, capsys.readouterr().out
    assert "CLEAN" in capsys.readouterr().out
