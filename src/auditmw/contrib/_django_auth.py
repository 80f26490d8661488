"""Login, logout and failed-login events from Django's authentication signals.

Trust: a failed login's ``credentials`` are never recorded.  Only the attempted
username is read, and it is recorded as a keyed pseudonym (HMAC-SHA256 with
``AUDITMW["pseudonym_key"]``, or a key derived from ``SECRET_KEY``) unless
``AUDITMW["record_usernames"]`` is true.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.contrib.auth import signals

from auditmw.contrib._django_state import current_state, new_request_exchange
from auditmw.event import Actor, AuthInfo, Headers
from auditmw.identity.base import FrameworkUserResolver

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.http import HttpRequest

    from auditmw.contrib._django_state import _State

__all__ = ["connect_signals"]

_USER_RESOLVER = FrameworkUserResolver()


def connect_signals() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    signals.user_logged_in.connect(_on_logged_in, dispatch_uid="auditmw.login")
    signals.user_logged_out.connect(_on_logged_out, dispatch_uid="auditmw.logout")
    signals.user_login_failed.connect(_on_login_failed, dispatch_uid="auditmw.login_failed")


def _on_logged_in(sender: object, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    _auth_event(request, "login", user=user)


def _on_logged_out(sender: object, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    _auth_event(request, "logout", user=user)


def _on_login_failed(
    sender: object, credentials: Mapping[str, Any], request: HttpRequest | None = None, **kw: Any
) -> None:
    _auth_event(request, "login", credentials=credentials)


def _auth_event(
    request: HttpRequest | None,
    operation: str,
    *,
    user: Any = None,
    credentials: Mapping[str, Any] | None = None,
) -> None:
    state = current_state()
    if state is None:
        return
    auditor = state.auditor
    if request is not None:
        exchange = new_request_exchange(auditor, request)
    else:  # authenticate() called outside a request (a management command, a test)
        exchange = auditor.new_exchange("auth", "", "", Headers(mapping={}))
    exchange.end_ns, exchange.end_mono = time.time_ns(), time.perf_counter_ns()
    if credentials is None:
        exchange.user = user
        actor = _USER_RESOLVER.resolve(exchange) or Actor()
        event = auditor.pipeline.auth_event(exchange, operation, actor)
    else:
        actor = _failed_actor(state, credentials)
        event = auditor.pipeline.auth_event(
            exchange, operation, actor, outcome="denied", reason="authn_failed"
        )
    if event is not None:
        auditor.start()
        auditor.submit(event)


def _failed_actor(state: _State, credentials: Mapping[str, Any]) -> Actor:
    from django.contrib.auth import get_user_model

    field = str(getattr(get_user_model(), "USERNAME_FIELD", "username"))
    # Only the username is ever read from the credentials: never the password.
    value = credentials.get(field, credentials.get("username"))
    auth = AuthInfo(method="session", verified=False, error="invalid_credentials")
    if value is None or value == "":
        return Actor(auth=auth)
    username = str(value)
    claimed = username[:150] if state.record_usernames else state.pseudonym(username)
    return Actor(auth=auth, extra=(("claimed_id", claimed),))
