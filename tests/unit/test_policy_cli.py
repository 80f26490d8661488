"""``auditmw policy check|explain|schema`` and the shipped example policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditmw.cli import main
from auditmw.cli.policy import lint
from auditmw.policy import Policy, config_from_policy, policy_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
KEY_ENV = {"AUDITMW_REDACTION_KEY": "0123456789abcdef0123456789abcdef"}


def write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))
    return str(path)


class TestExample:
    """The shipped example is valid, lint-clean but for integrity, and builds a config."""

    def test_check(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``auditmw policy check examples/policy.toml`` exits 0."""
        monkeypatch.setenv("AUDITMW_REDACTION_KEY", KEY_ENV["AUDITMW_REDACTION_KEY"])
        assert main(["policy", "check", str(EXAMPLE)]) == 0
        out, err = capsys.readouterr()
        assert out.startswith("ok: policy 'orders-api-2026-11' sha256:")
        assert "(6 rules)" in out
        assert err == (
            "auditmw policy check: warning: /integrity: missing; "
            "events will not be hash-chained or signed\n"
        )

    def test_check_without_key(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Checking does not need the production key; it says it used a throw-away one."""
        monkeypatch.delenv("AUDITMW_REDACTION_KEY", raising=False)
        assert main(["policy", "check", str(EXAMPLE)]) == 0
        assert "AUDITMW_REDACTION_KEY is not set" in capsys.readouterr().err

    def test_config(self) -> None:
        """The example builds a full configuration."""
        config = config_from_policy(EXAMPLE, environ=KEY_ENV)
        assert config.service_info.name == "orders-api"
        assert config.delivery.overflow == "drop_and_record"
        assert isinstance(config.policy, Policy)
        assert [r.id for r in config.policy.rules][:2] == ["probes", "login"]


class TestCheck:
    """Validation errors exit 1, unreadable files 2; lint warnings exit 0."""

    def test_error(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An invalid document prints the error with its key path and exits 1."""
        path = write(tmp_path, {"rules": [{"level": "loud"}]})
        assert main(["policy", "check", path]) == 1
        _, err = capsys.readouterr()
        assert err.startswith(
            "auditmw policy check: error: policy /rules/0/level: 'loud' is not allowed"
        )

    def test_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unreadable file is an I/O error: exit 2 in the common format."""
        assert main(["policy", "check", str(tmp_path / "none.toml")]) == 2
        assert capsys.readouterr().err.startswith("auditmw policy check: error: ")

    @pytest.mark.parametrize(
        ("document", "warning"),
        [
            pytest.param(
                {"rules": [{"id": "quiet", "paths": ["/internal/**"], "level": "none"}]},
                "/rules/0: rule 'quiet' sets level 'none' and covers write methods",
                id="none-covers-writes",
            ),
            pytest.param(
                {"rules": [{"methods": ["DELETE"], "level": "none"}]},
                "/rules/0: rule 'rules[0]' sets level 'none' and covers write methods",
                id="none-delete",
            ),
            pytest.param(
                {"rules": [{"id": "b", "routes": ["/auth/login"], "level": "request"}]},
                "/rules/0: rule 'b' captures bodies on authentication routes /auth/login",
                id="body-on-login",
            ),
            pytest.param(
                {"rules": [{"id": "t", "paths": ["/oauth/token"], "level": "request_response"}]},
                "/rules/0: rule 't' captures bodies on authentication routes /oauth/token",
                id="body-on-token",
            ),
            pytest.param(
                {"default_level": "request"},
                "/default_level: 'request' captures bodies of every request",
                id="default-level-bodies",
            ),
            pytest.param({}, "/integrity: missing", id="no-integrity"),
        ],
    )
    def test_lint(self, document: dict[str, Any], warning: str) -> None:
        """Each risky pattern yields its warning."""
        assert any(w.startswith(warning) for w in lint(Policy(document)))

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param(
                {
                    "integrity": {},
                    "rules": [{"methods": ["GET"], "paths": ["/x"], "level": "none"}],
                },
                id="read-only-none",
            ),
            pytest.param(
                {"integrity": {}, "rules": [{"routes": ["/orders"], "level": "request"}]},
                id="body-elsewhere",
            ),
        ],
    )
    def test_clean(self, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
        """Safe documents produce no warnings."""
        from auditmw.config import build as _loader

        # Any importable class stands for the integrity options (written elsewhere).
        monkeypatch.setattr(_loader, "INTEGRITY_CLASS", ("auditmw.sinks.base", "PlainEncoder"))
        assert lint(Policy(document)) == []

    def test_unavailable_classes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Sections whose class cannot be imported in this installation are reported."""
        from auditmw.config import build as _loader

        monkeypatch.setitem(_loader.SINK_CLASSES, "nats", "NoSuchSink")
        monkeypatch.setattr(_loader, "INTEGRITY_CLASS", ("auditmw.no_such_module", "X"))
        warnings = lint(Policy({"sinks": [{"type": "nats"}], "integrity": {}}))
        assert warnings == [
            "/sinks/0: auditmw.sinks.NoSuchSink is not available in this build of auditmw",
            "/integrity: auditmw.no_such_module.X is not available in this build of auditmw",
        ]

    def test_warnings_exit_zero(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Warnings are printed to stderr and the exit code stays 0."""
        path = write(tmp_path, {"rules": [{"methods": ["POST"], "level": "none"}]})
        assert main(["policy", "check", path]) == 0
        assert "covers write methods" in capsys.readouterr().err


class TestExplain:
    """``explain`` prints the matching rule and the event."""

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        code = main(["policy", "explain", *args])
        out, err = capsys.readouterr()
        return code, out, err

    def test_event(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The event of a write shows the rule, the redacted body and the resource."""
        monkeypatch.setenv("AUDITMW_REDACTION_KEY", KEY_ENV["AUDITMW_REDACTION_KEY"])
        code, out, _ = self.run(
            capsys, str(EXAMPLE), "put", "/orders/42?signature=abc",
            "--route", "/orders/{order_id}", "--header", "content-type: application/json",
            "--body", '{"qty": 2, "password": "hunter2"}', "--token", "tok-secret-123",
        )  # fmt: skip
        assert code == 0
        first, _, rest = out.partition("\n")
        assert first == "rule: order-writes  level: request"
        event = orjson.loads(rest)
        assert event["policy"]["rule"] == "order-writes"
        assert event["resource"] == {
            "type": "order",
            "id": "42",
            "route_params": {"order_id": "42"},
        }
        assert event["request"]["body"]["json"] == {"qty": 2}
        assert event["request"]["query"] == "signature=[REDACTED]"
        assert event["source"]["ip"].startswith("hmac:redact-2026-11:")
        assert "hunter2" not in out
        assert "tok-secret-123" not in out

    def test_none(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A request the policy does not record says so."""
        monkeypatch.setenv("AUDITMW_REDACTION_KEY", KEY_ENV["AUDITMW_REDACTION_KEY"])
        code, out, _ = self.run(capsys, str(EXAMPLE), "GET", "/health")
        assert code == 0
        assert out == (
            "rule: probes  level: none\nevent: none (the policy does not record this request)\n"
        )

    def test_floor(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A denial under a ``none`` rule is still shown as recorded."""
        path = write(tmp_path, {"rules": [{"id": "q", "paths": ["/x"], "level": "none"}]})
        code, out, _ = self.run(capsys, path, "GET", "/x", "--status", "403")
        assert code == 0
        assert '"outcome": "denied"' in out

    def test_bad_header(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed ``--header`` is a usage error: exit 2 with a hint."""
        path = write(tmp_path, {})
        code, _, err = self.run(capsys, path, "GET", "/", "--header", "novalue")
        assert code == 2
        assert err.startswith("auditmw policy explain: error: ")
        assert "write it as Name:value" in err


class TestSchema:
    """``schema`` prints the published JSON Schema."""

    def test_schema(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The output is the packaged schema."""
        assert main(["policy", "schema"]) == 0
        assert json.loads(capsys.readouterr().out) == policy_schema()
