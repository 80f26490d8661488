"""Views of the example project."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.contrib.auth import aauthenticate, alogin
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from auditmw import annotate


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


async def order(request: HttpRequest, order_id: int) -> JsonResponse:
    annotate(ticket="T-1")
    return JsonResponse({"id": order_id})


async def fail(request: HttpRequest, order_id: int) -> HttpResponse:
    raise RuntimeError("the order service failed")


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(5):
            await asyncio.sleep(0)
            yield f"line {i}\n".encode()

    return StreamingHttpResponse(lines(), content_type="text/plain")


# An API login for non-browser clients (no CSRF cookie to send); browser forms
# should use django.contrib.auth.views.LoginView instead.
@csrf_exempt
async def login(request: HttpRequest) -> HttpResponse:
    user = await aauthenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse(b"invalid credentials", status=401)
    await alogin(request, user)
    return HttpResponse(b"welcome")
