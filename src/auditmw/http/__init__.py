"""The shells: ASGI and WSGI middleware that observe a request without changing it.

:mod:`.asgi` wraps ``send``/``receive`` (pure ASGI, never ``BaseHTTPMiddleware``),
:mod:`.wsgi` wraps ``start_response`` and the response iterable, :mod:`.environ`
holds the WSGI environ helpers shared with the Django adapter.  A shell builds an
:class:`~auditmw.core.event.Exchange`, hands it to the :class:`~auditmw.auditor.Auditor`
and re-raises the application's exceptions unchanged.

May import: the auditor and everything below it.  Imported by :mod:`auditmw.contrib`.

.. versionadded:: 0.2.0
"""

from __future__ import annotations
