"""Every example in docs/identity.md runs, against a local JWKS server instead of the IdP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from auditmw.identity import JWKSKeyStore, JWTResolver
from tests.unit.identity.identity_support import JWKSServer, KeyPair, make_exchange

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "identity.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", DOC, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", DOC, re.S)
AUTH0 = "https://YOUR-TENANT.eu.auth0.com/.well-known/jwks.json"
KEYCLOAK = 'f"{realm}/protocol/openid-connect/certs"'
JWT_SECRET = "j" * 48
APIKEY_SECRET = "a-long-random-server-secret"
THE_KEY = "amk_docs-example-key-123"


@pytest.fixture(scope="module")
def cli_entry() -> str:
    """The registry entry printed by the documented ``auditmw apikey hash`` command."""
    env = {**os.environ, "THE_KEY": THE_KEY, "AUDITMW_APIKEY_SECRET": APIKEY_SECRET,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    result = subprocess.run(
        ["bash", "-c", BASH_BLOCKS[0]], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout


@pytest.fixture
def doc_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jwks_server: JWKSServer, rsa_key: KeyPair,
    cli_entry: str,
) -> JWKSServer:  # fmt: skip
    """Secrets in the environment, api-keys.json from the CLI's entry, a JWKS server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITMW_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AUDITMW_APIKEY_SECRET", APIKEY_SECRET)
    jwks_server.document = {"keys": [rsa_key.jwk("k1")]}
    Path("api-keys.json").write_text(json.dumps({"keys": [json.loads(cli_entry)]}))
    return jwks_server


def run_block(source: str, server: JWKSServer) -> dict[str, Any]:
    """Execute one documented block with the IdP URLs pointed at the local server."""
    source = source.replace(AUTH0, server.url).replace(KEYCLOAK, repr(server.url))
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(source, "docs/identity.md", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def close_all(namespace: dict[str, Any]) -> None:
    """Stop any JWKS thread an example started."""
    for value in namespace.values():
        if isinstance(value, JWTResolver | JWKSKeyStore):
            value.close()


class TestDocumentedExamples:
    def test_there_are_examples(self) -> None:
        """The page has the documented examples (JWKS x3, HS256, gateway, API keys, combined, hook)."""
        assert len(PYTHON_BLOCKS) == 8
        assert len(BASH_BLOCKS) == 1

    @pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
    def test_example_runs(self, doc_env: JWKSServer, rsa_key: KeyPair, index: int) -> None:
        """Each block runs; any JWT resolver it builds verifies a matching token."""
        namespace = run_block(PYTHON_BLOCKS[index], doc_env)
        try:
            assert "config" in namespace or "status" in namespace
            resolver = namespace.get("jwt_resolver")
            if isinstance(resolver, JWTResolver) and "jwks" in PYTHON_BLOCKS[index]:
                claims = {
                    "sub": "u1",
                    "exp": int(time.time()) + 60,
                    "iss": "https://YOUR-TENANT.eu.auth0.com/",
                    "aud": "https://api.example.com",
                }
                if "realm" in namespace:
                    claims.update(
                        iss=namespace["realm"],
                        aud="orders-api",
                        resource_access={"orders-api": {"roles": ["clerk"]}},
                    )
                token = jwt.encode(
                    claims, rsa_key.private, algorithm="RS256", headers={"kid": "k1"}
                )
                exchange = make_exchange({"authorization": f"Bearer {token}"})
                deadline = time.monotonic() + 5
                actor = resolver.resolve(exchange)
                while (
                    actor is not None
                    and actor.auth.error == "unknown_key"
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.02)
                    actor = resolver.resolve(exchange)
                assert actor is not None
                assert actor.auth.verified
                assert actor.id == "u1"
                if "realm" in namespace:
                    assert actor.roles == ("clerk",)
        finally:
            close_all(namespace)

    def test_api_key_example_matches_the_cli_entry(self, doc_env: JWKSServer) -> None:
        """The documented registry, loaded from the CLI's output, accepts the key."""
        namespace = run_block(PYTHON_BLOCKS[5], doc_env)
        actor = namespace["api_keys"].resolve(make_exchange({"x-api-key": THE_KEY}))
        assert (actor.id, actor.type, actor.roles, actor.auth.key_id) == (
            "svc-ci",
            "service",
            ("deployer",),
            "ci-bot",
        )

    def test_hook_example(self, doc_env: JWKSServer) -> None:
        """The documented hook reads the ingress header from an ASGI scope."""
        namespace = run_block(PYTHON_BLOCKS[7], doc_env)
        scope = {"type": "http", "headers": [(b"x-client-cert-subject", b"CN=batch")]}
        actor = namespace["identity"](scope)
        assert (actor.id, actor.type) == ("CN=batch", "service")
        assert namespace["identity"]({"type": "http", "headers": []}) is None
