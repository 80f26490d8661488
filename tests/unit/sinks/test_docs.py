"""docs/sinks.md: its Python snippets build the sinks and configuration they describe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import certifi
import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "sinks.md"
_PYTHON = re.compile(r"```python\n(.*?)\n```", re.DOTALL)
_TOML = re.compile(r"```toml\n(.*?)\n```", re.DOTALL)


@pytest.fixture
def tls_ca(tmp_path: Path) -> Path:
    """A CA bundle file for the TLS snippets (any valid PEM bundle will do)."""
    target = tmp_path / "ca.pem"
    target.write_bytes(Path(certifi.where()).read_bytes())
    return target


class TestSinksDoc:
    def test_python_snippets_run(
        self, tmp_path: Path, tls_ca: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every snippet runs (paths moved under tmp_path; nothing connects anywhere)."""
        monkeypatch.chdir(tmp_path)  # the snippets' relative logs/ and spool/
        (tmp_path / "log" / "myapp").mkdir(parents=True)
        (tmp_path / "log" / "payments").mkdir(parents=True)
        namespace: dict[str, Any] = {"url": "http://127.0.0.1:9/ingest"}
        snippets = _PYTHON.findall(DOC.read_text())
        assert len(snippets) == 8
        for snippet in snippets:
            code = (
                snippet.replace("/var/log/", f"{tmp_path}/log/")
                .replace("/var/spool/", f"{tmp_path}/spool/")
                .replace("/etc/ssl/private-ca.pem", str(tls_ca))
            )
            exec(code, namespace)  # noqa: S102 - our own documentation
        config = namespace["config"]
        assert config.delivery.mode == "durable"
        assert [type(s).__name__ for s in config.sinks] == ["FileSink", "HTTPSink"]
        assert namespace["sink"].path.parent == Path("logs")

    def test_policy_file_loads(self, tmp_path: Path) -> None:
        """The TOML example is a valid policy building the sinks and delivery it shows."""
        from auditmw.config import AuditConfig
        from auditmw.sinks import FileSink, HTTPSink

        (toml,) = _TOML.findall(DOC.read_text())
        policy = tmp_path / "policy.toml"
        policy.write_text(toml.replace("/var/log/payments", str(tmp_path)))
        config = AuditConfig.from_policy(policy)
        file_sink, http_sink = config.sinks
        assert isinstance(file_sink, FileSink)
        assert isinstance(http_sink, HTTPSink)
        assert http_sink.delivery_mode == "async"
        assert config.delivery.mode == "durable"
        assert config.delivery.spool_dir == "/var/spool/payments-audit"
