"""Delivery's threads are supervised: one that dies is recorded and restarted.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditmw.core.types import Event

__all__ = ["Supervisor"]

logger = logging.getLogger("auditmw.delivery")


class Supervisor:
    """Starts daemon threads and restarts any that dies, recording ``audit.delivery_restarted``.

    Args:
        notify: queues a lifecycle record (written on the delivery thread's next pass).
        lifecycle: builds lifecycle events (``kind, details, severity=``).
        backoff_max: the longest pause, in seconds, before a restart.
    """

    def __init__(
        self,
        notify: Callable[[Event], None],
        lifecycle: Callable[..., Event],
        backoff_max: float,
    ) -> None:
        self._notify = notify
        self._lifecycle = lifecycle
        self._backoff_max = backoff_max
        self._pid = os.getpid()
        self.restarts = 0

    def start(
        self, name: str, body: Callable[[], None], keep: Callable[[threading.Thread], None]
    ) -> None:
        """Run ``body`` on a new daemon thread named ``name``; ``keep`` receives each thread."""
        thread = threading.Thread(
            target=self._supervised, args=(name, body, keep), name=name, daemon=True
        )
        keep(thread)
        thread.start()

    def _supervised(
        self, name: str, body: Callable[[], None], keep: Callable[[threading.Thread], None]
    ) -> None:
        try:
            body()
        except BaseException as exc:
            if self._pid != os.getpid():
                return
            logger.error("auditmw thread %s died: %s; restarting it", name, type(exc).__name__)
            self.restarts += 1
            details = {"thread": name, "error": type(exc).__name__, "restarts": self.restarts}
            self._notify(self._lifecycle("audit.delivery_restarted", details, severity="high"))
            # Back off, so that a fault that repeats cannot spin.
            time.sleep(min(self._backoff_max, 0.01 * 2 ** min(self.restarts, 12)))
            self.start(name, body, keep)
