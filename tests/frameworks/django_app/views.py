"""Views of the test project; the same scenarios exist for FastAPI and Flask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from auditmw import annotate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from rest_framework.request import Request

CHUNKS = [b"chunk-0", b"chunk-1", b"chunk-2"]


def order(request: HttpRequest, order_id: int) -> HttpResponse:
    if request.method == "PUT":
        request.body  # noqa: B018 - read the body, as the other frameworks' views do
        return HttpResponse(b"updated", content_type="text/plain; charset=utf-8")
    annotate(ticket="T-1")
    return HttpResponse(f"order {order_id}".encode(), content_type="text/plain; charset=utf-8")


def delete_key(request: HttpRequest, key_id: str) -> HttpResponse:
    return HttpResponse(status=204)


def forbidden(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"forbidden", status=403, content_type="text/plain; charset=utf-8")


def boom(request: HttpRequest) -> HttpResponse:
    raise ValueError("secret detail")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    if hasattr(request, "scope"):  # served by ASGI: an async iterator avoids a sync bridge

        async def agen() -> AsyncIterator[bytes]:
            for chunk in CHUNKS:
                yield chunk

        return StreamingHttpResponse(agen(), content_type="text/plain; charset=utf-8")

    def gen() -> Iterator[bytes]:
        yield from CHUNKS

    return StreamingHttpResponse(gen(), content_type="text/plain; charset=utf-8")


def endless(request: HttpRequest) -> StreamingHttpResponse:
    def gen() -> Iterator[bytes]:
        while True:
            yield b"tick"

    return StreamingHttpResponse(gen(), content_type="text/plain; charset=utf-8")


def download(request: HttpRequest) -> FileResponse:
    return FileResponse(open(request.GET["path"], "rb"))


def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse(b"no", status=401)
    login(request, user)
    return HttpResponse(b"ok")


def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse(b"bye")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.user.pk).encode())


class HeaderAuthentication(BaseAuthentication):
    """DRF authentication from ``X-DRF-User: <username>`` (tests only)."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        name = request.META.get("HTTP_X_DRF_USER")
        if not name:
            return None
        return User.objects.get(username=name), None


class DRFWhoAmI(APIView):
    authentication_classes = (HeaderAuthentication,)

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.pk if request.user else None})


def archive(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year.encode())


def sync_only_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Any:
    """A function middleware: sync only, so Django runs the middleware above it in sync mode."""

    def middleware(request: HttpRequest) -> HttpResponse:
        return get_response(request)

    return middleware
