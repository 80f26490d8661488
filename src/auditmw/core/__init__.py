"""The core: the event model and its canonical form, and the policy that decides.

Everything here is framework-free, does no I/O on the request path and is shared by
every other package: the canonical event (:mod:`.event`, :mod:`.types`,
:mod:`.protocols`), canonical JSON (:mod:`.canonical`), the request-scoped context
(:mod:`.context`), the policy and its rules (:mod:`.policy`, :mod:`.rules`,
:mod:`.policy_schema`, :mod:`.documents`), redaction (:mod:`.processors`), the
records handed to storage (:mod:`.records`) and small process-wide helpers.

May import: :mod:`auditmw.exceptions` and the standard library (plus orjson, and
jsonschema-free validation of its own).  Nothing else of auditmw imports *into* it
from above; ``lint-imports`` enforces this (``pyproject.toml``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations
