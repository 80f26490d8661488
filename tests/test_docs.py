"""Docs as tests: every Python and shell block of README.md and docs/*.md runs.

Each block is one case, with the id ``file:line`` of its opening fence.  The
conventions (``<!-- test: fragment (reason) -->``, ``<!-- test: continue -->``,
``<!-- test: service NAME -->``) and how each language is run and checked are in
``tests/_docblocks.py``.

Every document runs in its own copy of one prepared directory, built once:

* ``examples/``: the repository's examples;
* ``audit-out/``: the quick-start demo's log (``demo.jsonl``, its tampered copy
  ``demo.tampered.jsonl`` and ``keys/``), written by ``examples/quickstart.py``;
* ``keys/auditmw.key``, ``keys/auditmw.pub``, ``keys/auditmw.mac``, ``registry.json``:
  a signing key pair, its registry and a MAC key (``auditmw keygen``);
* ``audit.jsonl`` and ``digest.jsonl``: a signed, MAC'd log of a few requests and its
  digest, written with those keys.

Secrets the docs read from the environment, as a deployment provides them, are set:
``AUDITMW_JWT_SECRET`` and ``AUDITMW_APIKEY_SECRET``.
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

from tests._docblocks import Block, Outcome, doc_env, extract, run_document
from tests.conftest import SERVICES, is_reachable

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
# Blocks of pages another engineer owns, exempted here until the page carries the
# marker itself: (document, first line of the block) -> the reason.
PENDING_MARKERS = {
    ("docs/django.md", 'pip install "auditmw[django]"'): "installs a package",
    ("docs/django.md", "uvicorn orders_project.asgi:application --app-dir examples/django_project"): (
        "starts a server"
    ),
}


def _blocks() -> list[Block]:
    blocks = [block for doc in DOCS for block in extract(ROOT, doc)]
    for block in blocks:
        reason = PENDING_MARKERS.get((block.doc, block.text.split("\n", 1)[0]))
        if reason and not block.fragment:
            block.fragment = reason
    return blocks


BLOCKS = _blocks()
SECRETS = {
    "AUDITMW_JWT_SECRET": "doc-test-jwt-secret-0123456789abcdef",
    "AUDITMW_APIKEY_SECRET": "doc-test-apikey-secret-0123456789abcdef",
}

# The few requests behind ``audit.jsonl``: the README's integrity configuration.
WRITE_LOG = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware, IntegrityOptions
from auditmw.sinks import FileSink

config = AuditConfig(
    service="orders-api",
    sinks=[FileSink("audit.jsonl")],
    integrity=IntegrityOptions(
        signing_key_file="keys/auditmw.key",
        mac_key_file="keys/auditmw.mac",
        digest_path="digest.jsonl",
    ),
)
app = Starlette(routes=[Route("/orders/{order_id}", lambda r: PlainTextResponse("ok"))])
with TestClient(AuditMiddleware(app, config)) as client:
    for path in ("/orders/1", "/orders/2", "/orders/1"):
        client.get(path)
"""


def _prepare(base: Path) -> None:
    env = doc_env(Path(sys.executable).parent, SECRETS)

    def run(*args: str) -> None:
        result = subprocess.run(args, cwd=base, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"preparing the docs directory: {args}\n{result.stdout}{result.stderr}"

    shutil.copytree(ROOT / "examples", base / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "examples/quickstart.py", "--out", "audit-out/demo.jsonl")
    run("auditmw", "keygen", "--out", "keys", "--registry", "registry.json")
    run("auditmw", "keygen", "--out", "keys", "--mac")
    run(sys.executable, "-c", WRITE_LOG)


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
        futures[doc] = pool.submit(run_document, blocks, cwd, env, skip)
    pool.shutdown(wait=False)
    return futures


def _param(block: Block) -> object:
    marks = [pytest.mark.service(name) for name in block.services]
    return pytest.param(block, id=block.id, marks=marks)


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
