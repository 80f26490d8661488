"""Every misconfiguration of issue 17 is refused at build with its key path, or works as meant."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from auditmw.config import AuditConfig, DeliveryOptions, NoSinksWarning, SettingError
from auditmw.contrib.flask import Audit
from auditmw.exceptions import ConfigurationError, PolicyError
from auditmw.integrity import IntegrityOptions

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from flask import Flask

    from auditmw.types import Event

SECRET = "s" * 40
MAC_HEX = "ab" * 32


def http(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


def token(sub: str = "ada") -> str:
    return jwt.encode({"sub": sub, "exp": 4_000_000_000}, SECRET, algorithm="HS256")


class TestLiveFields:
    """``AuditConfig`` checks the type of every field when it is constructed."""

    @pytest.mark.parametrize(
        ("kwargs", "path"),
        [
            pytest.param({"integrity": {"mac_key_file": "k"}}, "/integrity", id="integrity-dict"),
            pytest.param({"resolvers": [{"type": "jwt"}]}, "/resolvers/0", id="resolver-dict"),
            pytest.param({"resolvers": ["jwt"]}, "/resolvers/0", id="resolver-string"),
            pytest.param({"identity": {"jwt": {}}}, "/identity", id="identity-dict"),
            pytest.param({"use_framework_user": "no"}, "/use_framework_user", id="bool"),
            pytest.param({"record_headers": "x-tenant"}, "/record_headers", id="headers-str"),
            pytest.param({"trusted_proxies": "10.0.0.1"}, "/trusted_proxies", id="proxies-str"),
            pytest.param({"delivery": {"mode": "durable"}}, "/delivery", id="delivery-dict"),
            pytest.param({"limits": {"path": 10}}, "/limits", id="limits-dict"),
            pytest.param({"processors": [1]}, "/processors/0", id="processor"),
        ],
    )
    def test_wrong_type_refused_at_construction(self, kwargs: dict[str, Any], path: str) -> None:
        """A wrong type is a ConfigurationError naming the key path, never a later failure."""
        with pytest.raises(SettingError) as info:
            AuditConfig(service="s", **kwargs)
        assert info.value.path == path
        assert isinstance(info.value, ConfigurationError)
        assert path.strip("/").split("/")[0] in str(info.value)

    def test_table_values_never_shown(self) -> None:
        """A refused table is described by its keys: an inline secret stays out of the error."""
        with pytest.raises(SettingError) as info:
            AuditConfig(service="s", integrity={"mac_key": b"k" * 32})  # type: ignore[arg-type]
        assert "kkkk" not in str(info.value)
        assert "['mac_key']" in str(info.value)
        assert info.value.value is None

    @pytest.mark.parametrize(
        ("kwargs", "path"),
        [
            pytest.param({"max_queue": "10"}, "/delivery/max_queue", id="str-number"),
            pytest.param({"max_batch": 2.5}, "/delivery/max_batch", id="float-for-int"),
            pytest.param({"block_timeout": True}, "/delivery/block_timeout", id="bool-number"),
        ],
    )
    def test_delivery_types(self, kwargs: dict[str, Any], path: str) -> None:
        """DeliveryOptions checks types, not only ranges."""
        with pytest.raises(SettingError) as info:
            DeliveryOptions(**kwargs)
        assert info.value.path == path

    def test_service_must_be_name_or_serviceinfo(self) -> None:
        """A dict for ``service`` is refused by ``AuditConfig`` (``from_mapping`` takes it)."""
        with pytest.raises(SettingError) as info:
            AuditConfig(service={"name": "x"})  # type: ignore[arg-type]
        assert info.value.path == "/service"

    def test_policy_file_with_deployment_sections_refused(self, tmp_path: Path) -> None:
        """``AuditConfig(policy=file)`` would ignore [[sinks]] and [service]: refused by name."""
        path = tmp_path / "policy.toml"
        path.write_text('[service]\nname = "a"\n[[sinks]]\ntype = "stdout"\n')
        with pytest.raises(SettingError, match=r"sinks, service.*from_policy") as info:
            AuditConfig(service="s", policy=str(path))
        assert info.value.path == "/policy"

    def test_policy_is_compiled_at_construction(self, tmp_path: Path) -> None:
        """An invalid policy file fails when the configuration is built."""
        path = tmp_path / "policy.toml"
        path.write_text('default_level = "loud"\n')
        with pytest.raises(PolicyError) as info:
            AuditConfig(service="s", policy=str(path))
        assert info.value.path == "/default_level"


class TestSettingsMapping:
    """``app.config["AUDITMW"]`` (and Django's ``AUDITMW``) hold the plain-data document."""

    def test_integrity_table_is_built(
        self,
        flask_app: Callable[[Any], Flask],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``integrity`` as a table chains and MACs events instead of failing each request."""
        monkeypatch.setenv("TEST_MAC_KEY", MAC_HEX)
        log = tmp_path / "audit.jsonl"
        app = flask_app(
            {
                "service": "orders",
                "sinks": [{"type": "file", "path": str(log)}],
                "integrity": {"mac_key_env": "TEST_MAC_KEY", "checkpoint_every": 10},
            }
        )
        assert app.test_client().get("/orders/1").status_code == 200
        Audit.auditor(app).close()
        events = [json.loads(line) for line in log.read_text().splitlines()]
        (event,) = [e for e in events if e.get("kind") == "http"]
        assert event["integrity"]["mac"]
        assert isinstance(Audit.auditor(app).config.integrity, IntegrityOptions)

    def test_identity_table_builds_jwt_resolver(
        self,
        flask_app: Callable[[Any], Flask],
        audit_events: list[Event],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``identity = {jwt = {...}}`` with ``secret_env`` resolves the actor, not anonymous."""
        monkeypatch.setenv("TEST_JWT_SECRET", SECRET)
        settings = {
            "service": "orders",
            "identity": {"jwt": {"algorithms": ["HS256"], "secret_env": "TEST_JWT_SECRET"}},
        }
        client = flask_app(settings).test_client()
        client.get("/orders/1", headers={"Authorization": f"Bearer {token()}"})
        (event,) = http(audit_events)
        assert event["actor"]["id"] == "ada"
        assert event["actor"]["auth"]["verified"] is True

    def test_api_key_registry_file(
        self,
        flask_app: Callable[[Any], Flask],
        audit_events: list[Event],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``[identity.api_key] registry = "api-keys.json"`` loads the registry by path."""
        key = b"ak_live_0123456789"
        digest = hmac.new(SECRET.encode(), key, hashlib.sha256).hexdigest()
        registry = tmp_path / "api-keys.json"
        entry = {"key_id": "k1", "hash": f"hmac-sha256:{digest}", "principal": {"id": "svc-a"}}
        registry.write_text(json.dumps({"keys": [entry]}))
        secret_file = tmp_path / "api-secret"
        secret_file.write_text(SECRET + "\n")
        settings = {
            "service": "orders",
            "identity": {"api_key": {"registry": str(registry), "secret_file": str(secret_file)}},
        }
        client = flask_app(settings).test_client()
        client.get("/orders/1", headers={"X-API-Key": key.decode()})
        (event,) = http(audit_events)
        assert (event["actor"]["id"], event["actor"]["auth"]["key_id"]) == ("svc-a", "k1")

    def test_policy_shaped_dict(
        self, flask_app: Callable[[Any], Flask], audit_events: list[Event]
    ) -> None:
        """The policy document as a dict (``id``, ``rules``) is accepted, as docs/policy.md says."""
        settings = {
            "service": {"name": "orders"},
            "id": "p1",
            "rules": [{"id": "writes", "methods": ["POST"], "level": "request"}],
        }
        flask_app(settings).test_client().post("/orders", data=b"{}")
        (event,) = http(audit_events)
        assert (event["policy"]["id"], event["policy"]["rule"]) == ("p1", "writes")

    def test_policy_file_sections_apply(
        self, flask_app: Callable[[Any], Flask], tmp_path: Path
    ) -> None:
        """``{"policy": path}`` applies the file's [[sinks]] and [service], not only its rules."""
        log = tmp_path / "audit.jsonl"
        policy = tmp_path / "policy.toml"
        policy.write_text(
            f'id = "p2"\n[service]\nname = "from-file"\n[[sinks]]\ntype = "file"\npath = "{log}"\n'
        )
        app = flask_app({"policy": str(policy)})
        app.test_client().get("/orders/1")
        Audit.auditor(app).close()
        events = [json.loads(line) for line in log.read_text().splitlines()]
        (event,) = [e for e in events if e.get("kind") == "http"]
        assert (event["service"]["name"], event["policy"]["id"]) == ("from-file", "p2")

    @pytest.mark.parametrize(
        ("settings", "path"),
        [
            pytest.param(
                {"identity": {"jwt": {"algoritms": ["HS256"]}}},
                "/identity/jwt/algoritms",
                id="jwt-typo",
            ),
            pytest.param(
                {"identity": {"jwt": {"algorithms": ["HS256"], "secret_env": "TEST_UNSET_X"}}},
                "/identity/jwt/secret_env",
                id="secret-env-unset",
            ),
            pytest.param(
                {"integrity": {"signing_key_file": "/nonexistent/k.pem"}},
                "/integrity",
                id="signing-key-missing",
            ),
            pytest.param({"sinks": [{"type": "stdout", "bogus": 1}]}, "/sinks/0", id="sink-option"),
            pytest.param({"sinks": ["stdout"]}, "/sinks/0", id="sink-string"),
            pytest.param({"delivery": {"mode": 1}}, "/delivery/mode", id="delivery-mode"),
            pytest.param({"limits": {"path": "long"}}, "/limits/path", id="limits"),
            pytest.param({"resolvers": [{"jwt": {}}]}, "/resolvers/0", id="resolvers-dict"),
            pytest.param(
                {"trusted_proxies": ["10.0.0.1"], "identity": {"trusted_proxies": ["10.0.0.2"]}},
                "/identity/trusted_proxies",
                id="flat-and-section",
            ),
        ],
    )
    def test_refused_at_build_with_path(
        self, flask_app: Callable[[Any], Flask], settings: dict[str, Any], path: str
    ) -> None:
        """Each mistake fails ``init_app`` with the key path, before any request."""
        with pytest.raises(SettingError) as info:
            flask_app({"service": "orders", **settings})
        assert info.value.path == path
        assert info.value.setting == "AUDITMW." + path.split("/")[1]
        assert str(info.value).startswith("AUDITMW: ")

    def test_no_sinks_warns(self) -> None:
        """Zero sinks is a NoSinksWarning (events would be written nowhere)."""
        with pytest.warns(NoSinksWarning, match="no sinks"):
            AuditConfig.from_mapping({"service": "orders"})


class TestNoSinks:
    """Zero sinks is said where an operator looks: a warning and ``audit.started``."""

    def test_audit_started_says_so(self, audit_events: list[Event]) -> None:
        """``audit.started`` of an auditor without sinks carries the warning."""
        from auditmw.auditor import Auditor

        auditor = Auditor(AuditConfig(service="s"))
        try:
            auditor.start()
        finally:
            auditor.close()
        (started,) = [e for e in audit_events if e["kind"] == "audit.started"]
        assert "no sinks" in started["details"]["warning"]

    def test_audit_started_quiet_with_sinks(self, audit_events: list[Event]) -> None:
        """With a sink, ``audit.started`` has no warning."""
        from auditmw.auditor import Auditor
        from auditmw.testing import MemorySink

        auditor = Auditor(AuditConfig(service="s", sinks=[MemorySink()]))
        try:
            auditor.start()
        finally:
            auditor.close()
        (started,) = [e for e in audit_events if e["kind"] == "audit.started"]
        assert "warning" not in started["details"]
