"""Real logs for the command-line tests: chained, MAC'd and signed; plain or encrypted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from auditmw.cli import main
from auditmw.crypto import Keyring
from auditmw.integrity import IntegrityOptions
from auditmw.sinks.file import FileSink

if TYPE_CHECKING:
    from pathlib import Path

#: What an attacker can put in a request: a user agent full of terminal escapes.
HOSTILE_AGENT = "curl\x1b]0;pwned\x07\x1b[2J\x1b[1;31mred\u009b6n\u202eevil\x7f"


def event(n: int, **extra: Any) -> dict[str, Any]:
    """A plausible HTTP event (enough for the query filters and the report)."""
    return {
        "time": f"2026-11-30T03:59:{n % 60:02d}.000000Z",
        "kind": "http",
        "action": "orders.read",
        "operation": "read",
        "outcome": "success",
        "severity": "info",
        "actor": {"id": f"user-{n}", "type": "user"},
        "request": {"id": f"req-{n}", "path": f"/orders/{n}", "user_agent": "curl/8"},
        "response": {"status_code": 200},
        **extra,
    }


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A signing key with its registry entry, and a MAC key, made by ``auditmw keygen``."""
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out), "--registry", str(out / "registry.json")]) == 0
    assert main(["keygen", "--out", str(out), "--mac"]) == 0
    return out


def key_args(keys: Path) -> list[str]:
    """``--keys`` and ``--mac-key-file`` for the CLI."""
    return ["--keys", str(keys / "registry.json"), "--mac-key-file", str(keys / "auditmw.mac")]


def write_log(
    path: Path,
    keys: Path,
    events: list[dict[str, Any]],
    *,
    checkpoint_every: int = 10,
    keyring: Keyring | None = None,
) -> Path:
    """Write ``events`` chained and signed through the file sink (encrypted with ``keyring``)."""
    options = IntegrityOptions(
        signing_key_file=str(keys / "auditmw.key"),
        mac_key_file=str(keys / "auditmw.mac"),
        checkpoint_every=checkpoint_every,
    )
    encoder = options.encoder_for("auditmw", "app")
    sink = FileSink(path, encryption=keyring)
    sink.emit(encoder.encode(events))
    closing = encoder.finish()
    if closing is not None:
        sink.emit(closing)
    sink.close()
    return path


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    """A keyring file (mode 0600) holding key id ``kek-1``."""
    path = tmp_path / "keyring.json"
    Keyring.generate("kek-1").save(path)
    return path
