"""ASGI entry point.

Run: ``uvicorn orders_project.asgi:application --app-dir examples/django_project``.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")
application = get_asgi_application()
