"""Settings of the example project: the ``AUDITMW`` block is what auditmw reads.

The audit trail goes to a JSONL file and, through the ``auditmw.contrib.django_app``
app, to the project's own database, where the Django admin shows it (``/admin/``).

Environment: ``AUDITMW_DJANGO_LOG`` (JSONL audit file, default ``audit-django.jsonl``),
``DJANGO_DB`` (SQLite file, default ``db.sqlite3``), ``DJANGO_SECRET_KEY``,
``AUDITMW_SIGNING_KEY_FILE`` (an Ed25519 key from ``auditmw keygen``: signed
checkpoints, which the admin and ``manage.py auditmw_verify`` check with its ``.pub``).
"""

from __future__ import annotations

import os

from auditmw.contrib.django_app.sink import DjangoSink
from auditmw.integrity import IntegrityOptions
from auditmw.sinks import FileSink

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-change-me")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "orders_project.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "auditmw.contrib.django_app",  # the audit trail in the database, its admin, auditmw_verify
]
MIDDLEWARE = [
    "auditmw.contrib.django.AuditMiddleware",  # first: it sees every response
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", "db.sqlite3"),
        # Several workers append to one SQLite file: wait for the write lock.
        "OPTIONS": {"timeout": 20},
    }
}

_signing_key = os.environ.get("AUDITMW_SIGNING_KEY_FILE")
AUDITMW = {
    "service": "orders-api",
    "sinks": [FileSink(os.environ.get("AUDITMW_DJANGO_LOG", "audit-django.jsonl")), DjangoSink()],
    "integrity": IntegrityOptions(signing_key_file=_signing_key, checkpoint_every=100),
    "trusted_proxies": [],
    "delivery": {"max_wait_ms": 20},
    # Failed logins record the attempted username as an HMAC pseudonym keyed with this.
    "pseudonym_key": os.environ.get("AUDITMW_PSEUDONYM_KEY", "example-only-change-me"),
}
# The keys the admin and ``manage.py auditmw_verify`` check checkpoints with.
AUDITMW_LOG = {"keys": _signing_key.removesuffix(".key") + ".pub"} if _signing_key else {}
