"""Identity resolution: the resolver chain and the framework-user resolver.

Trust: a framework user is whatever the application's own authentication put on the
request (Starlette ``scope["user"]``, Django ``request.user``, Flask-Login
``current_user``), read *after* the app ran.  auditmw records it as
``auth.method = "session"``, ``verified = true``: it trusts the app's authentication
as much as the app does.  Do not use it when the user object can be set from
unauthenticated input.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from auditmw.event import ANONYMOUS, Actor, AuthInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from auditmw.event import Exchange
    from auditmw.types import IdentityHook, Resolver

__all__ = ["FrameworkUserResolver", "HookResolver", "resolve_actor"]

logger = logging.getLogger("auditmw.identity")

_ID_ATTRIBUTES = ("identity", "pk", "id", "user_id", "username")
_NAME_ATTRIBUTES = ("display_name", "username", "name")
_SESSION_AUTH = AuthInfo(method="session", verified=True)


def _attribute(obj: Any, names: Sequence[str]) -> str | None:
    for name in names:
        try:
            value = getattr(obj, name, None)
            if callable(value):
                value = value()
        except Exception:  # noqa: S112 - user objects may raise anything; try the next name
            continue
        if value is not None and value != "":
            return str(value)
    return None


def _is_authenticated(user: Any) -> bool:
    try:
        flag = getattr(user, "is_authenticated", False)
        return bool(flag() if callable(flag) else flag)
    except Exception:
        return False


class FrameworkUserResolver:
    """Reads the framework's authenticated user object (``exchange.user``).

    Works with Starlette ``BaseUser``, Django ``User`` and Flask-Login users: anything
    with a truthy ``is_authenticated`` and an id (``identity``, ``get_id()``, ``pk``,
    ``id`` or ``username``).  Unauthenticated users yield ``None``.

    .. versionadded:: 0.1.0
    """

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return a ``session`` actor for an authenticated framework user."""
        user = exchange.user
        if user is None or not _is_authenticated(user):
            return None
        getter = getattr(user, "get_id", None)
        user_id = _attribute(user, ("get_id",)) if callable(getter) else None
        user_id = user_id or _attribute(user, _ID_ATTRIBUTES)
        name = _attribute(user, _NAME_ATTRIBUTES)
        email = _attribute(user, ("email",))
        return Actor(
            id=user_id or name or "unknown",
            type="user",
            name=name,
            email=email,
            auth=_SESSION_AUTH,
        )


class HookResolver:
    """Adapts a user callable ``hook(request) -> Actor | None`` to the resolver protocol.

    The hook receives the framework's request object (or the ASGI scope).  An
    exception in the hook is logged and treated as "no identity", never propagated.

    Args:
        hook: the callable.

    .. versionadded:: 0.1.0
    """

    def __init__(self, hook: IdentityHook) -> None:
        self._hook = hook

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Call the hook with the request object; errors become ``None``."""
        try:
            return self._hook(exchange.request_object)
        except Exception as exc:
            logger.warning(
                "auditmw identity hook raised %s; treating as anonymous", type(exc).__name__
            )
            return None


def resolve_actor(resolvers: Sequence[Resolver], exchange: Exchange) -> Actor:
    """Run ``resolvers`` in order; the first actor wins.

    A failed attempt (an anonymous actor carrying ``auth.error``) is kept only if no
    later resolver finds a valid identity, so that e.g. a stale cookie does not hide a
    valid API key, but a forged token is still recorded when nothing else matched.
    """
    failed: Actor | None = None
    for resolver in resolvers:
        try:
            actor = resolver.resolve(exchange)
        except Exception as exc:  # resolvers must not raise; if one does, record it
            logger.warning(
                "auditmw resolver %s raised %s", type(resolver).__name__, type(exc).__name__
            )
            actor = Actor(auth=AuthInfo(error="resolver_error"))
        if actor is None:
            continue
        if actor.type == "anonymous" and actor.auth.error is not None:
            failed = failed or actor
            continue
        return actor
    return failed or ANONYMOUS
