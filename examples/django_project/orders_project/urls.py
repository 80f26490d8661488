"""URLs of the example project."""

from __future__ import annotations

from django.urls import path

from orders_project import views

urlpatterns = [
    path("health", views.health),
    path("orders/<int:order_id>", views.order, name="order-detail"),
    path("orders/<int:order_id>/fail", views.fail, name="order-fail"),
    path("stream", views.stream),
    path("login", views.login),
]
