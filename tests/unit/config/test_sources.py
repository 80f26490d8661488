"""The ``AUDITMW_*`` environment convention."""

from __future__ import annotations

import os

import pytest

from auditmw.config import AuditConfig, SettingError
from auditmw.core.documents import env_overrides
from auditmw.exceptions import ConfigurationError


class TestEnvOverrides:
    """Variables become a nested document, typed by the schema."""

    def test_nested_lists_and_types(self) -> None:
        """``__`` nests, numbers index lists, non-string keys are parsed as JSON."""
        environ = {
            "AUDITMW_SERVICE__NAME": "orders",
            "AUDITMW_SERVICE__VERSION": "1.2",
            "AUDITMW_SINKS__0__TYPE": "stdout",
            "AUDITMW_SINKS__1__TYPE": "file",
            "AUDITMW_DELIVERY__MAX_QUEUE": "10",
            "AUDITMW_IDENTITY__FRAMEWORK_USER": "false",
            "AUDITMW_REQUIRE_SERVICES": "1",
            "AUDITMW_REDACTION_KEY": "not-a-document-key",
        }
        assert env_overrides(environ) == {
            "service": {"name": "orders", "version": "1.2"},
            "sinks": [{"type": "stdout"}, {"type": "file"}],
            "delivery": {"max_queue": 10},
            "identity": {"framework_user": False},
        }

    @pytest.mark.parametrize(
        ("environ", "path"),
        [
            pytest.param({"AUDITMW_SERVCE__NAME": "x"}, "/servce/name", id="typo"),
            pytest.param(
                {"AUDITMW_DELIVERY__MAX_QUEUE": "ten"}, "AUDITMW_DELIVERY__MAX_QUEUE", id="not-json"
            ),
        ],
    )
    def test_errors(self, environ: dict[str, str], path: str) -> None:
        """A misspelt section or a value that is not JSON is an error, never ignored."""
        with pytest.raises(SettingError) as info:
            env_overrides(environ)
        assert info.value.path == path

    def test_wrong_type_names_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A value of the wrong type fails with the key path, like any other source."""
        monkeypatch.setenv("AUDITMW_SERVICE__NAME", "orders")
        monkeypatch.setenv("AUDITMW_DELIVERY__MODE", "5")
        with pytest.raises(SettingError) as info:
            AuditConfig.from_env()
        assert info.value.path == "/delivery/mode"

    def test_nothing_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Neither ``AUDITMW_POLICY`` nor an override: the error says what to set."""
        for name in [n for n in os.environ if n.startswith("AUDITMW_")]:
            monkeypatch.delenv(name)
        with pytest.raises(ConfigurationError, match="AUDITMW_SERVICE__NAME") as info:
            AuditConfig.from_env()
        assert info.value.setting == "AUDITMW_POLICY"
