"""``auditmw doctor`` says which core runs and why; ``audit.started`` records it too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import auditmw._native as native
from auditmw import AuditConfig, Auditor
from auditmw.sinks import MemorySink


def doctor(*args: str, pure: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUDITMW_PURE_PYTHON"}
    if pure:
        env["AUDITMW_PURE_PYTHON"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "auditmw", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


class TestDoctor:
    def test_forced_pure_python_is_named_with_its_reason(self) -> None:
        """With AUDITMW_PURE_PYTHON=1 the report says python, and that the variable did it."""
        done = doctor(pure=True)
        assert done.returncode == 0, done.stderr
        assert "core: python (pure-Python core: AUDITMW_PURE_PYTHON is set)" in done.stdout

    def test_json_report(self) -> None:
        """--json prints one object with the core, the runtime and every optional extra."""
        done = doctor("--json", pure=True)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["core"] == "python"
        assert data["core_reason"] == "AUDITMW_PURE_PYTHON is set"
        assert set(data["extras"]) >= {"starlette", "flask", "django", "psycopg", "nats"}
        assert data["python"].startswith("CPython 3.")

    def test_native_core_where_built(self) -> None:
        """Where the extension is built (required in CI), the default is the native core."""
        if os.environ.get("AUDITMW_PURE_PYTHON", "") not in ("", "0"):
            pytest.skip("AUDITMW_PURE_PYTHON is set: this run is the pure-Python one")
        if native.CORE != "native":
            if os.environ.get("AUDITMW_REQUIRE_NATIVE") == "1":
                pytest.fail(f"the native core is required: {native.UNAVAILABLE_REASON}")
            pytest.skip(f"the native core is not in use here: {native.UNAVAILABLE_REASON}")
        done = doctor()
        assert done.returncode == 0, done.stderr
        assert "core: native (C extension auditmw._native._core" in done.stdout

    def test_audit_started_names_the_core(self) -> None:
        """The evidence says which core wrote it: ``details.core`` of ``audit.started``."""
        sink = MemorySink()
        auditor = Auditor(AuditConfig(service="doctor", sinks=[sink]))
        try:
            auditor.start()
            auditor.flush(10)
        finally:
            auditor.close()
        started = [e for e in sink.events if e["kind"] == "audit.started"]
        assert [e["details"]["core"] for e in started] == [native.CORE]
