"""Framework adapters: Flask (:mod:`.flask`) and Django (:mod:`.django`, :mod:`.django_app`).

Each adapter wraps the WSGI/ASGI shell of :mod:`auditmw.http`, reads its settings
through :mod:`auditmw.config.mapping` and adds what only the framework knows (the
logged-in user, login signals, streaming responses, system checks).

May import: everything but the public faces; imported by nothing in auditmw.
"""
