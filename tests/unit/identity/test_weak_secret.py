"""Short HS* secrets: accepted with a warning (pyjwt's convention), recorded, refusable.

The FastAPI full-stack template ships ``SECRET_KEY=changethis``; DRF JWT libraries'
tests use 24-byte keys.  Refusing them outright made auditmw unusable there.  The
weakness is warned about once (:class:`InsecureKeyWarning`), stated in
``audit.started`` and failed by ``auditmw audit-ready``; ``min_secret_bytes`` refuses.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from auditmw import AuditConfig
from auditmw.auditor import Auditor
from auditmw.evidence.readiness import check_readiness
from auditmw.exceptions import ConfigurationError
from auditmw.identity import InsecureKeyWarning, JWTResolver
from auditmw.sinks import FileSink
from tests.unit.identity.identity_support import HS_SECRET, make_exchange

if TYPE_CHECKING:
    from pathlib import Path

    from auditmw.types import Event

TEMPLATE_SECRET = "changethis"
DRF_SECRET = b"x" * 24


def weak(secret: str | bytes, algorithms: list[str] | None = None, **kw: Any) -> JWTResolver:
    """Build a resolver expecting exactly the weak-secret warning."""
    with pytest.warns(InsecureKeyWarning, match="min_secret_bytes") as record:
        resolver = JWTResolver(algorithms=algorithms or ["HS256"], secret=secret, **kw)
    assert len(record) == 1
    return resolver


def token(secret: str | bytes, alg: str = "HS256") -> str:
    claims = {"sub": "ada", "exp": int(time.time()) + 600}
    with warnings.catch_warnings():  # pyjwt warns when *signing* with a short key
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm=alg)


class TestAccepted:
    @pytest.mark.parametrize(
        ("secret", "alg"),
        [
            pytest.param(TEMPLATE_SECRET, "HS256", id="fastapi-template-changethis"),
            pytest.param(DRF_SECRET, "HS256", id="drf-24-bytes"),
            pytest.param(b"y" * 32, "HS512", id="32-bytes-for-hs512"),
        ],
    )
    def test_short_secret_verifies_tokens(self, secret: str | bytes, alg: str) -> None:
        """Accepted with one warning; its tokens verify, with no warning per request."""
        resolver = weak(secret, [alg])
        for _ in range(2):  # warnings are errors here: a per-decode warning would fail
            actor = resolver.resolve(
                make_exchange({"authorization": f"Bearer {token(secret, alg)}"})
            )
            assert actor is not None
            assert (actor.id, actor.auth.verified, actor.auth.error) == ("ada", True, None)

    def test_forged_token_still_refused(self) -> None:
        """A short secret is still a secret: a token signed with another is refused."""
        resolver = weak(TEMPLATE_SECRET)
        actor = resolver.resolve(make_exchange({"authorization": f"Bearer {token('other')}"}))
        assert actor is not None
        assert actor.auth.error == "invalid_signature"

    def test_weakness_is_described(self) -> None:
        """``weaknesses`` names the problem, the sizes and the fix, never the secret."""
        (item,) = weak(TEMPLATE_SECRET).weaknesses
        assert item == {
            "kind": "short_hmac_secret",
            "resolver": "JWTResolver",
            "algorithms": ["HS256"],
            "secret_bytes": len(TEMPLATE_SECRET),
            "recommended_bytes": 32,
        }

    def test_strong_secret_has_no_weakness(self) -> None:
        """A secret of the hash size: no warning (errors here) and no weakness."""
        assert JWTResolver(algorithms=["HS512"], secret=HS_SECRET).weaknesses == ()

    def test_warning_does_not_quote_secret(self) -> None:
        """The warning names the setting and the fix, not the secret."""
        with pytest.warns(InsecureKeyWarning) as record:
            JWTResolver(algorithms=["HS256"], secret="CANARY-short")
        assert "CANARY" not in str(record[0].message)


class TestRefused:
    @pytest.mark.parametrize(
        "secret", [pytest.param(TEMPLATE_SECRET, id="10"), pytest.param(DRF_SECRET, id="24")]
    )
    def test_min_secret_bytes_refuses(self, secret: str | bytes) -> None:
        """``min_secret_bytes=32`` opts in to refusing short secrets."""
        with pytest.raises(ConfigurationError, match="min_secret_bytes") as info:
            JWTResolver(algorithms=["HS256"], secret=secret, min_secret_bytes=32)
        assert info.value.setting == "secret"

    def test_min_secret_bytes_met_still_warns_below_rfc(self) -> None:
        """A secret meeting the user's minimum but not RFC 7518's still warns."""
        weak(b"z" * 40, ["HS512"], min_secret_bytes=32)

    def test_bad_min_secret_bytes(self) -> None:
        """A negative minimum is a configuration error naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            JWTResolver(algorithms=["HS256"], secret=HS_SECRET, min_secret_bytes=-1)
        assert info.value.setting == "min_secret_bytes"


def started_event(events: list[Event]) -> Event:
    (event,) = [e for e in events if e["kind"] == "audit.started"]
    return event


class TestRecorded:
    def test_audit_started_states_weakness(self, audit_events: list[Event]) -> None:
        """``audit.started`` carries the resolver's weaknesses in its details."""
        auditor = Auditor(AuditConfig(service="s", sinks=[], resolvers=[weak(TEMPLATE_SECRET)]))
        try:
            auditor.start()
        finally:
            auditor.close(timeout=5)
        details = started_event(audit_events)["details"]
        assert details["weaknesses"] == [
            {
                "kind": "short_hmac_secret",
                "resolver": "JWTResolver",
                "algorithms": ["HS256"],
                "secret_bytes": 10,
                "recommended_bytes": 32,
            }
        ]

    def test_audit_started_without_weakness(self, audit_events: list[Event]) -> None:
        """A strong secret adds nothing to ``audit.started``."""
        resolver = JWTResolver(algorithms=["HS256"], secret=HS_SECRET)
        auditor = Auditor(AuditConfig(service="s", sinks=[], resolvers=[resolver]))
        try:
            auditor.start()
        finally:
            auditor.close(timeout=5)
        assert "weaknesses" not in started_event(audit_events)["details"]

    @pytest.mark.parametrize(
        "is_weak", [pytest.param(True, id="weak"), pytest.param(False, id="strong")]
    )
    def test_audit_ready_finding(self, tmp_path: Path, *, is_weak: bool) -> None:
        """``audit-ready`` fails a ``key_strength`` check when a log started with a weak secret."""
        log = tmp_path / "audit.jsonl"
        resolver = (
            weak(DRF_SECRET) if is_weak else JWTResolver(algorithms=["HS256"], secret=HS_SECRET)
        )
        auditor = Auditor(AuditConfig(service="s", sinks=[FileSink(log)], resolvers=[resolver]))
        auditor.start()
        auditor.close(timeout=5)
        checks = {c.name: c for c in check_readiness([log], policy=None).checks}
        if is_weak:
            assert checks["key_strength"].passed is False
            assert "24-byte" in checks["key_strength"].detail
            assert "min_secret_bytes" in checks["key_strength"].detail
        else:
            assert "key_strength" not in checks
