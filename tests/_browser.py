"""The headless browser the rendering tests use."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium() -> str:
    """The headless browser, or a skip (a failure under ``AUDITMW_REQUIRE_SERVICES=1``)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("AUDITMW_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)
