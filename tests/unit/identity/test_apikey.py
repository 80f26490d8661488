"""Unit tests for the API key registry, resolver and ``auditmw apikey hash``."""

from __future__ import annotations

import io
import json
import sys
import tomllib
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.cli import main
from auditmw.event import Headers
from auditmw.exceptions import ConfigurationError
from auditmw.identity import APIKeyEntry, APIKeyRegistry, APIKeyResolver, hash_key
from tests.unit.identity.identity_support import make_exchange

if TYPE_CHECKING:
    from pathlib import Path

SECRET = b"server-secret-0123456789"
KEY = "k_live_abcdef0123456789"


def entry(key: str = KEY, key_id: str = "ci-bot", **principal: Any) -> dict[str, Any]:
    """Return the stored registry form of ``key``."""
    return {"key_id": key_id, "hash": hash_key(SECRET, key.encode()), "principal": principal}


@pytest.fixture
def registry() -> APIKeyRegistry:
    """A registry with one service key and one plain key."""
    return APIKeyRegistry(
        SECRET,
        [
            entry(id="svc-ci", name="CI bot", roles=["deployer"], tenant_id="t1", type="service"),
            entry("second-key-0000", "plain"),
        ],
    )


class TestRegistry:
    def test_match(self, registry: APIKeyRegistry) -> None:
        """A registered key resolves to its principal; others do not."""
        actor = registry.match(KEY.encode())
        assert actor is not None
        assert actor.to_dict() == {
            "id": "svc-ci",
            "type": "service",
            "name": "CI bot",
            "roles": ["deployer"],
            "tenant_id": "t1",
            "auth": {"method": "api_key", "verified": True, "key_id": "ci-bot"},
        }
        plain = registry.match(b"second-key-0000")
        assert plain is not None
        assert (plain.id, plain.type) == ("plain", "api_key")
        assert registry.match(b"nope") is None

    def test_fingerprint_is_keyed_and_stable(self, registry: APIKeyRegistry) -> None:
        """Fingerprints correlate attempts under one secret and differ across secrets."""
        other = APIKeyRegistry(b"another-secret-0123456789", [])
        fingerprint = registry.fingerprint(b"guess")
        assert fingerprint == registry.fingerprint(b"guess")
        assert fingerprint != other.fingerprint(b"guess")
        assert fingerprint.startswith("fp:")
        assert len(fingerprint) == 19
        assert fingerprint[3:] not in hash_key(SECRET, b"guess")  # not a prefix of the stored hash

    @pytest.mark.parametrize(
        ("entries", "setting"),
        [
            pytest.param([{"hash": "hmac-sha256:00"}], "api_keys[0]", id="no-key-id"),
            pytest.param([{"key_id": "a", "hash": "sha1:00"}], "api_keys[0].hash", id="bad-prefix"),
            pytest.param(
                [{"key_id": "a", "hash": "hmac-sha256:zz"}], "api_keys[0].hash", id="not-hex"
            ),
            pytest.param([{"key_id": "a"}], "api_keys[0].hash", id="no-hash"),
            pytest.param([entry(type="admin")], "api_keys.principal.type", id="bad-principal-type"),
            pytest.param(["not-a-table"], "api_keys", id="not-a-table"),
        ],
    )
    def test_invalid_entries(self, entries: list[Any], setting: str) -> None:
        """Invalid entries raise ConfigurationError naming the entry."""
        with pytest.raises(ConfigurationError) as info:
            APIKeyRegistry(SECRET, entries)
        assert info.value.setting == setting

    def test_short_secret(self) -> None:
        """A secret under 16 bytes is refused without echoing it."""
        with pytest.raises(ConfigurationError) as info:
            APIKeyRegistry(b"tiny-secret", [])
        assert info.value.setting == "secret"
        assert "tiny-secret" not in str(info.value)

    def test_from_json_and_toml(self, tmp_path: Path) -> None:
        """Registries load from JSON and TOML files."""
        json_path = tmp_path / "keys.json"
        json_path.write_text(json.dumps({"keys": [entry(id="j")]}))
        toml_path = tmp_path / "keys.toml"
        toml_path.write_text(
            f'[[keys]]\nkey_id = "t"\nhash = "{hash_key(SECRET, b"toml-key-123")}"\n'
            'principal = { id = "tomluser", roles = ["r"] }\n'
        )
        from_json = APIKeyRegistry.from_file(json_path, SECRET).match(KEY.encode())
        from_toml = APIKeyRegistry.from_file(toml_path, SECRET).match(b"toml-key-123")
        assert from_json is not None
        assert from_toml is not None
        assert (from_json.id, from_toml.id, from_toml.roles) == ("j", "tomluser", ("r",))

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param("{not json", id="bad-json"),
            pytest.param('{"keys": {}}', id="keys-not-a-list"),
            pytest.param("[]", id="not-an-object"),
        ],
    )
    def test_bad_files(self, tmp_path: Path, content: str) -> None:
        """Unreadable registry files raise ConfigurationError."""
        path = tmp_path / "keys.json"
        path.write_text(content)
        with pytest.raises(ConfigurationError) as info:
            APIKeyRegistry.from_file(path, SECRET)
        assert info.value.setting == "api_keys"

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigurationError, not an OSError."""
        with pytest.raises(ConfigurationError):
            APIKeyRegistry.from_file(tmp_path / "absent.json", SECRET)

    def test_entry_object(self) -> None:
        """APIKeyEntry objects are accepted and their repr shows only the key id."""
        item = APIKeyEntry("obj", hash_key(SECRET, b"object-key-1"), {"name": "O"})
        registry = APIKeyRegistry(SECRET, [item])
        actor = registry.match(b"object-key-1")
        assert actor is not None
        assert (actor.id, actor.name) == ("obj", "O")
        assert repr(item) == "APIKeyEntry(key_id='obj')"


class TestResolver:
    def test_header(self, registry: APIKeyRegistry) -> None:
        """The X-API-Key header is read by default."""
        actor = APIKeyResolver(registry).resolve(make_exchange({"x-api-key": KEY}))
        assert actor is not None
        assert actor.id == "svc-ci"

    def test_no_credential(self, registry: APIKeyRegistry) -> None:
        """Without the header or parameter the resolver steps aside."""
        resolver = APIKeyResolver(registry, query_param="api_key")
        assert resolver.resolve(make_exchange({}, query="a=1&apikey=x")) is None

    @pytest.mark.parametrize(
        "query",
        [
            pytest.param(f"api_key={KEY}", id="plain"),
            pytest.param(f"x=1&api_key={KEY}&y=2", id="middle"),
            pytest.param("api_key=" + "".join(f"%{b:02X}" for b in KEY.encode()), id="encoded"),
        ],
    )
    def test_query_parameter(self, registry: APIKeyRegistry, query: str) -> None:
        """A configured query parameter is read (percent-decoded) when the header is absent."""
        resolver = APIKeyResolver(registry, header=None, query_param="api_key")
        actor = resolver.resolve(make_exchange({}, query=query))
        assert actor is not None
        assert actor.id == "svc-ci"

    def test_non_latin1_keys_do_not_collide(self) -> None:
        """Keys outside Latin-1 (possible with str-mapped headers) are hashed losslessly."""
        registry = APIKeyRegistry(SECRET, [entry("????-key", "q")])
        resolver = APIKeyResolver(registry)
        exchange = make_exchange()
        exchange.headers = Headers(mapping={"x-api-key": "клюк-key"})
        actor = resolver.resolve(exchange)
        assert actor is not None
        assert actor.auth.error == "unknown_key"

    def test_needs_a_source(self, registry: APIKeyRegistry) -> None:
        """Disabling both header and query parameter is a configuration error."""
        with pytest.raises(ConfigurationError):
            APIKeyResolver(registry, header=None)

    def test_repr_hides_secret(self, registry: APIKeyRegistry) -> None:
        """The repr shows neither the secret nor any hash."""
        text = repr(APIKeyResolver(registry))
        assert SECRET.decode() not in text
        assert "hmac" not in text
        expected = "APIKeyRegistry(keys=2, secret=<hidden>)"
        assert text == f"APIKeyResolver(header='x-api-key', registry={expected})"


class TestHashCommand:
    def run(self, monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: bytes = b"") -> int:
        """Run the CLI with ``stdin`` and the secret in the environment."""
        monkeypatch.setenv("AUDITMW_APIKEY_SECRET", SECRET.decode())
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        return main(argv)

    def test_hash_from_stdin(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The printed entry loads into a registry that matches the key."""
        argv = ["apikey", "hash", "--key-id", "ci", "--role", "a", "--role", "b", "--tenant", "t"]
        assert self.run(monkeypatch, argv, KEY.encode() + b"\n") == 0
        out = capsys.readouterr()
        stored = json.loads(out.out)
        assert stored["principal"] == {"id": "ci", "type": "api_key", "roles": ["a", "b"],
                                       "tenant_id": "t"}  # fmt: skip
        assert KEY not in out.out + out.err
        actor = APIKeyRegistry(SECRET, [stored]).match(KEY.encode())
        assert actor is not None
        assert actor.auth.key_id == "ci"

    def test_generate_prints_key_once_on_stderr(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--generate prints the new key on stderr and only its hash on stdout (TOML here)."""
        assert self.run(monkeypatch, ["apikey", "hash", "--generate", "--format", "toml"]) == 0
        out = capsys.readouterr()
        key = out.err.rsplit(" ", 1)[-1].strip()
        assert key.startswith("amk_")
        assert key not in out.out
        stored = tomllib.loads(out.out)["keys"]
        assert APIKeyRegistry(SECRET, stored).match(key.encode()) is not None

    @pytest.mark.parametrize(
        ("stdin", "env"),
        [
            pytest.param(b"", True, id="empty-stdin"),
            pytest.param(b"x" * 5000, True, id="huge-stdin"),
            pytest.param(b"key-123", False, id="no-secret"),
        ],
    )
    def test_errors(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        stdin: bytes, env: bool,
    ) -> None:  # fmt: skip
        """Bad input or a missing secret exit with 2 and a message naming the problem."""
        code = self.run(monkeypatch, ["apikey", "hash", "--secret-env", "X_SECRET" if not env
                                      else "AUDITMW_APIKEY_SECRET"], stdin)  # fmt: skip
        assert code == 2
        err = capsys.readouterr().err
        assert ("X_SECRET" in err) if not env else ("stdin" in err)
