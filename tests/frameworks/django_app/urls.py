"""URLs of the test project (no trailing slashes, to match the FastAPI and Flask apps)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path, re_path

from tests.frameworks.django_app import views

urlpatterns = [
    path("orders/<int:order_id>", views.order, name="order-detail"),
    path("keys/<str:key_id>", views.delete_key, name="key-delete"),
    path("forbidden", views.forbidden),
    path("boom", views.boom),
    path("stream", views.stream),
    path("endless", views.endless),
    path("download", views.download),
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("whoami", views.whoami),
    path("drf/whoami", views.DRFWhoAmI.as_view()),
    path("admin/", admin.site.urls),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", views.archive, name="archive"),
]
