"""Tests for ``auditmw simulate`` and :mod:`auditmw.evidence.scenarios`."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from auditmw import AuditConfig, AuditMiddleware
from auditmw.cli import main
from auditmw.evidence.scenarios import diff_event, flatten, is_asgi, run_scenarios
from auditmw.exceptions import ConfigurationError
from auditmw.sinks import MemorySink
from auditmw.wsgi import AuditWSGIMiddleware
from tests.evidence.conftest import EXAMPLES

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from auditmw.types import Receive, Scope, Send


def _simulate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The demo app reads AUDITMW_DEMO_LOG/KEYS at import: run it in a fresh process.
    env = {
        **os.environ,
        "AUDITMW_DEMO_LOG": str(tmp_path / "scenarios.jsonl"),
        "AUDITMW_DEMO_KEYS": str(tmp_path / "keys"),
    }
    return subprocess.run(
        [sys.executable, "-m", "auditmw", "simulate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class TestExampleScenarios:
    def test_all_pass_against_the_demo_app(self, tmp_path: Path) -> None:
        """examples/scenarios.toml passes against examples/app.py, driven in-process."""
        done = _simulate(tmp_path, str(EXAMPLES / "scenarios.toml"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "5 passed, 0 failed" in done.stdout
        # The lifespan shutdown closed the app's chained log: it verifies clean.
        keys = tmp_path / "keys"
        args = ["--keys", str(keys / "auditmw.pub"), "--mac-key-file", str(keys / "auditmw.mac")]
        assert main(["verify", str(tmp_path / "scenarios.jsonl"), *args]) == 0

    def test_wrong_expectations_fail_with_a_diff(self, tmp_path: Path) -> None:
        """A wrong expectation fails with expected-vs-actual lines and exit status 1."""
        scenarios = tmp_path / "wrong.toml"
        scenarios.write_text(
            f'app = "app:app"\napp_dir = "{EXAMPLES}"\n'
            '[[scenario]]\nname = "claims the wrong actor"\n'
            'request = { method = "PUT", path = "/orders/1", query = { qty = "2" }, '
            'headers = { x-demo-user = "ada" } }\n'
            'expect = { actor = { id = "bob" }, outcome = "success" }\n'
            'absent = ["ada"]\n'
        )
        done = _simulate(tmp_path, str(scenarios))
        assert done.returncode == 1
        assert "FAIL  claims the wrong actor" in done.stdout
        assert "actor.id: expected 'bob', got 'ada'" in done.stdout
        assert "forbidden text 'ada…' appears in the event" in done.stdout

    def test_no_files_left_in_the_working_tree(self, tmp_path: Path) -> None:
        """The demo's key folder and log (relative paths) do not land in the working directory."""
        work = tmp_path / "work"
        work.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AUDITMW_DEMO_LOG", "AUDITMW_DEMO_KEYS")
        }
        done = subprocess.run(
            [sys.executable, "-m", "auditmw", "simulate", str(EXAMPLES / "scenarios.toml")],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert list(work.iterdir()) == []

    def test_app_option_and_import_error(self, tmp_path: Path) -> None:
        """--app overrides the file; an unknown module is a usage error (exit 2)."""
        done = _simulate(tmp_path, str(EXAMPLES / "scenarios.toml"), "--app", "nosuchmod:app")
        assert done.returncode == 2
        assert "cannot import nosuchmod" in done.stderr


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [("content-type", "text/plain")])
    return [b"ok"]


class TestWSGI:
    def test_wsgi_app_is_driven_directly(self, tmp_path: Path) -> None:
        """A WSGI app is detected and called through its environ interface."""
        app = AuditWSGIMiddleware(_wsgi_app, AuditConfig(service="w", sinks=[MemorySink()]))
        assert not is_asgi(app)
        scenarios = tmp_path / "wsgi.toml"
        scenarios.write_text(
            '[tokens.t]\nsecret = "env:EVIDENCE_TEST_SECRET"\nclaims = { sub = "x" }\n'
            '[[scenario]]\nname = "ok"\nrequest = { path = "/items/1", '
            'headers = { authorization = "Bearer {{ token.t }}" } }\n'
            'status = 200\nexpect = { outcome = "success", request = { path = "/items/1" } }\n'
            'absent = ["{{ token.t }}"]\n'
            '[[scenario]]\nname = "missing"\nrequest = { path = "/missing" }\n'
            'expect = { outcome = "success" }\n'
            '[[scenario]]\nname = "claims no event"\nrequest = { path = "/x" }\naudited = false\n'
        )
        os.environ["EVIDENCE_TEST_SECRET"] = "wsgi-scenario-secret-0123456789abcdef"
        try:
            results = run_scenarios(scenarios, app=app)
        finally:
            del os.environ["EVIDENCE_TEST_SECRET"]
        assert [r.passed for r in results] == [True, False, False]
        assert results[1].status == 404
        assert results[1].problems == ["outcome: expected 'success', got 'failure'"]
        assert results[2].problems == ["expected no audit event, got 'unmatched.read'"]

    def test_tokens_carry_exp(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A policy requiring ``exp`` accepts minted tokens; a rejected one shows auth.error."""
        from auditmw.identity.jwt import JWTResolver

        secret = "exp-scenario-secret-0123456789abcdef"
        resolver = JWTResolver(algorithms=["HS256"], secret=secret, required_claims=["exp"])
        config = AuditConfig(service="w", sinks=[MemorySink()], resolvers=[resolver])
        app = AuditWSGIMiddleware(_wsgi_app, config)
        scenarios = tmp_path / "exp.toml"
        scenarios.write_text(
            f'[tokens.ada]\nsecret = "{secret}"\nclaims = {{ sub = "ada" }}\n'
            f'[tokens.forged]\nsecret = "{"x" * 40}"\nclaims = {{ sub = "ada" }}\n'
            '[[scenario]]\nname = "ada"\nrequest = { path = "/items/1", '
            'headers = { authorization = "Bearer {{ token.ada }}" } }\n'
            'expect = { actor = { id = "ada" } }\n'
            '[[scenario]]\nname = "forged"\nrequest = { path = "/items/1", '
            'headers = { authorization = "Bearer {{ token.forged }}" } }\n'
            'expect = { actor = { id = "ada" } }\n'
        )
        ok, forged = run_scenarios(scenarios, app=app)
        assert ok.passed, ok.problems
        assert forged.problems == [
            "actor.id: expected 'ada', got 'anonymous'",
            "actor.auth.error: 'invalid_signature' (the credential sent was rejected)",
        ]

    def test_missing_env_secret(self, tmp_path: Path) -> None:
        """A token secret read from an unset variable names the setting."""
        app = AuditWSGIMiddleware(_wsgi_app, AuditConfig(service="w", sinks=[MemorySink()]))
        scenarios = tmp_path / "s.toml"
        scenarios.write_text(
            '[tokens.t]\nsecret = "env:EVIDENCE_UNSET_VAR"\n[[scenario]]\nname = "x"\n'
        )
        with pytest.raises(ConfigurationError, match="EVIDENCE_UNSET_VAR") as info:
            run_scenarios(scenarios, app=app)
        assert info.value.setting == "tokens.t.secret"


class TestDiff:
    EVENT: ClassVar[dict[str, Any]] = {"actor": {"id": "u1", "roles": ["a"]}, "outcome": "success"}

    @pytest.mark.parametrize(
        ("expected", "problems"),
        [
            pytest.param({"actor": {"id": "u1"}}, [], id="nested-match"),
            pytest.param({"actor.roles": ["a"]}, [], id="dotted-list"),
            pytest.param({"actor__id": "u2"}, ["actor.id: expected 'u2', got 'u1'"], id="dunder"),
            pytest.param(
                {"resource.id": "1"}, ["resource.id: expected '1', got nothing"], id="missing"
            ),
            pytest.param(
                {"outcome": "<absent>"}, ["outcome: expected absent, got 'success'"], id="absent"
            ),
        ],
    )
    def test_diff_event(self, expected: dict[str, Any], problems: list[str]) -> None:
        """Each differing path gives one expected-vs-actual line."""
        assert diff_event(self.EVENT, expected) == problems

    def test_flatten(self) -> None:
        """Nested tables become dotted paths."""
        assert flatten({"a": {"b": {"c": 1}}, "d": 2}) == {"a.b.c": 1, "d": 2}


class TestLifespan:
    def _scenarios(self, tmp_path: Path) -> Path:
        path = tmp_path / "lifespan.toml"
        path.write_text(
            '[[scenario]]\nname = "state from startup"\nrequest = { path = "/db" }\n'
            'status = 200\nexpect = { outcome = "success" }\n'
        )
        return path

    def test_startup_state_reaches_requests_and_shutdown_runs(self, tmp_path: Path) -> None:
        """Startup runs before the first request, its state reaches it, shutdown runs last."""
        from contextlib import asynccontextmanager

        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        calls: list[str] = []

        @asynccontextmanager
        async def lifespan(app: Starlette) -> Any:
            calls.append("startup")
            yield {"db": "connected"}
            calls.append("shutdown")

        async def db(request: Request) -> PlainTextResponse:
            return PlainTextResponse(request.state.db)

        app = Starlette(routes=[Route("/db", db)], lifespan=lifespan)
        app.add_middleware(AuditMiddleware, config=AuditConfig(service="l", sinks=[MemorySink()]))
        results = run_scenarios(self._scenarios(tmp_path), app=app)
        assert [r.passed for r in results] == [True], results[0].problems
        assert calls == ["startup", "shutdown"]

    def test_app_without_lifespan(self, tmp_path: Path) -> None:
        """A bare ASGI app that ignores lifespan is driven without waiting."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        wrapped = AuditMiddleware(app, AuditConfig(service="b", sinks=[MemorySink()]))
        results = run_scenarios(self._scenarios(tmp_path), app=wrapped)
        assert [r.passed for r in results] == [True], results[0].problems
