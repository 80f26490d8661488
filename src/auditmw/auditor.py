"""The :class:`Auditor`: one pipeline and one delivery thread, shared by every shell.

A shell (ASGI, WSGI, Django, Flask) observes a request, fills an
:class:`~auditmw.event.Exchange` and calls :meth:`Auditor.record`.  Several shells
in one process may share one auditor.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from auditmw import _native
from auditmw.core import capture as _capture
from auditmw.core import process as _process
from auditmw.core.canonical import new_event_id
from auditmw.core.context import RequestContext
from auditmw.core.event import Exchange, Headers, is_lifecycle
from auditmw.delivery.durable import DurableWaiter
from auditmw.delivery.thread import Delivery
from auditmw.pipeline.builder import Pipeline

if TYPE_CHECKING:
    from auditmw.config.options import AuditConfig
    from auditmw.core.types import Event

__all__ = ["Auditor", "auditor_for"]

logger = logging.getLogger("auditmw")
_NEVER = 2**63


class Auditor:
    """Builds events with a :class:`~auditmw.pipeline.Pipeline` and delivers them.

    Args:
        config: the audit configuration.

    .. versionadded:: 0.1.0
    """

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.pipeline = Pipeline(config)
        self.delivery = Delivery(
            config.sinks,
            config.delivery,
            integrity=config.integrity,
            lifecycle=self.pipeline.lifecycle,
        )
        self._started_pid = 0
        self._lock = threading.Lock()
        self._key_stores = [
            store
            for store in (getattr(r, "key_store", None) for r in self.pipeline.resolvers)
            if store is not None
        ]
        self._keys_failing: dict[int, bool] = {}
        # Checked on the request path at most once a second: one integer comparison.
        self._health_due = time.perf_counter_ns() if self._key_stores else _NEVER
        _auditors.add(self)

    def new_exchange(
        self,
        kind: str,
        method: str,
        path: str,
        headers: Headers,
        *,
        query: str = "",
        scheme: str = "http",
        http_version: str = "1.1",
        client: tuple[str, int] | None = None,
        request_object: object = None,
    ) -> Exchange:
        """Start observing a request: a new :class:`Exchange` with its id and start times."""
        now = time.time_ns()
        event_id = new_event_id(now)
        exchange = Exchange(
            event_id,
            kind,
            method,
            path,
            headers,
            now,
            time.perf_counter_ns(),
            query,
            scheme,
            http_version,
            client,
        )
        exchange.request_object = request_object
        exchange.context = RequestContext(event_id)
        return exchange

    def start(self) -> None:
        """Emit ``audit.started`` and ``audit.policy_loaded`` once per process."""
        if self._started_pid == os.getpid():
            return
        with self._lock:
            if self._started_pid == os.getpid():
                return
            self._started_pid = os.getpid()
            self.pipeline.refresh_instance()
            policy = self.pipeline.policy
            # Resolvers state known weaknesses (a short JWT secret): evidence, too.
            weak = [w for r in self.pipeline.resolvers for w in getattr(r, "weaknesses", ())]
            details: dict[str, object] = {"core": _native.CORE}
            if weak:
                details["weaknesses"] = weak
            if not self.config.sinks:
                details["warning"] = "no sinks are configured: events are written nowhere"
            self.submit(self.pipeline.lifecycle("audit.started", details))
            self.submit(
                self.pipeline.lifecycle(
                    "audit.policy_loaded", {"policy_id": policy.id, "policy_hash": policy.hash}
                )
            )

    @property
    def durable(self) -> bool:
        """Whether a sink runs in durable mode (shells then hold the response end)."""
        return self.delivery.is_durable

    def commit(self, exchange: Exchange) -> DurableWaiter | None:
        """Finish ``exchange`` in durable mode: return a waiter for its storage.

        ``None`` when the policy recorded no event (nothing to wait for).  Never
        raises: a failure while building the event is stored (and waited for) as an
        ``audit.internal_error`` event; one that could not even be queued gives a
        waiter already resolved ``False``, so the request fails closed.
        """
        try:
            event = self._build(exchange)
        except Exception as exc:  # never into the app: the failure is recorded instead
            event = self._internal_error_event("pipeline", exc, exchange)
        if event is None:
            return None
        try:
            self._capture(event)
            return self.delivery.submit_durable(event)
        except Exception as exc:
            logger.error("auditmw could not queue an event: %s", type(exc).__name__)
            self.delivery.count_drop()
            failed = DurableWaiter()
            failed.resolve(False)
            return failed

    def record(self, exchange: Exchange) -> Event | None:
        """Finish ``exchange``: build its event and queue it; returns the event (or ``None``).

        Never raises: a failure while building the event (a processor, a resolver, a
        bug) is recorded as an ``audit.internal_error`` event instead.
        """
        try:
            event = self._build(exchange)
        except Exception as exc:
            self.internal_error("pipeline", exc, exchange)
            return None
        if event is not None:
            try:
                if _capture.active or event["kind"] != "http":
                    self.submit(event)
                else:  # a request event and no test capture: what submit() does for it
                    self.delivery.submit(event)
            except Exception as exc:  # e.g. a processor's event without "kind"
                logger.error("auditmw could not queue an event: %s", type(exc).__name__)
                self.delivery.count_drop()
        return event

    def internal_error(
        self, stage: str, exc: BaseException, exchange: Exchange | None = None
    ) -> None:
        """Record that an audit hook failed, as an ``audit.internal_error`` event; never raises.

        The event carries the exception's type, never its message (it may hold request
        data), and the id of the request event that could not be built.

        Args:
            stage: where it failed (``"pipeline"``, ``"django.login_failed"``, …).
            exc: the exception.
            exchange: the request being recorded, if any.

        .. versionadded:: 0.2.0
        """
        try:
            event = self._internal_error_event(stage, exc, exchange)
            self.submit(event)
        except Exception as again:  # the record itself failed: the log line is all that is left
            logger.error("auditmw internal error in %s: %s", stage, type(again).__name__)

    def _internal_error_event(
        self, stage: str, exc: BaseException, exchange: Exchange | None
    ) -> Event:
        # The type only: the message (and a traceback) may hold request data.
        logger.error("auditmw internal error in %s: %s", stage, type(exc).__name__)
        details: dict[str, str] = {"stage": stage, "error": type(exc).__name__}
        if exchange is not None:
            details["event_id"] = exchange.event_id
        return self.pipeline.lifecycle("audit.internal_error", details, severity="high")

    def _build(self, exchange: Exchange) -> Event | None:
        if exchange.end_ns == 0:
            # One clock read: the wall-clock end is the start plus the monotonic duration.
            exchange.end_mono = end = time.perf_counter_ns()
            exchange.end_ns = exchange.start_ns + max(0, end - exchange.start_mono)
        if exchange.context is not None:
            exchange.context.finished = True
        if self._started_pid != _process.pid:
            self.start()
        if exchange.end_mono >= self._health_due:
            self._check_key_stores(exchange.end_mono)
        return self.pipeline.process(exchange)

    def _check_key_stores(self, now: int) -> None:
        """Record JWKS outages and recoveries as lifecycle events (identity is evidence too)."""
        self._health_due = now + 1_000_000_000
        for store in self._key_stores:
            status = store.status
            failing = status.consecutive_failures > 0
            if failing == self._keys_failing.get(id(store), False):
                continue
            self._keys_failing[id(store)] = failing
            details = {"source": status.url, "key_ids": len(status.key_ids)}
            if failing:
                details["error"] = (status.last_error or "")[:256]
                details["failures"] = status.consecutive_failures
                event = self.pipeline.lifecycle("audit.keys_unavailable", details, severity="high")
            else:
                event = self.pipeline.lifecycle("audit.keys_recovered", details)
            self.submit(event)

    def submit(self, event: Event) -> None:
        """Hand a built event to delivery (and to active test captures); never raises."""
        try:
            self._capture(event)
            self.delivery.submit(event, force=event["kind"] != "http" and is_lifecycle(event))
        except Exception as exc:  # e.g. no thread could be started: counted as a drop
            logger.error("auditmw could not queue an event: %s", type(exc).__name__)
            self.delivery.count_drop()

    @staticmethod
    def _capture(event: Event) -> None:
        if _capture.active:
            for captured in _capture.active:
                captured.append(event)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every recorded event was handed to the sinks."""
        return self.delivery.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Emit ``audit.stopped``, drain and close the sinks; idempotent."""
        with self._lock:
            if self._started_pid != os.getpid():
                return
            self._started_pid = 0
        self.submit(self.pipeline.lifecycle("audit.stopped", {}))
        # Resolvers (JWKS threads) stay open: a closed auditor restarts on the next request.
        self.delivery.close(timeout)


_auditors: weakref.WeakSet[Auditor] = weakref.WeakSet()


def _stop_all() -> None:
    # WSGI servers (gunicorn workers) have no lifespan event: record audit.stopped at
    # interpreter exit.  Registered after delivery's own handler, so it runs first.
    for auditor in list(_auditors):
        auditor.close()


atexit.register(_stop_all)


def _reset_locks_after_fork() -> None:
    # A fork while another thread held the lock would leave the child's copy locked.
    for auditor in list(_auditors):
        auditor._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


def auditor_for(shell: str, config: AuditConfig | None, auditor: Auditor | None) -> Auditor:
    """Return ``auditor``, or a new one built from ``config``, for the shell named ``shell``.

    Raises:
        ConfigurationError: neither was given.

    .. versionadded:: 0.1.0
    """
    if auditor is not None:
        return auditor
    if config is None:
        from auditmw.exceptions import ConfigurationError

        raise ConfigurationError(
            f"{shell} needs config=AuditConfig(service=...) or auditor=Auditor(...)",
            setting="config",
        )
    return Auditor(config)
