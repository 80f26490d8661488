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
import uuid
from typing import TYPE_CHECKING, Any

from auditmw.core.event import ANONYMOUS, Actor, AuthInfo
from auditmw.identity._claims import clean_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from auditmw.core.event import Exchange
    from auditmw.core.protocols import IdentityHook, Resolver

__all__ = ["FrameworkUserResolver", "HookResolver", "resolve_actor"]

logger = logging.getLogger("auditmw.identity")

#: Methods called to read an id or name; other callables on the user object are never called.
_ID_GETTERS = ("get_id",)
_ID_ATTRIBUTES = ("identity", "pk", "id", "user_id", "username")
_NAME_GETTERS = ("get_username",)
_NAME_ATTRIBUTES = ("display_name", "username", "name")
_SESSION_AUTH = AuthInfo(method="session", verified=True)


def _scalar(value: object) -> str | None:
    # Only plain scalars: str() of an arbitrary object may be slow, raise or leak data.
    if isinstance(value, uuid.UUID):
        value = str(value)
    return clean_text(value)


def _attribute(obj: Any, getters: Sequence[str], names: Sequence[str]) -> str | None:
    for name in (*getters, *names):
        try:
            value = getattr(obj, name, None)
            if name in getters:
                value = value() if callable(value) else None
        except Exception:  # noqa: S112 - user objects may raise anything; try the next name
            continue
        text = _scalar(value)
        if text is not None:
            return text
    return None


def _is_authenticated(user: Any) -> bool:
    try:
        flag = getattr(user, "is_authenticated", False)
        flag = flag() if callable(flag) else flag
    except Exception:
        return False
    # Only a real ``True`` counts: a truthy stand-in (a string, a mock) is not a login.
    return flag is True


class FrameworkUserResolver:
    """Reads the framework's authenticated user object (``exchange.user``).

    Works with Starlette ``BaseUser``, Django ``User`` and Flask-Login users: anything
    whose ``is_authenticated`` is ``True`` and that has an id (``get_id()``,
    ``identity``, ``pk``, ``id``, ``user_id`` or ``username``).  Unauthenticated users
    yield ``None``.  Only ``get_id()`` and ``get_username()`` are ever called; values
    must be strings, integers or UUIDs, and are cleaned and capped.

    .. versionadded:: 0.1.0
    """

    def resolve(self, exchange: Exchange) -> Actor | None:
        """Return a ``session`` actor for an authenticated framework user."""
        user = exchange.user
        if user is None or not _is_authenticated(user):
            return None
        user_id = _attribute(user, _ID_GETTERS, _ID_ATTRIBUTES)
        name = _attribute(user, _NAME_GETTERS, _NAME_ATTRIBUTES)
        email = _attribute(user, (), ("email",))
        return Actor(
            id=user_id or name or "unknown",
            type="user",
            name=name,
            email=email,
            auth=_SESSION_AUTH,
        )

    def __repr__(self) -> str:
        return "FrameworkUserResolver()"


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
        """Call the hook with the request object; errors and non-actors become ``None``."""
        try:
            actor: object = self._hook(exchange.request_object)
        except Exception as exc:
            # Type only: the message may quote request data or credentials.
            logger.warning("auditmw identity hook raised %s; ignored", type(exc).__name__)
            return None
        if actor is not None and not isinstance(actor, Actor):
            kind = type(actor).__name__
            logger.warning("auditmw identity hook returned %s, not an Actor; ignored", kind)
            return None
        return actor

    def __repr__(self) -> str:
        name = getattr(self._hook, "__qualname__", type(self._hook).__name__)
        return f"HookResolver({name})"


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
