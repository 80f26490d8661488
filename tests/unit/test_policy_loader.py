"""Loading policy documents from files and the environment, and building configurations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from auditmw.config import AuditConfig
from auditmw.config import loader as _loader
from auditmw.exceptions import ConfigurationError, PolicyError
from auditmw.policy import Policy, config_from_env, config_from_policy, load_policy, read_document
from auditmw.sinks.file import FileSink
from auditmw.sinks.memory import MemorySink
from auditmw.sinks.stdout import StdoutSink

if TYPE_CHECKING:
    from pathlib import Path

TOML = """
id = "p1"
[service]
name = "orders-api"
[[rules]]
id = "writes"
methods = ["POST"]
level = "request"
"""
YAML = """
id: p1
service:
  name: orders-api
rules:
  - id: writes
    methods: [POST]
    level: request
"""
DOCUMENT: dict[str, Any] = {
    "id": "p1",
    "service": {"name": "orders-api"},
    "rules": [{"id": "writes", "methods": ["POST"], "level": "request"}],
}


class TestRead:
    """TOML, YAML, JSON and mappings give the same document and hash."""

    @pytest.mark.parametrize(
        ("name", "text"),
        [
            pytest.param("p.toml", TOML, id="toml"),
            pytest.param("p.yaml", YAML, id="yaml"),
            pytest.param("p.yml", YAML, id="yml"),
            pytest.param("p.json", json.dumps(DOCUMENT), id="json"),
        ],
    )
    def test_formats(self, tmp_path: Path, name: str, text: str) -> None:
        """Every format loads to the same policy hash as the mapping."""
        path = tmp_path / name
        path.write_text(text)
        assert read_document(path) == DOCUMENT
        assert load_policy(path).hash == Policy(DOCUMENT).hash

    @pytest.mark.parametrize(
        ("name", "text", "message"),
        [
            pytest.param("p.toml", "id = ", "not valid TOML", id="toml"),
            pytest.param("p.yaml", "a: [", "not valid YAML", id="yaml"),
            pytest.param("p.json", "{", "not valid JSON", id="json"),
            pytest.param("p.json", "[1]", "must be a table/object", id="not-object"),
        ],
    )
    def test_syntax_errors(self, tmp_path: Path, name: str, text: str, message: str) -> None:
        """Syntax errors are policy errors naming the file and the format."""
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(PolicyError, match=message) as info:
            read_document(path)
        assert str(path) in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a configuration error naming the setting."""
        with pytest.raises(ConfigurationError, match="cannot read") as info:
            read_document(tmp_path / "absent.toml")
        assert info.value.setting == "policy"

    def test_unknown_suffix(self, tmp_path: Path) -> None:
        """An unknown suffix lists the supported ones."""
        path = tmp_path / "p.ini"
        path.write_text("")
        with pytest.raises(ConfigurationError, match=r"\.toml, \.yaml, \.yml or \.json"):
            read_document(path)

    def test_framework_settings_mapping(self) -> None:
        """Django ``settings.AUDITMW`` / Flask ``app.config["AUDITMW"]`` are plain mappings."""
        settings = {"AUDITMW": DOCUMENT}
        assert load_policy(settings["AUDITMW"]).id == "p1"


class TestKeys:
    """HMAC keys come from arguments or an explicitly passed environment."""

    DOC: ClassVar[dict[str, Any]] = {
        "redaction": {"client_ip": "hmac", "hmac_key_id": "k1", "hmac_key_env": "RKEY"}
    }

    def test_environ(self) -> None:
        """The key named by ``hmac_key_env`` is read from ``environ``."""
        policy = load_policy(self.DOC, environ={"RKEY": "x" * 32})
        assert policy.default_decision.processors

    def test_keys_argument(self) -> None:
        """Keys may be passed directly."""
        load_policy(self.DOC, keys={"k1": b"y" * 32})

    def test_missing(self) -> None:
        """Without a key, loading fails and says where the key is looked for."""
        with pytest.raises(PolicyError, match="set RKEY"):
            load_policy(self.DOC, environ={})

    def test_short_key(self) -> None:
        """A short key is refused."""
        with pytest.raises(PolicyError, match="16 bytes"):
            load_policy(self.DOC, environ={"RKEY": "short"})


class TestConfigFromPolicy:
    """One document builds the whole configuration."""

    def test_full(self, tmp_path: Path) -> None:
        """Service, sinks, delivery, identity and policy come from the document."""
        document = {
            **DOCUMENT,
            "service": {"name": "orders-api", "version": "1.2", "environment": "prod"},
            "sinks": [
                {"type": "file", "path": str(tmp_path / "audit.jsonl"), "fsync": "never"},
                {"type": "stdout", "stream": "stderr"},
                {"type": "memory"},
            ],
            "delivery": {"max_queue": 100, "overflow": "drop_and_record", "block_timeout": 0.5},
            "identity": {
                "framework_user": False,
                "trusted_proxies": ["10.0.0.0/8"],
                "request_id_header": "X-Req",
                "audit_id_header": False,
            },
        }
        config = config_from_policy(document)
        assert isinstance(config, AuditConfig)
        assert config.service_info.version == "1.2"
        assert [type(s) for s in config.sinks] == [FileSink, StdoutSink, MemorySink]
        assert config.delivery.max_queue == 100
        assert config.delivery.overflow == "drop_and_record"
        assert config.use_framework_user is False
        assert tuple(config.trusted_proxies) == ("10.0.0.0/8",)
        assert (config.request_id_header, config.audit_id_header) == ("X-Req", None)
        assert isinstance(config.policy, Policy)
        assert config.policy.id == "p1"

    def test_overrides_win(self) -> None:
        """Keyword overrides replace document sections."""
        sink = MemorySink()
        config = config_from_policy({**DOCUMENT, "sinks": [{"type": "stdout"}]}, sinks=[sink])
        assert list(config.sinks) == [sink]

    @pytest.mark.parametrize(
        ("document", "path", "message"),
        [
            pytest.param({}, "/service", "'service' (with 'name') is required", id="service"),
            pytest.param(
                {"sinks": [{"type": "file", "path": "/nonexistent-dir/a.jsonl"}]},
                "/sinks/0",
                "does not exist",
                id="sink-config-error",
            ),
            pytest.param(
                {"sinks": [{"type": "stdout", "colour": True}]},
                "/sinks/0",
                "colour",
                id="sink-unknown-option",
            ),
            pytest.param(
                {"retention": {"max_age_days": 30}, "sinks": [{"type": "stdout"}]},
                "/retention",
                "no [[sinks]] entry has type = 'file'",
                id="retention-without-file",
            ),
            pytest.param(
                {"delivery": {"max_batch": 10, "max_queue": 5, "block_timeout": 0}},
                "/delivery",
                "block_timeout",
                id="delivery",
            ),
        ],
    )
    def test_errors(self, document: dict[str, Any], path: str, message: str) -> None:
        """Sections that cannot be built are policy errors naming the section."""
        with pytest.raises(PolicyError) as info:
            config_from_policy({"service": {"name": "s"}, **document} if document else {})
        assert info.value.path == path
        assert message in str(info.value)

    def test_unavailable_class(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A section whose class is not in this build says so."""
        monkeypatch.setitem(_loader.RESOLVER_CLASSES, "jwt", ("auditmw.absent", "X"))
        with pytest.raises(PolicyError, match=r"auditmw\.absent\.X is not available"):
            config_from_policy({**DOCUMENT, "identity": {"jwt": {"algorithms": ["HS256"]}}})

    def test_resolver_kwargs_pass_through(self) -> None:
        """Identity sections build their resolver class with the section's keys."""
        from auditmw.identity.jwt import JWTResolver

        section = {"algorithms": ["HS256"], "secret": "s" * 32, "header": "x-token"}
        config = config_from_policy({**DOCUMENT, "identity": {"jwt": section}})
        (resolver,) = config.resolvers
        assert isinstance(resolver, JWTResolver)

    def test_non_resolver_is_refused(self) -> None:
        """An object that is not a resolver is refused at construction, by its index."""
        with pytest.raises(ConfigurationError, match=r"resolvers\.0: got <.*MemorySink"):
            config_from_policy(DOCUMENT, resolvers=[MemorySink()])

    def test_document_must_be_json_data(self) -> None:
        """A mapping holding Python objects is refused with a clear message."""
        with pytest.raises(PolicyError, match="only JSON data"):
            Policy({"sinks": [{"type": "stdout", "stream": object()}]})


class TestFromEnv:
    """``AUDITMW_POLICY`` names the file."""

    def test_from_env(self, tmp_path: Path) -> None:
        """The policy file and its keys come from the given environment."""
        path = tmp_path / "p.toml"
        path.write_text(TOML)
        config = config_from_env({"AUDITMW_POLICY": str(path)})
        assert isinstance(config.policy, Policy)
        assert config.policy.id == "p1"

    def test_unset(self) -> None:
        """An unset variable is an error naming it."""
        with pytest.raises(ConfigurationError, match="AUDITMW_POLICY is not set") as info:
            config_from_env({})
        assert info.value.setting == "AUDITMW_POLICY"
