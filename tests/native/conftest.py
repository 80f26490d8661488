"""The native core's tests: skipped when the extension is not built, unless required.

``AUDITMW_REQUIRE_NATIVE=1`` turns every such skip into a failure (CI on a machine with a
C compiler must run them).  The extension is imported directly, so these tests run even
under ``AUDITMW_PURE_PYTHON=1``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

REQUIRE_NATIVE = "AUDITMW_REQUIRE_NATIVE"


def load_core() -> ModuleType:
    """Return ``auditmw._native._core``, or skip (fail when required) with the reason."""
    try:
        return importlib.import_module("auditmw._native._core")
    except ImportError as exc:
        message = (
            f"the C extension auditmw._native._core is not built ({exc}); "
            "`pip install -e .` with a C compiler builds it"
        )
        if os.environ.get(REQUIRE_NATIVE) == "1":
            pytest.fail(f"{message} ({REQUIRE_NATIVE}=1 forbids skipping)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def core() -> ModuleType:
    return load_core()
