"""Identity resolvers: who made a request.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.identity.base import FrameworkUserResolver, HookResolver, resolve_actor

__all__ = ["FrameworkUserResolver", "HookResolver", "resolve_actor"]
