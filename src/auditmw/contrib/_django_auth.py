"""Login, logout and failed-login events from Django's authentication signals.

Trust: a failed login's ``credentials`` are never recorded.  Only the attempted
username is read, and it is recorded as a keyed pseudonym (HMAC-SHA256 with
``AUDITMW["pseudonym_key"]``, or a key derived from ``SECRET_KEY``) unless
``AUDITMW["record_usernames"]`` is true.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth import signals

from auditmw.contrib._django_state import current_state, new_request_exchange
from auditmw.core.event import Actor, AuthInfo, Headers
from auditmw.identity.base import FrameworkUserResolver

if TYPE_CHECKING:
    from auditmw.contrib._django_state import _State

__all__ = ["connect_signals"]

logger = logging.getLogger("auditmw")
_USER_RESOLVER = FrameworkUserResolver()


def connect_signals() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    signals.user_logged_in.connect(_on_logged_in, dispatch_uid="auditmw.login")
    signals.user_logged_out.connect(_on_logged_out, dispatch_uid="auditmw.logout")
    signals.user_login_failed.connect(_on_login_failed, dispatch_uid="auditmw.login_failed")


# Receivers take everything by keyword with defaults: whoever sends the signal (Django,
# DRF, a test, a third-party backend), a missing argument must not break the login.


def _on_logged_in(sender: object, request: Any = None, user: Any = None, **kw: Any) -> None:
    _auth_event(request, "login", user=user)


def _on_logged_out(sender: object, request: Any = None, user: Any = None, **kw: Any) -> None:
    _auth_event(request, "logout", user=user)


def _on_login_failed(
    sender: object, credentials: object = None, request: Any = None, **kw: Any
) -> None:
    failed = credentials if isinstance(credentials, Mapping) else {}
    _auth_event(request, "login", credentials=failed)


def _auth_event(
    request: object,
    operation: str,
    *,
    user: Any = None,
    credentials: object = None,
) -> None:
    """Record one login/logout; never raises (these run inside the app's own login)."""
    try:
        state = current_state()
    except Exception as exc:  # a bad settings.AUDITMW: the middleware reports it, not login
        logger.error("auditmw cannot record a %s: %s", operation, type(exc).__name__)
        return
    if state is None:
        return
    try:
        _record_auth(state, request, operation, user, credentials)
    except Exception as exc:
        state.auditor.internal_error(f"django.{operation}", exc)


def _record_auth(
    state: _State, request: Any, operation: str, user: Any, credentials: object
) -> None:
    auditor = state.auditor
    if request is not None and hasattr(request, "META"):
        exchange = new_request_exchange(auditor, request)
    else:  # authenticate() called outside a request (a management command, a test)
        exchange = auditor.new_exchange("auth", "", "", Headers(mapping={}))
    exchange.end_ns, exchange.end_mono = time.time_ns(), time.perf_counter_ns()
    if credentials is None:
        exchange.user = user
        actor = _USER_RESOLVER.resolve(exchange) or Actor()
        event = auditor.pipeline.auth_event(exchange, operation, actor)
    else:
        actor = _failed_actor(state, cast("Mapping[str, Any]", credentials))
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
