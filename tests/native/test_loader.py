"""The loader: which core runs, ``AUDITMW_PURE_PYTHON``, and never raising at import."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from auditmw import _native

if TYPE_CHECKING:
    from types import ModuleType

PROBE = "import auditmw._native as n; print(n.CORE, n.chain_step is None, n.MacKey is None); print(n.UNAVAILABLE_REASON)"


def probe(env: dict[str, str], prelude: str = "") -> list[str]:
    """Import the loader in a fresh interpreter; return its two lines of output."""
    full = {k: v for k, v in os.environ.items() if k != _native.PURE_PYTHON_ENV} | env
    done = subprocess.run(
        [sys.executable, "-c", prelude + PROBE],
        env=full,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def test_the_module_is_consistent() -> None:
    """CORE, the functions and the reason agree with each other."""
    if _native.CORE == "native":
        assert _native.chain_step is not None
        assert _native.MacKey is not None
        assert _native.UNAVAILABLE_REASON is None
    else:
        assert _native.chain_step is None
        assert _native.MacKey is None
        assert _native.UNAVAILABLE_REASON


def test_native_by_default_where_built(core: ModuleType) -> None:
    """Native where built with OpenSSL's SHA-256; its portable SHA-256 is not used."""
    if core.SHA256_IMPL == "openssl":
        assert probe({}) == ["native False False", "None"]
    else:
        assert probe({}) == [
            "python True True",
            "the C extension was built without OpenSSL's libcrypto (libssl-dev)",
        ]


def test_sha256_source_is_named(core: ModuleType) -> None:
    assert core.SHA256_IMPL in ("openssl", "portable")


@pytest.mark.parametrize("value", ["1", "yes"])
def test_pure_python_forced(value: str) -> None:
    assert probe({"AUDITMW_PURE_PYTHON": value}) == [
        "python True True",
        "AUDITMW_PURE_PYTHON is set",
    ]


@pytest.mark.parametrize("value", ["", "0"])
def test_pure_python_off(core: ModuleType, value: str) -> None:
    assert probe({"AUDITMW_PURE_PYTHON": value}) == probe({})


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "auditmw._native._core":
            raise {exc}
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            "ImportError('undefined symbol: PyFoo')",
            "the C extension is not available: undefined symbol: PyFoo",
        ),
        (
            "RuntimeError('half-written file')",
            "the C extension failed to load: RuntimeError: half-written file",
        ),
    ],
)
def test_a_broken_extension_means_the_python_core(exc: str, reason: str) -> None:
    """A missing, broken or failing ``_core`` never breaks ``import auditmw``."""
    assert probe({}, BLOCK.format(exc=exc)) == ["python True True", reason]


REQUEST_PATH = """
from auditmw.core import canonical, event
native = (event._native_pick, event._native_index, canonical.format_time, canonical.new_event_id)
python = (None, None, canonical.py_format_time, canonical.py_new_event_id)
print([type(f).__name__ for f in native], [a is b for a, b in zip(native, python)])
import sys; sys.exit(0)
"""


def test_the_request_path_follows_the_loader(core: ModuleType) -> None:
    """Headers, format_time and new_event_id use C where the loader says native, else Python."""
    functions = ["builtin_function_or_method"] * 4
    if core.SHA256_IMPL == "openssl":
        assert probe({}, REQUEST_PATH) == [f"{functions} {[False] * 4}"]
    assert probe({"AUDITMW_PURE_PYTHON": "1"}, REQUEST_PATH) == [
        f"{['NoneType', 'NoneType', 'function', 'function']} {[True] * 4}"
    ]
