"""Policy support for protection: lint warnings and a file sink ``keyring`` option."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from auditmw.cli.policy import lint
from auditmw.crypto import Keyring
from auditmw.exceptions import PolicyError
from auditmw.policy import Policy, config_from_policy
from auditmw.sinks.file import FileSink

if TYPE_CHECKING:
    from pathlib import Path

FILE = {"type": "file", "path": "audit.jsonl"}


class TestLint:
    @pytest.mark.parametrize(
        ("document", "warning"),
        [
            pytest.param(
                {"retention": {"max_age_days": 90}},
                "/retention/max_age_days: logs are kept 90 days; PCI DSS 10.5.1",
                id="max-age-short",
            ),
            pytest.param(
                {"retention": {"delete_after_days": 200, "min_days": 30}},
                "/retention/delete_after_days: logs are kept 200 days",
                id="delete-after-short",
            ),
            pytest.param(
                {"retention": {"max_files": 10}},
                "/retention/max_files: deletes by count",
                id="count-based",
            ),
            pytest.param(
                {"default_level": "request", "sinks": [FILE]},
                "/sinks/0: request bodies are captured and this file sink stores them unencrypted",
                id="bodies-in-clear",
            ),
            pytest.param({}, "/integrity: missing", id="integrity-off"),
            pytest.param(
                {"retention": {"delete_after_days": 400, "min_days": 500}},
                "/retention: delete_after_days (400) is below min_days (500)",
                id="delete-before-min",
            ),
        ],
    )
    def test_warns(self, document: dict[str, Any], warning: str) -> None:
        """Each weak protection setting yields its warning."""
        assert any(w.startswith(warning) for w in lint(Policy(document)))

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param({"retention": {"max_age_days": 400}}, id="year-plus"),
            pytest.param(
                {"default_level": "request", "sinks": [{**FILE, "keyring": "k.json"}]},
                id="bodies-encrypted",
            ),
            pytest.param({"sinks": [FILE]}, id="no-bodies"),
        ],
    )
    def test_quiet(self, document: dict[str, Any]) -> None:
        """Compliant settings add no protection warning."""
        found = [w for w in lint(Policy(document)) if w.startswith(("/retention", "/sinks"))]
        assert found == []


class TestKeyringOption:
    def test_file_sink_keyring(self, tmp_path: Path) -> None:
        """keyring = '<file>' on a file sink turns on encryption with that keyring."""
        ring = tmp_path / "ring.json"
        Keyring.generate("k1").save(ring)
        sink_doc = {"type": "file", "path": str(tmp_path / "a.jsonl"), "keyring": str(ring)}
        config = config_from_policy({"service": {"name": "s"}, "sinks": [sink_doc]})
        (sink,) = config.sinks
        assert isinstance(sink, FileSink)
        assert isinstance(sink._encryption, Keyring)
        assert sink._encryption.current == "k1"

    def test_open_keyring_refused(self, tmp_path: Path) -> None:
        """A keyring file readable by others is a policy error naming the sink."""
        ring = tmp_path / "ring.json"
        Keyring.generate("k1").save(ring)
        ring.chmod(0o644)
        sink_doc = {"type": "file", "path": str(tmp_path / "a.jsonl"), "keyring": str(ring)}
        with pytest.raises(PolicyError, match=r"/sinks/0: .*chmod 600"):
            config_from_policy({"service": {"name": "s"}, "sinks": [sink_doc]})
