"""Translate framework settings mappings (Flask ``app.config``, Django ``settings``) into config.

The translation itself lives in :mod:`auditmw.config.mapping`, shared with
:meth:`auditmw.config.AuditConfig.from_mapping`, so that every source accepts the
same document with the same errors.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.config.mapping import config_from_mapping

__all__ = ["config_from_mapping"]
