"""Tests for ``auditmw report`` and :mod:`auditmw.evidence.report`."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.cli import main
from auditmw.evidence import render_report
from auditmw.evidence.report import PolicyInfo
from auditmw.exceptions import MissingDependencyError
from auditmw.integrity import KeyRegistry
from tests.evidence.conftest import write_policy

if TYPE_CHECKING:
    from tests.evidence.conftest import DemoLog


def _keys(demo: DemoLog) -> dict[str, object]:
    return {
        "keys": KeyRegistry.from_file(str(demo.keys / "auditmw.pub")),
        "mac_key": bytes.fromhex((demo.keys / "auditmw.mac").read_text().strip()),
    }


def _section(html: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}">(.*?)</section>', html, re.S)
    assert match, ident
    return match.group(1)


class TestRenderReport:
    def test_verified_demo_log(self, demo_log: DemoLog) -> None:
        """A clean log with its keys is VERIFIED and every section shows what happened."""
        report = render_report([demo_log.log], **_keys(demo_log))  # type: ignore[arg-type]
        html = report.html
        assert report.verdict.title == "VERIFIED"
        assert '<div class="banner good"' in html
        assert html.count('<rect class="bar"') >= 1
        assert "mallory" in _section(html, "denied")
        assert "orders.update" in _section(html, "writes")
        assert "audit.started" in _section(html, "lifecycle")
        assert "audit.stopped" in _section(html, "lifecycle")
        pci = _section(html, "pci")
        assert pci.count("100%") == 6
        assert report.summary.requests == 6

    def test_tampered_log(self, demo_log: DemoLog) -> None:
        """The tampered copy shows TAMPERING DETECTED in red with the finding's line."""
        report = render_report([demo_log.tampered], **_keys(demo_log))  # type: ignore[arg-type]
        assert report.verdict.title == "TAMPERING DETECTED"
        assert '<div class="banner bad"' in report.html
        assert "modified_event" in _section(report.html, "integrity")

    def test_without_keys_not_verified(self, demo_log: DemoLog) -> None:
        """Without keys the report does not claim authenticity."""
        report = render_report([demo_log.log])
        assert report.verdict.title == "NOT VERIFIED"
        assert "none given: signatures not checked" in report.html

    def test_self_contained(self, demo_log: DemoLog) -> None:
        """No script, no external resource: the file works offline."""
        html = render_report([demo_log.log]).html
        assert "<script" not in html
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
        assert "@import" not in html

    def test_hostile_values_are_escaped(self, tmp_path: Path) -> None:
        """Attacker-controlled strings in events are rendered as text, never markup."""
        log = tmp_path / "evil.jsonl"
        payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        event = {
            "kind": "http", "time": "2026-11-30T03:59:00.000000Z", "action": payload,
            "operation": "delete", "outcome": "denied", "actor": {"id": payload, "roles": "admin"},
            "request": {"path": payload}, "resource": {"type": payload},
        }  # fmt: skip
        lifecycle = {"kind": "audit.sink_failed", "time": payload, "details": {"m": payload}}
        impossible = {"kind": "http", "time": "2026-13-45T99:99:00.000000Z", "operation": []}
        log.write_bytes(
            b"\n".join(map(orjson.dumps, (event, lifecycle, impossible))) + b"\n[1]\nnot json\n"
        )
        html = render_report([log]).html
        assert "<script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;" in html

    def test_policy_shown_with_hash(self, demo_log: DemoLog, tmp_path: Path) -> None:
        """--policy shows the document, its hash and whether the log loaded it."""
        policy = PolicyInfo.from_file(write_policy(tmp_path / "p.toml", retention_days=90))
        html = render_report([demo_log.log], policy=policy).html
        section = _section(html, "policy")
        assert policy.hash in section
        assert "not seen in the log" in section
        assert "max_age_days = 90" in section
        assert "shorter than PCI DSS 10.5.1" in _section(html, "retention")

    def test_policy_matching_the_log(self, tmp_path: Path) -> None:
        """A policy whose hash the log's audit.policy_loaded names is shown as matching."""
        policy = PolicyInfo.from_file(write_policy(tmp_path / "p.toml", retention_days=400))
        loaded = {
            "kind": "audit.policy_loaded", "time": "2026-11-30T03:59:00.000000Z",
            "details": {"policy_id": policy.id, "policy_hash": policy.hash},
        }  # fmt: skip
        log = tmp_path / "audit.jsonl"
        log.write_bytes(orjson.dumps(loaded) + b"\n")
        html = render_report([log], policy=policy).html
        assert "matches the log's audit.policy_loaded" in _section(html, "policy")
        assert "meets PCI DSS 10.5.1" in _section(html, "retention")

    def test_missing_jinja2(self, demo_log: DemoLog, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without Jinja2 the error names the extra to install."""
        monkeypatch.setitem(sys.modules, "jinja2", None)
        with pytest.raises(MissingDependencyError, match=r"auditmw\[report\]"):
            render_report([demo_log.log])


class TestReportCommand:
    def test_writes_file_and_exit_codes(
        self, demo_log: DemoLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 0 and VERIFIED for the clean log, 1 for the tampered one; progress on stderr."""
        out = tmp_path / "r.html"
        assert main(["report", str(demo_log.log), "-o", str(out), *demo_log.key_args]) == 0
        assert "VERIFIED" in capsys.readouterr().out
        assert out.read_text().startswith("<!DOCTYPE html>")
        bad = tmp_path / "t.html"
        args = ["report", str(demo_log.tampered), "-o", str(bad), *demo_log.key_args]
        assert main([*args, "--progress"]) == 1
        captured = capsys.readouterr()
        assert "TAMPERING DETECTED" in captured.out
        assert "100%" in captured.err

    def test_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing input is an I/O error (exit 2)."""
        assert main(["report", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "r")]) == 2
        assert "nope.jsonl" in capsys.readouterr().err


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    ["kind", "time", "actor", "outcome", "operation", "action", "request", "response",
     "resource", "source", "details", "event_id"]
)  # fmt: skip


class TestHostileInput:
    @given(events=st.lists(st.dictionaries(_KEYS, _JSON, max_size=8), max_size=6))
    @settings(max_examples=40, deadline=None)
    def test_any_json_objects_render(self, events: list[dict[str, Any]]) -> None:
        """Any JSON objects at all are summarized and rendered without an exception."""
        events = [{**e, "kind": "http"} if len(e) % 2 else e for e in events]
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "any.jsonl"
            log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
            report = render_report([log])
        assert report.summary.events == len(events)
        assert report.html.rstrip().endswith("</html>")
