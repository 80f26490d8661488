"""Docs as tests: every Python and shell block of README.md and docs/*.md runs.

Each block is one case, with the id ``file:line`` of its opening fence.  The
conventions (``<!-- test: fragment (reason) -->``, ``<!-- test: continue -->``,
``<!-- test: service NAME -->``) and how each language is run and checked are in
``tests/_docblocks.py``.

Every document runs in its own copy of one prepared directory, built once:

* ``examples/``: the repository's examples;
* ``audit-out/``: the quick-start demo's log (``demo.jsonl``, its tampered copy
  ``demo.tampered.jsonl`` and ``keys/``), written by ``examples/quickstart.py``;

and nothing else: keys a page needs are made by the page's own ``auditmw keygen`` block.
A page may ask for the state a reader would have by then with ``<!-- test: setup NAME -->``
(``SETUPS`` below), each serving requests through the page's own configuration:
``audit-log`` (the README's integrity configuration: ``audit.jsonl``, ``digest.jsonl``),
``encrypted-log`` (docs/protect.md's encrypted ``logs/audit.jsonl``), ``tamper-encrypted``
(a wrong keyring ``other.json`` and one altered line), ``archived-file`` (a rotated,
encrypted file in ``archive/`` as ``retention apply`` leaves it) and ``log-history`` (a fresh log from
docs/protect.md's ``policy.toml``, its oldest rotated files renamed to months ago).

Secrets the docs read from the environment, as a deployment provides them, are set:
``AUDITMW_JWT_SECRET``, ``ORDERS_JWT_SECRET``, ``ORDERS_MAC_KEY`` and ``THE_KEY`` (the
API key docs/identity.md hashes).
Documents run in parallel threads (one subprocess each at a time), so the whole
module takes about as long as its longest document.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests._docblocks import (
    Block,
    Outcome,
    Setup,
    doc_env,
    extract,
    python_program,
    run_document,
)
from tests.conftest import SERVICES, is_reachable

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def _blocks() -> list[Block]:
    return [block for doc in DOCS for block in extract(ROOT, doc)]


BLOCKS = _blocks()
SECRETS = {
    "AUDITMW_JWT_SECRET": "doc-test-jwt-secret-0123456789abcdef",
    "THE_KEY": "amk_docs-example-key-123",
    "ORDERS_JWT_SECRET": "doc-test-orders-jwt-secret-0123456789",
    "ORDERS_MAC_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
}

# Requests through a configuration: CONFIG is replaced by the expression that builds it.
SERVE = """
import sys

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware, DeliveryOptions, IntegrityOptions
from auditmw.crypto import Keyring
from auditmw.sinks import FileSink

config = CONFIG
app = Starlette(routes=[Route("/orders/{order_id}", lambda r: PlainTextResponse("ok"))])
with TestClient(AuditMiddleware(app, config)) as client:
    for n in range(1, int(sys.argv[1]) + 1):
        client.get(f"/orders/{n}")
"""
README_INTEGRITY = """AuditConfig(
    service="orders-api",
    sinks=[FileSink("audit.jsonl")],
    integrity=IntegrityOptions(
        signing_key_file="keys/auditmw.key",
        mac_key_file="keys/auditmw.mac",
        digest_path="digest.jsonl",
    ),
)"""
PROTECT_ENCRYPTED = """AuditConfig(
    service="orders-api",
    sinks=[FileSink("logs/audit.jsonl", create_dir=True, encryption=Keyring.from_file("keyring.json"))],
    integrity=IntegrityOptions(signing_key_file="keys/auditmw.key"),
)"""
ROTATED_ENCRYPTED = """AuditConfig(
    service="orders-api",
    sinks=[
        FileSink(
            "old/audit.jsonl",
            create_dir=True,
            rotate_bytes=4000,
            compress=True,
            encryption=Keyring.from_file("keyring.json"),
        )
    ],
    integrity=IntegrityOptions(signing_key_file="keys/auditmw.key"),
    delivery=DeliveryOptions(max_batch=1),
)"""
# One event per batch, so the number of rotated files depends on counts, never on timing.
HISTORY_CONFIG = 'AuditConfig.from_policy("policy.toml", delivery=DeliveryOptions(max_batch=1))'
# Rotated files renamed to the ages protect.md shows (judged at 2026-12-01).
HISTORY_STAMPS = ["20250601T000000Z", "20260801T000000Z", "20261125T000000Z"]


def _run(cwd: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"preparing {cwd}: {args}\n{result.stdout}{result.stderr}"


def _prepare(base: Path) -> None:
    env = doc_env(Path(sys.executable).parent, SECRETS)
    shutil.copytree(
        ROOT / "examples", base / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    _run(base, env, sys.executable, "examples/quickstart.py", "--out", "audit-out/demo.jsonl")


def _audit_log(cwd: Path, env: dict[str, str]) -> None:
    _run(cwd, env, sys.executable, "-c", SERVE.replace("CONFIG", README_INTEGRITY), "3")


def _encrypted_log(cwd: Path, env: dict[str, str]) -> None:
    _run(cwd, env, sys.executable, "-c", SERVE.replace("CONFIG", PROTECT_ENCRYPTED), "3")


def _tamper_encrypted(cwd: Path, env: dict[str, str]) -> None:
    """Another keyring with the same key id, and one altered character in the last line."""
    _run(
        cwd,
        env,
        sys.executable,
        "-c",
        "from auditmw.crypto import Keyring; Keyring.generate('kek-2026-11').save('other.json')",
    )
    log = cwd / "logs" / "audit.jsonl"
    lines = log.read_bytes().split(b"\n")
    last = lines[-2]
    middle = len(last) // 2
    lines[-2] = (
        last[:middle] + (b"A" if last[middle : middle + 1] != b"A" else b"B") + last[middle + 1 :]
    )
    log.write_bytes(b"\n".join(lines))


def _archived_file(cwd: Path, env: dict[str, str]) -> None:
    """A rotated, encrypted file as ``retention apply`` archives it (``archive/…000002.gz``)."""
    _run(cwd, env, sys.executable, "-c", SERVE.replace("CONFIG", ROTATED_ENCRYPTED), "20")
    rotated = sorted((cwd / "old").glob("audit.jsonl.*.gz"))
    assert len(rotated) >= 2, rotated
    (cwd / "archive").mkdir(mode=0o700)
    rotated[1].rename(cwd / "archive" / f"audit.jsonl.{HISTORY_STAMPS[1]}.000002.gz")


def _log_history(cwd: Path, env: dict[str, str]) -> None:
    """A fresh log written by ``policy.toml``, its oldest rotated files renamed to months ago."""
    for name in ("logs", "archive"):
        shutil.rmtree(cwd / name, ignore_errors=True)
    _run(
        cwd,
        env,
        sys.executable,
        "-c",
        SERVE.replace("CONFIG", HISTORY_CONFIG),
        "60",
    )
    rotated = sorted((cwd / "logs").glob("audit.jsonl.*"))
    assert len(rotated) > len(HISTORY_STAMPS), rotated
    for index, path in enumerate(rotated, start=1):
        stamp = HISTORY_STAMPS[index - 1] if index <= len(HISTORY_STAMPS) else "20261130T000000Z"
        suffix = ".gz" if path.name.endswith(".gz") else ""
        path.rename(path.with_name(f"audit.jsonl.{stamp}.{index:06d}{suffix}"))


SETUPS: dict[str, Setup] = {
    "audit-log": _audit_log,
    "encrypted-log": _encrypted_log,
    "tamper-encrypted": _tamper_encrypted,
    "archived-file": _archived_file,
    "log-history": _log_history,
}


def _unavailable_services(blocks: list[Block]) -> set[str]:
    return {
        block.id
        for block in blocks
        for name in block.services
        if name in SERVICES and not is_reachable(*SERVICES[name])
    }


@pytest.fixture(scope="module")
def doc_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[dict[str, Outcome]]]:
    """Start every document in its own copy of the prepared directory, in parallel."""
    base = tmp_path_factory.mktemp("docs-base")
    _prepare(base)
    env = doc_env(Path(sys.executable).parent, SECRETS)
    skip = _unavailable_services(BLOCKS)
    pool = ThreadPoolExecutor(max_workers=3)
    futures = {}
    for doc in DOCS:
        blocks = [b for b in BLOCKS if b.doc == doc]
        if not any(not b.fragment for b in blocks):
            continue
        cwd = tmp_path_factory.mktemp("doc")
        shutil.copytree(base, cwd, dirs_exist_ok=True)
        futures[doc] = pool.submit(run_document, blocks, cwd, env, skip, SETUPS)
    pool.shutdown(wait=False)
    return futures


def _param(block: Block) -> object:
    marks = [pytest.mark.service(name) for name in block.services]
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.timeout(900)  # the first case waits for the prepared directory and its page
@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block(block: Block, doc_results: dict[str, Future[dict[str, Outcome]]]) -> None:
    """The block runs as the conventions say (a fragment only has to parse)."""
    if block.fragment:
        return  # parsed when its document ran; exempt by its visible marker
    outcome = doc_results[block.doc].result(timeout=600)[block.id]
    assert outcome.ok, f"{block.id} ({block.lang}):\n{block.text}\n--- got ---\n{outcome.detail}"


def test_conventions_are_used() -> None:
    """Every document's blocks are found, and fragments stay the exception."""
    assert len(BLOCKS) >= 100
    fragments = [b for b in BLOCKS if b.fragment]
    assert len(fragments) * 3 < len(BLOCKS), [b.id for b in fragments]


class TestHarness:
    """The conventions themselves, on a page written for the purpose."""

    PAGE = """# A page

<!-- test: fragment (starts a server) -->
```bash
exit 3
```

<!-- test: file hello.txt -->
```text
hello
```

```console
$ cat hello.txt && echo 'CLEAN: 0 tamper'
CLEAN: 0 tamper
$ echo 'FINDINGS: 1 tamper' && false
FINDINGS: 1 tamper
```

```python
x = 1
```

<!-- test: continue -->
```python
assert x == 1
```

```console
$ echo 'PASS  completeness'
FAIL  completeness
```

```console
$ echo 'FAIL  completeness'
PASS  completeness
```
"""

    def run_page(self, tmp_path: Path) -> dict[str, Outcome]:
        (tmp_path / "page.md").write_text(self.PAGE)
        blocks = extract(tmp_path, "page.md")
        env = doc_env(Path(sys.executable).parent, {})
        return run_document(blocks, tmp_path, env, set(), {})

    def test_directives(self, tmp_path: Path) -> None:
        """Fragments carry their reason, continued blocks join, files are written."""
        (tmp_path / "page.md").write_text(self.PAGE)
        blocks = extract(tmp_path, "page.md")
        assert [b.id for b in blocks][:2] == ["page.md:4", "page.md:9"]
        assert blocks[0].fragment == "starts a server"
        assert blocks[1].file == "hello.txt"
        assert python_program(blocks, 4) == "x = 1\n\nassert x == 1\n"

    def test_outcomes(self, tmp_path: Path) -> None:
        """Shown statuses and exit codes are checked; a shown FAIL that prints PASS fails."""
        results = self.run_page(tmp_path)
        assert "page.md:4" not in results  # the fragment did not run
        verdicts = {block_id: outcome.ok for block_id, outcome in results.items()}
        assert verdicts == {
            "page.md:9": True,
            "page.md:13": True,
            "page.md:20": True,
            "page.md:25": True,
            "page.md:29": False,
            "page.md:34": False,
        }
        assert "exit 0, expected non-zero" in results["page.md:29"].detail
        assert "shown but not printed: ['PASS completeness']" in results["page.md:34"].detail
