"""``auditmw policy check`` and ``manage.py check`` build what start-up builds."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.cli import main
from tests.frameworks import django_app

if TYPE_CHECKING:
    from pathlib import Path

django_app.setup()

from django.core.management import call_command  # noqa: E402 - needs django.setup()
from django.core.management.base import SystemCheckError  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

import auditmw.contrib.django  # noqa: E402, F401 - registers the check


def write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "policy.json"
    path.write_bytes(orjson.dumps(document))
    return str(path)


FAILS_AT_START = [
    pytest.param(
        {"sinks": [{"type": "stdout", "bogus": 1}]}, "/sinks/0", "bogus", id="sink-option"
    ),
    pytest.param(
        {"integrity": {"signing_key_file": "/nonexistent/signing.pem"}},
        "/integrity",
        "signing.pem",
        id="signing-key-missing",
    ),
    pytest.param(
        {"identity": {"jwt": {"algorithms": ["HS256"], "secret_envv": "X"}}},
        "/identity/jwt/secret_envv",
        "did you mean 'secret_env'",
        id="jwt-option",
    ),
    pytest.param(
        {"identity": {"api_key": {"registry": "/nonexistent/keys.json", "secret_env": "K"}}},
        "/identity/api_key",
        "keys.json",
        id="api-key-registry-missing",
    ),
]


class TestPolicyCheck:
    """``policy check`` says ok only for documents that start."""

    @pytest.mark.parametrize(("document", "path", "needle"), FAILS_AT_START)
    def test_refuses_what_fails_at_start(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        document: dict[str, Any],
        path: str,
        needle: str,
    ) -> None:
        """A document that fails at start-up fails the check, naming the key path."""
        assert main(["policy", "check", write(tmp_path, document)]) == 1
        err = capsys.readouterr().err
        assert path in err
        assert needle in err

    def test_secret_env_accepted(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``secret_env`` (which JWTResolver itself does not take) builds the resolver."""
        monkeypatch.delenv("TEST_CHECK_SECRET", raising=False)
        document = {
            "identity": {"jwt": {"algorithms": ["HS256"], "secret_env": "TEST_CHECK_SECRET"}}
        }
        assert main(["policy", "check", write(tmp_path, document)]) == 0
        captured = capsys.readouterr()
        assert "TEST_CHECK_SECRET is not set; checked with a throw-away value" in captured.err
        assert captured.out.startswith("ok:")

    def test_check_builds_without_writing(self, tmp_path: Path) -> None:
        """Building a file sink does not create its log file."""
        log = tmp_path / "logs" / "audit.jsonl"
        document = {"sinks": [{"type": "file", "path": str(log), "create_dir": True}]}
        assert main(["policy", "check", write(tmp_path, document)]) == 0
        assert not log.exists()


class TestDjangoCheck:
    """``manage.py check`` reports what the middleware would fail on."""

    @pytest.mark.parametrize(("document", "path", "needle"), FAILS_AT_START)
    def test_error(self, document: dict[str, Any], path: str, needle: str) -> None:
        """A bad ``settings.AUDITMW`` is auditmw.E001 with the key path."""
        settings = {"service": "orders", **document}
        with override_settings(AUDITMW=settings), pytest.raises(SystemCheckError) as info:
            call_command("check")
        assert "auditmw.E001" in str(info.value)
        assert path in str(info.value)

    def test_integrity_dict_is_built(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``integrity`` as a table passes the check (it is built, not handed to the encoder)."""
        monkeypatch.setenv("TEST_MAC_KEY", "ab" * 32)
        settings = {
            "service": "orders",
            "sinks": [{"type": "stdout"}],
            "integrity": {"mac_key_env": "TEST_MAC_KEY"},
        }
        with override_settings(AUDITMW=settings):
            call_command("check")

    def test_no_sinks_is_a_warning(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Zero sinks is auditmw.W001, not an error."""
        with override_settings(AUDITMW={"service": "orders"}):
            call_command("check")
        assert "auditmw.W001" in capsys.readouterr().err


class TestConnect:
    """``policy check --connect`` reaches each sink without writing to it."""

    def test_unreachable_server(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A closed port fails the check, naming the sink."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again when the block ends
        document = {"sinks": [{"type": "http", "url": f"http://127.0.0.1:{port}/events"}]}
        assert main(["policy", "check", "--connect", write(tmp_path, document)]) == 1
        assert f"/sinks/0 (HTTPSink): cannot connect to 127.0.0.1:{port}" in capsys.readouterr().err

    def test_reachable(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A listening server and a writable directory pass; nothing is written."""
        log = tmp_path / "audit.jsonl"
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            document = {
                "sinks": [
                    {"type": "file", "path": str(log)},
                    {"type": "http", "url": f"http://127.0.0.1:{port}/events"},
                ]
            }
            assert main(["policy", "check", "--connect", write(tmp_path, document)]) == 0
        out = capsys.readouterr().out
        assert "/sinks/0 (FileSink): directory" in out
        assert f"/sinks/1 (HTTPSink): connected to 127.0.0.1:{port}" in out
        assert not log.exists()

    @pytest.mark.service("postgres")
    def test_postgres_login(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The PostgreSQL sink logs in (a wrong database fails, naming the sink)."""
        good = "host=127.0.0.1 port=5432 user=postgres dbname=test"
        bad = "host=127.0.0.1 port=5432 user=postgres dbname=no_such_database_auditmw"
        for dsn, code in ((good, 0), (bad, 1)):
            document = {"sinks": [{"type": "postgres", "dsn": dsn, "table": "check_probe"}]}
            assert main(["policy", "check", "--connect", write(tmp_path, document)]) == code
        captured = capsys.readouterr()
        assert "/sinks/0 (PostgresSink): logged in to PostgreSQL" in captured.out
        assert "error: /sinks/0 (PostgresSink): cannot log in to PostgreSQL" in captured.err
