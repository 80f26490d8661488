"""Translate framework settings mappings (Flask ``app.config``, Django ``settings``) into config.

The translation itself lives in :mod:`auditmw.config.mapping`, shared with
:meth:`auditmw.config.AuditConfig.from_mapping`, so that every source accepts the
same document with the same errors.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditmw.config import mapping
from auditmw.config.options import AuditConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["config_from_mapping"]


def config_from_mapping(options: Mapping[str, Any], **kwargs: Any) -> AuditConfig:
    """Build an :class:`~auditmw.config.AuditConfig` from a framework's settings mapping.

    ``kwargs`` are those of :func:`auditmw.config.mapping.config_from_mapping`
    (``setting``, ``default_service``, ``environ`` and ``AuditConfig`` overrides).
    """
    return mapping.config_from_mapping(options, make=AuditConfig, **kwargs)
