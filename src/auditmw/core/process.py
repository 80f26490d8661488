"""The current process id, kept up to date across ``fork`` without a system call per use.

``os.getpid()`` is a real system call; the request path asks "am I still the process
that started the delivery thread?" on every request, so it reads this module's
``pid`` instead, which an ``os.register_at_fork`` hook refreshes in each child.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os

__all__ = ["pid"]

#: The id of the running process (refreshed in a forked child).
pid: int = os.getpid()


def _after_fork() -> None:
    global pid
    pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)
