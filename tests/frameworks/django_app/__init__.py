"""A tiny Django project for the framework tests (SQLite by default, PostgreSQL on request).

``AUDITMW_TEST_DB=postgres`` selects the PostgreSQL server on 127.0.0.1:5432
(database ``test``, schema ``auditmw_django_tests``); otherwise an SQLite file in
``AUDITMW_TEST_SQLITE`` (or a fresh temporary directory) is used.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_ready = False
DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def setup() -> None:
    """Configure Django for this process once and create the tables."""
    global _ready
    if _ready:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.frameworks.django_app.settings")
    if not os.environ.get("AUDITMW_TEST_SQLITE"):
        directory = tempfile.mkdtemp(prefix="auditmw-django-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["AUDITMW_TEST_SQLITE"] = directory
    if os.environ.get("AUDITMW_TEST_DB") == "postgres":
        _fresh_schema()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    _ready = True


def _fresh_schema() -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as c:
        c.execute("DROP SCHEMA IF EXISTS auditmw_django_tests CASCADE")
        c.execute("CREATE SCHEMA auditmw_django_tests")
