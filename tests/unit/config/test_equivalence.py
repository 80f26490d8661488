"""The four forms in README.md and docs/configuration.md (TOML, Django, Flask, environment) are one configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.config import AuditConfig
from auditmw.contrib.flask import Audit
from auditmw.policy import Policy
from tests.frameworks import django_app

django_app.setup()

from django.test.utils import override_settings  # noqa: E402 - needs django.setup()

from auditmw.contrib._django_state import current_state  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[3]
DOC = ROOT / "docs" / "configuration.md"
DOCS = [pytest.param(ROOT / "README.md", id="README"), pytest.param(DOC, id="configuration")]
BLOCK = re.compile(r"<!-- equivalence: (\w+) -->\n```\w+\n(.*?)\n```", re.S)


def blocks(doc: Path = DOC) -> dict[str, str]:
    found = dict(BLOCK.findall(doc.read_text("utf-8")))
    assert set(found) == {"toml", "django", "flask", "env"}
    return found


def from_toml(text: str, tmp_path: Path) -> AuditConfig:
    path = tmp_path / "audit.toml"
    path.write_text(text)
    return AuditConfig.from_policy(path)


def from_django(text: str, tmp_path: Path) -> AuditConfig:
    namespace: dict[str, Any] = {}
    exec(text, namespace)  # noqa: S102 - the documented settings.py block
    with override_settings(AUDITMW=namespace["AUDITMW"]):
        state = current_state()
        assert state is not None
        state.auditor.close()
        return state.auditor.config


def from_flask(text: str, tmp_path: Path) -> AuditConfig:
    namespace: dict[str, Any] = {}
    exec(text, namespace)  # noqa: S102 - the documented Flask block
    auditor = Audit.auditor(namespace["app"])
    auditor.close()
    return auditor.config


def from_env(text: str, tmp_path: Path) -> AuditConfig:
    with pytest.MonkeyPatch.context() as mp:
        for line in text.splitlines():
            name, _, value = line.partition("=")
            mp.setenv(name, value)
        return AuditConfig.from_env()


LOADERS: dict[str, Callable[[str, Path], AuditConfig]] = {
    "toml": from_toml,
    "django": from_django,
    "flask": from_flask,
    "env": from_env,
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The secrets the documented configuration references, and a directory for its log."""
    monkeypatch.setenv("ORDERS_JWT_SECRET", "j" * 40)
    monkeypatch.setenv("ORDERS_MAC_KEY", "cd" * 32)
    monkeypatch.chdir(tmp_path)


def canonical(config: AuditConfig) -> dict[str, Any]:
    """A plain-data dump of the validated configuration and of its built runtime objects."""
    policy = config.policy
    assert isinstance(policy, Policy)
    integrity: Any = config.integrity
    return {
        "document": orjson.loads(orjson.dumps(policy.document, option=orjson.OPT_SORT_KEYS)),
        "policy": (policy.id, policy.hash, [rule.id for rule in policy.rules]),
        "service": config.service_info,
        "sinks": [(type(s).__name__, str(getattr(s, "path", ""))) for s in config.sinks],
        "resolvers": [type(r).__name__ for r in config.resolvers],
        "integrity": (type(integrity).__name__, integrity.checkpoint_every),
        "mac": integrity.take_mac_key() is not None,
        "delivery": config.delivery,
        "limits": config.limits,
        "trusted_proxies": tuple(config.trusted_proxies),
        "framework_user": config.use_framework_user,
    }


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("doc", DOCS)
def test_four_sources_are_one_configuration(tmp_path: Path, doc: Path) -> None:
    """TOML, Django settings, Flask config and environment variables give equal configurations."""
    texts = blocks(doc)
    dumps = {name: canonical(load(texts[name], tmp_path)) for name, load in LOADERS.items()}
    reference = dumps.pop("toml")
    assert reference["sinks"] == [("FileSink", "audit.jsonl")]
    assert reference["resolvers"] == ["JWTResolver"]
    assert reference["policy"][0] == "orders-2026-12"
    for name, dump in dumps.items():
        assert dump == reference, name


@pytest.mark.usefixtures("secrets")
def test_env_overrides_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``AUDITMW_DELIVERY__MODE`` changes one key of the file named by ``AUDITMW_POLICY``."""
    path = tmp_path / "audit.toml"
    path.write_text(blocks()["toml"])
    monkeypatch.setenv("AUDITMW_POLICY", str(path))
    monkeypatch.setenv("AUDITMW_DELIVERY__MODE", "durable")
    monkeypatch.setenv("AUDITMW_SINKS__0__FORMAT", "ecs")
    config = AuditConfig.from_env()
    assert (config.delivery.mode, config.delivery.max_queue) == ("durable", 20000)
    (sink,) = config.sinks
    assert sink.format == "ecs"


def test_flask_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flask's ``from_prefixed_env`` convention fills ``app.config["AUDITMW"]`` the same way."""
    from flask import Flask

    monkeypatch.setenv("FLASK_AUDITMW__service__name", "orders-api")
    monkeypatch.setenv("FLASK_AUDITMW__sinks", '[{"type": "stdout"}]')
    monkeypatch.setenv("FLASK_AUDITMW__delivery__max_queue", "20000")
    app = Flask("orders")
    app.config.from_prefixed_env()
    auditor = Audit(app).auditor(app)
    auditor.close()
    config = auditor.config
    assert config.service_info.name == "orders-api"
    assert [type(s).__name__ for s in config.sinks] == ["StdoutSink"]
    assert config.delivery.max_queue == 20000
