"""URLs of the example project; ``/admin/`` shows the audit trail (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from orders_project import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health),
    path("orders/<int:order_id>", views.order, name="order-detail"),
    path("orders/<int:order_id>/fail", views.fail, name="order-fail"),
    path("stream", views.stream),
    path("login", views.login),
]
