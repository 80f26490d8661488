"""Django integration: ``AuditMiddleware`` and login/logout/failed-login events.

Add ``"auditmw.contrib.django.AuditMiddleware"`` to ``MIDDLEWARE`` (first, so it
sees every response, including those of other middleware) and configure it with
``settings.AUDITMW`` (see :class:`AuditSettings`).  The middleware is sync and
async capable, like Django's ``MiddlewareMixin``.

After the view ran it reads the route (``resolver_match.route`` in ``{param}``
form with a leading slash), the URL kwargs, the URL name (annotation
``route_name``), the exception Django turned into a 5xx (via
``process_exception``), and ``request.user`` — including a user set by Django
REST Framework's authentication inside the view.  Streaming responses are
recorded when their stream ends (``aborted`` when it is closed early).

Trust: ``request.user`` is trusted as much as the application trusts it
(``auth.method = "session"``).  A failed login's credentials are never read
except the attempted username, which is recorded as a keyed pseudonym
(HMAC-SHA256) unless ``AUDITMW["record_usernames"]`` is true.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from django.utils.functional import SimpleLazyObject, empty

from auditmw.contrib._django_auth import connect_signals
from auditmw.contrib._django_checks import AuditChecksConfig  # noqa: F401 (registers the check)
from auditmw.contrib._django_state import current_state, new_request_exchange
from auditmw.contrib._django_stream import StreamTracker
from auditmw.core.context import _current
from auditmw.core.event import Exchange
from auditmw.exceptions import ConfigurationError
from auditmw.http.environ import CountingInput, body_recorder
from auditmw.http.wsgi import ENVIRON_KEY
from auditmw.pipeline.body import raw_headers

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

    from auditmw.auditor import Auditor
    from auditmw.config.options import AuditConfig
    from auditmw.core.event import Actor
    from auditmw.delivery.durable import DurableWaiter
    from auditmw.pipeline.body import BodyRecorder

_T = TypeVar("_T")

__all__ = [
    "BODIES_KEY",
    "EXCEPTION_KEY",
    "AuditMiddleware",
    "AuditSettings",
    "django_route",
    "get_auditor",
]

#: The ``request.META`` key holding the exception passed to ``process_exception``.
EXCEPTION_KEY = "auditmw.exception"
#: The ``request.META`` key holding the request's body recorder (``None`` when off).
BODIES_KEY = "auditmw.bodies"
_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_GROUP = re.compile(r"\(\?P<([^>]+)>(?:[^()]|\([^()]*\))*\)")
_ANCHORS = re.compile(r"\^|\$|\\A|\\Z")


class AuditSettings(TypedDict, total=False):
    """The ``settings.AUDITMW`` mapping.

    Every :class:`~auditmw.config.AuditConfig` keyword is accepted (``service`` is
    required unless ``config`` is given; ``delivery`` and ``limits`` may be dicts),
    plus:

    * ``enabled`` (default ``True``): ``False`` removes the middleware
      (``MiddlewareNotUsed``);
    * ``config``: a ready :class:`~auditmw.config.AuditConfig` instead of keywords;
    * ``pseudonym_key`` (default: derived from ``SECRET_KEY``): the HMAC key for the
      pseudonyms of attempted usernames;
    * ``record_usernames`` (default ``False``): record failed logins' usernames as-is.

    .. versionadded:: 0.1.0
    """

    enabled: bool
    config: AuditConfig
    pseudonym_key: str | bytes
    record_usernames: bool
    service: str
    sinks: Sequence[Any]
    policy: Any
    resolvers: Sequence[Any]
    identity: Callable[[Any], Actor | None]
    use_framework_user: bool
    trusted_proxies: Sequence[str]
    audit_id_header: str | None
    request_id_header: str
    record_headers: Sequence[str]
    processors: Sequence[Any]
    delivery: Any
    integrity: Any
    limits: Any


@functools.lru_cache(maxsize=1024)  # routes are a finite set; cache the conversion
def django_route(route: str) -> str:
    """Convert a Django route to the common form: ``orders/<int:pk>/`` → ``/orders/{pk}/``.

    Regular-expression routes (``re_path``) are converted on a best-effort basis:
    anchors are dropped and named groups become ``{name}``.

    .. versionadded:: 0.1.0
    """
    route = _PARAM.sub(r"{\1}", _GROUP.sub(r"{\1}", _ANCHORS.sub("", route)))
    return "/" + route.lstrip("/")


def get_auditor() -> Auditor:
    """Return the :class:`~auditmw.auditor.Auditor` built from ``settings.AUDITMW``.

    Raises:
        ConfigurationError: auditing is disabled or not configured.

    .. versionadded:: 0.1.0
    """
    state = current_state()
    if state is None:
        raise ConfigurationError("auditing is disabled (AUDITMW['enabled'] is False)")
    return state.auditor


class AuditMiddleware:
    """Record one audit event per request of a Django project.

    Args:
        get_response: the next handler in Django's middleware chain.

    Raises:
        MiddlewareNotUsed: ``AUDITMW["enabled"]`` is ``False``.
        ConfigurationError: ``settings.AUDITMW`` is missing or invalid.

    .. versionadded:: 0.1.0
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        state = current_state()
        if state is None:
            raise MiddlewareNotUsed("auditmw is disabled by AUDITMW['enabled'] = False")
        self.get_response = get_response
        self.auditor = state.auditor
        self._header = state.auditor.config.audit_id_header
        self._read_user = state.auditor.config.use_framework_user
        self._timeout = state.auditor.config.delivery.durable_timeout
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        connect_signals()

    # Every hook is guarded: an audit failure is recorded as audit.internal_error and
    # the request goes on as if auditmw were not installed.

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        exchange = self._guard("begin", self._begin, request)
        if exchange is None:
            return self.get_response(request)
        token = _current.set(exchange.context)
        try:
            response: HttpResponseBase = self.get_response(request)
        except BaseException as exc:
            self._guard("fail", self._fail, exchange, exc)
            raise
        finally:
            _current.reset(token)
        user = self._guard("user", _user, request) if self._read_user else None
        waiter = self._guard("complete", self._complete, request, response, exchange, user)
        if waiter is not None and not waiter.wait(self._timeout):
            return _unavailable()  # durable mode: never answer what was not stored
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        exchange = self._guard("begin", self._begin, request)
        if exchange is None:
            return await self.get_response(request)  # type: ignore[no-any-return]
        token = _current.set(exchange.context)
        try:
            response: HttpResponseBase = await self.get_response(request)
        except BaseException as exc:
            self._guard("fail", self._fail, exchange, exc)
            raise
        finally:
            _current.reset(token)
        try:
            user = await _auser(request) if self._read_user else None
        except Exception as exc:
            self.auditor.internal_error("django.user", exc, exchange)
            user = None
        waiter = self._guard("complete", self._complete, request, response, exchange, user)
        if waiter is not None and not await waiter.await_async(self._timeout):
            return _unavailable()  # durable mode: never answer what was not stored
        return response

    def _guard(self, stage: str, step: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return step(*args)
        except Exception as exc:
            exchange = next((a for a in args if isinstance(a, Exchange)), None)
            self.auditor.internal_error(f"django.{stage}", exc, exchange)
            return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Remember a view's exception; it is recorded if Django answers with a 5xx."""
        request.META[EXCEPTION_KEY] = exception

    def process_view(
        self, request: HttpRequest, view: object, args: object, kwargs: object
    ) -> None:
        """Note the route as soon as it is resolved (body capture rules may select it)."""
        self._guard("view", self._note_route, request)

    @staticmethod
    def _note_route(request: HttpRequest) -> None:
        exchange: Exchange | None = request.META.get(ENVIRON_KEY)
        match = request.resolver_match
        if exchange is not None and match is not None:
            exchange.route = django_route(match.route)
            exchange.path_params = dict(match.kwargs)

    def _begin(self, request: HttpRequest) -> Exchange:
        exchange = new_request_exchange(self.auditor, request)
        span = self.auditor.pipeline.span_reader  # OpenTelemetry's middleware runs first
        if span is not None:
            exchange.trace = span()
        bodies = body_recorder(self.auditor, exchange)
        stream = getattr(request, "_stream", None)
        if stream is not None:  # count the body bytes the view reads, as the other shells do
            request._stream = CountingInput(stream, exchange, bodies)  # type: ignore[assignment]
        request.META[ENVIRON_KEY] = exchange
        request.META[BODIES_KEY] = bodies
        return exchange

    def _fail(self, exchange: Exchange, exc: BaseException) -> None:
        # An exception escaping Django's own handling (rare: it converts most to 500s).
        bodies = exchange.request_object.META.pop(BODIES_KEY, None)
        StreamTracker(self.auditor, exchange, bodies).fail(exc)

    def _complete(
        self, request: HttpRequest, response: HttpResponseBase, exchange: Exchange, user: Any
    ) -> DurableWaiter | None:
        match = getattr(request, "resolver_match", None)
        if match is not None:
            exchange.route = django_route(match.route)
            exchange.path_params = dict(match.kwargs)
            if match.view_name and exchange.context is not None:
                exchange.context.annotations.setdefault("route_name", match.view_name)
        exchange.status = response.status_code
        exception = request.META.pop(EXCEPTION_KEY, None)
        # A client that left mid-upload (seen by CountingInput) is "aborted", not an error.
        if exception is not None and response.status_code >= 500 and not exchange.aborted:
            exchange.exception = exception
        exchange.user = user
        if self._header is not None and not response.has_header(self._header):
            response[self._header] = exchange.event_id
        bodies: BodyRecorder | None = request.META.pop(BODIES_KEY, None)
        if bodies is not None:
            bodies.response_start(raw_headers(response.items()))
        tracker = StreamTracker(self.auditor, exchange, bodies)
        if response.streaming:  # in durable mode the stream holds its last chunk
            tracker.watch(cast("StreamingHttpResponse", response))
            return None
        return tracker.complete(response.content)  # type: ignore[attr-defined]


def _unavailable() -> HttpResponse:
    """The answer to a request whose event could not be stored in durable mode (fail closed)."""
    from django.http import HttpResponse

    response = HttpResponse(
        "audit storage unavailable\n", status=503, content_type="text/plain; charset=utf-8"
    )
    response["Retry-After"] = "1"
    return response


def _user(request: HttpRequest) -> Any:
    # Evaluate a lazy user now, on this thread: the event may be finished later, from
    # an event loop, where the database must not be touched.
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        try:
            user.is_authenticated  # noqa: B018 - evaluates the lazy object
        except Exception:
            return None  # the session or user could not be loaded: record no user
        return user._wrapped
    return user


async def _auser(request: HttpRequest) -> Any:
    # A lazy user not evaluated yet would hit the database from the event loop.
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        wrapped = user._wrapped
        if wrapped is not empty:
            return wrapped
        auser = getattr(request, "auser", None)
        return await auser() if auser is not None else None
    return user
