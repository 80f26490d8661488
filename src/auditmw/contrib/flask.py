"""Flask integration: the ``Audit`` extension.

``Audit(app)`` (or ``Audit()`` then ``init_app(app)``) wraps ``app.wsgi_app`` in
:class:`~auditmw.wsgi.AuditWSGIMiddleware`, notes the route as soon as the URL is
matched (``url_value_preprocessor``, only when the policy may capture bodies, whose
route rules must be known before the view reads the body), and adds one
``teardown_request`` hook
that, after the view ran, puts on the in-flight exchange what only Flask knows:
the route template (``request.url_rule.rule`` in ``{param}`` form), the view
arguments, the Flask request (for identity hooks), the Flask-Login user when
Flask-Login is in use, and an unhandled exception that Flask turned into a 500.

Trust: the Flask-Login user is trusted as much as the application trusts it
(see :mod:`auditmw.identity.base`); set ``use_framework_user=False`` otherwise.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from auditmw.auditor import Auditor
from auditmw.config.options import AuditConfig
from auditmw.contrib._settings import config_from_mapping
from auditmw.exceptions import ConfigurationError
from auditmw.http.wsgi import ENVIRON_KEY, AuditWSGIMiddleware

if TYPE_CHECKING:
    from flask import Flask

    from auditmw.core.event import Exchange

__all__ = ["EXTENSION_KEY", "Audit", "flask_route"]

#: The key of the extension's state in ``app.extensions``.
EXTENSION_KEY = "auditmw"

_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@functools.lru_cache(maxsize=1024)  # routes are a finite set; cache the conversion
def flask_route(rule: str) -> str:
    """Convert a Flask rule to the common template form: ``/o/<int:oid>`` → ``/o/{oid}``.

    .. versionadded:: 0.1.0
    """
    return _PARAM.sub(r"{\1}", rule)


class Audit:
    """The auditmw Flask extension.

    Settings come from ``config`` or else ``app.config["AUDITMW"]``: an
    :class:`~auditmw.config.AuditConfig` or a dict of its keyword arguments
    (``service`` defaults to ``app.name``).

    Args:
        app: the application (or call :meth:`init_app` later).
        config: the audit configuration, overriding ``app.config["AUDITMW"]``.

    Raises:
        ConfigurationError: ``AUDITMW`` is neither an ``AuditConfig`` nor a mapping,
            or holds an invalid value.

    .. versionadded:: 0.1.0
    """

    def __init__(self, app: Flask | None = None, config: AuditConfig | None = None) -> None:
        self.config = config
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Audit ``app``: wrap its WSGI app and register the teardown hook.

        Raises:
            ConfigurationError: the settings are invalid or ``app`` is already audited.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(
                f"Flask app {app.name!r} is already audited; call init_app once per app",
                setting="AUDITMW",
            )
        auditor = Auditor(self.config or _config_from_app(app))
        app.extensions[EXTENSION_KEY] = auditor
        app.wsgi_app = AuditWSGIMiddleware(app.wsgi_app, auditor=auditor)  # type: ignore[method-assign]
        if auditor.pipeline.policy.captures_bodies:
            # Only body capture needs the route before the view runs; without it the
            # teardown hook alone records the route (one Flask hook fewer per request).
            app.url_value_preprocessor(_note_route)
        app.teardown_request(_finish_request)

    @staticmethod
    def auditor(app: Flask) -> Auditor:
        """Return the :class:`~auditmw.auditor.Auditor` of ``app`` (to flush or close it).

        Raises:
            ConfigurationError: ``app`` is not audited.
        """
        try:
            auditor: Auditor = app.extensions[EXTENSION_KEY]
        except KeyError:
            raise ConfigurationError(
                f"Flask app {app.name!r} is not audited; call Audit(app) first", setting="app"
            ) from None
        return auditor


def _config_from_app(app: Flask) -> AuditConfig:
    value = app.config.get("AUDITMW")
    if isinstance(value, AuditConfig):
        return value
    if value is not None and not isinstance(value, Mapping):
        raise ConfigurationError(
            f"app.config['AUDITMW'] must be an AuditConfig or a dict, got {type(value).__name__}",
            setting="AUDITMW",
        )
    return config_from_mapping(value or {}, setting="AUDITMW", default_service=app.name)


def _note_route(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs right after URL matching, before before_request hooks and the view: body
    # capture rules that select routes see the route when the view reads the body.
    req = request._get_current_object()  # type: ignore[attr-defined]
    exchange: Exchange | None = req.environ.get(ENVIRON_KEY)
    rule = req.url_rule
    if exchange is not None and rule is not None:
        exchange.route = flask_route(rule.rule)
        exchange.path_params = dict(values or {})


def _finish_request(exc: BaseException | None) -> None:
    req = request._get_current_object()  # type: ignore[attr-defined]
    exchange: Exchange | None = req.environ.get(ENVIRON_KEY)
    if exchange is None:
        return
    rule = req.url_rule
    if rule is not None:
        exchange.route = flask_route(rule.rule)
        exchange.path_params = dict(req.view_args or {})
    exchange.request_object = req
    if isinstance(exc, Exception) and not exchange.aborted:
        # Flask turned it into a 500 response: only this hook still sees the exception
        # (unless the client had left, which the shell noted as "aborted").
        exchange.exception = exc
    auditor: Auditor = current_app.extensions[EXTENSION_KEY]
    if auditor.config.use_framework_user:
        exchange.user = _login_user()


def _login_user() -> Any:
    # Flask-Login is optional: only look at it when the application imported it.
    flask_login = sys.modules.get("flask_login")
    if flask_login is None:
        return None
    try:
        return flask_login.current_user._get_current_object()
    except Exception:
        return None  # no login manager on this app, or the user loader failed
