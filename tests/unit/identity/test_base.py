"""Unit tests for the framework-user resolver, the hook resolver and the resolver chain."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from auditmw.event import ANONYMOUS, Actor, AuthInfo, Exchange
from auditmw.identity import FrameworkUserResolver, HookResolver, resolve_actor
from tests.unit.identity.identity_support import make_exchange


@dataclass
class StarletteLikeUser:
    """Shaped like starlette.authentication.SimpleUser."""

    username: str
    is_authenticated: bool = True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        raise NotImplementedError


class DjangoLikeUser:
    """Shaped like django.contrib.auth.models.User."""

    is_authenticated = True
    pk = 42
    email = "ada@example.com"

    def get_username(self) -> str:
        return "ada"


class FlaskLoginLikeUser:
    """Shaped like a flask_login.UserMixin user."""

    is_authenticated = True
    name = "Grace"

    def get_id(self) -> str:
        return "u-7"


class Hostile:
    """A user object whose attributes misbehave."""

    is_authenticated = True

    @property
    def pk(self) -> Any:
        raise RuntimeError("database is down")

    id: ClassVar[list[str]] = ["not", "scalar"]
    username = "evil\nname" + "x" * 1000

    def name(self) -> str:  # a method that must never be called
        raise AssertionError("called")


class TestFrameworkUserResolver:
    @pytest.mark.parametrize(
        ("user", "expected"),
        [
            pytest.param(StarletteLikeUser("sam"), {"id": "sam", "name": "sam"}, id="starlette"),
            pytest.param(
                DjangoLikeUser(),
                {"id": "42", "name": "ada", "email": "ada@example.com"},
                id="django",
            ),
            pytest.param(FlaskLoginLikeUser(), {"id": "u-7", "name": "Grace"}, id="flask-login"),
        ],
    )
    def test_framework_users(self, user: Any, expected: dict[str, str]) -> None:
        """Users of each framework map to a verified session actor."""
        actor = FrameworkUserResolver().resolve(make_exchange(user=user))
        assert actor is not None
        assert actor.to_dict() == {
            **expected, "type": "user", "auth": {"method": "session", "verified": True},
        }  # fmt: skip

    @pytest.mark.parametrize(
        "user",
        [
            pytest.param(None, id="none"),
            pytest.param(StarletteLikeUser("x", is_authenticated=False), id="unauthenticated"),
            pytest.param(type("U", (), {"is_authenticated": "yes", "pk": 1})(), id="truthy-str"),
            pytest.param(type("U", (), {"pk": 1})(), id="no-flag"),
            pytest.param({"id": 1}, id="dict"),
        ],
    )
    def test_not_authenticated(self, user: Any) -> None:
        """Only an is_authenticated that is really True counts."""
        assert FrameworkUserResolver().resolve(make_exchange(user=user)) is None

    def test_hostile_user_object(self) -> None:
        """Raising properties, non-scalars and methods are skipped; text is cleaned and capped."""
        actor = FrameworkUserResolver().resolve(make_exchange(user=Hostile()))
        assert actor is not None
        assert actor.id.startswith("evilnamex")
        assert len(actor.id) <= 256
        assert actor.name == actor.id

    def test_uuid_primary_key(self) -> None:
        """UUID ids are recorded as strings."""
        key = uuid.uuid4()
        user = type("U", (), {"is_authenticated": True, "pk": key})()
        actor = FrameworkUserResolver().resolve(make_exchange(user=user))
        assert actor is not None
        assert actor.id == str(key)


class TestHookResolver:
    def test_hook_receives_request_object(self) -> None:
        """The hook gets the framework request and its actor is used."""
        seen: list[Any] = []

        def hook(request: Any) -> Actor:
            seen.append(request)
            return Actor(id="h", type="service")

        actor = HookResolver(hook).resolve(make_exchange(request_object="REQ"))
        assert actor == Actor(id="h", type="service")
        assert seen == ["REQ"]

    def test_hook_errors_are_logged_by_type_only(self, caplog: pytest.LogCaptureFixture) -> None:
        """An exception becomes None; its message (which may hold secrets) is not logged."""

        def hook(request: Any) -> Actor | None:
            raise ValueError("token=SECRET123")

        with caplog.at_level(logging.WARNING, logger="auditmw.identity"):
            assert HookResolver(hook).resolve(make_exchange()) is None
        assert "ValueError" in caplog.text
        assert "SECRET123" not in caplog.text

    def test_non_actor_is_ignored(self) -> None:
        """A hook returning something else than an Actor is ignored."""
        hook: Any = lambda request: {"id": "x"}  # noqa: E731
        assert HookResolver(hook).resolve(make_exchange()) is None

    def test_repr(self) -> None:
        """The repr names the hook."""

        def my_hook(request: Any) -> None:
            return None

        assert (
            repr(HookResolver(my_hook))
            == "HookResolver(TestHookResolver.test_repr.<locals>.my_hook)"
        )


class Fixed:
    """A resolver returning a fixed result (or raising)."""

    def __init__(self, result: Actor | Exception | None) -> None:
        self.result = result

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return or raise the fixed result."""
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


FAILED = Actor(auth=AuthInfo(method="jwt", error="expired"))
VALID = Actor(id="k", type="api_key", auth=AuthInfo(method="api_key", verified=True))


class TestResolveActor:
    @pytest.mark.parametrize(
        ("results", "expected"),
        [
            pytest.param([], ANONYMOUS, id="no-resolvers"),
            pytest.param([None, None], ANONYMOUS, id="nothing-recognised"),
            pytest.param([FAILED, VALID], VALID, id="valid-after-failure-wins"),
            pytest.param([VALID, FAILED], VALID, id="first-valid-wins"),
            pytest.param([None, FAILED, None], FAILED, id="failure-kept"),
            pytest.param([RuntimeError("x"), VALID], VALID, id="raising-resolver-skipped"),
        ],
    )
    def test_chain(self, results: list[Any], expected: Actor) -> None:
        """The first valid actor wins; a failure is kept when nothing else matched."""
        assert resolve_actor([Fixed(r) for r in results], make_exchange()) == expected

    def test_raising_resolver_alone(self) -> None:
        """A resolver that raises is recorded as resolver_error."""
        actor = resolve_actor([Fixed(RuntimeError("boom"))], make_exchange())
        assert actor.auth.error == "resolver_error"
