"""Settings of the example project: the ``AUDITMW`` block is what auditmw reads.

Environment: ``AUDITMW_DJANGO_LOG`` (JSONL audit file, default ``audit-django.jsonl``),
``DJANGO_DB`` (SQLite file, default ``db.sqlite3``), ``DJANGO_SECRET_KEY``.
"""

from __future__ import annotations

import os

from auditmw.sinks import FileSink

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-change-me")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "orders_project.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "auditmw.contrib.django.AuditMiddleware",  # first: it sees every response
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", "db.sqlite3"),
    }
}

AUDITMW = {
    "service": "orders-api",
    "sinks": [FileSink(os.environ.get("AUDITMW_DJANGO_LOG", "audit-django.jsonl"))],
    "trusted_proxies": [],
    "delivery": {"max_wait_ms": 20},
    # Failed logins record the attempted username as an HMAC pseudonym keyed with this.
    "pseudonym_key": os.environ.get("AUDITMW_PSEUDONYM_KEY", "example-only-change-me"),
}
