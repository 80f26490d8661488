"""The sink protocols' data: :class:`Batch`, and helpers shared by sink modules.

A sink receives batches from the delivery thread only.  Each record of a batch has
two forms: ``events[i]`` is the canonical event (with its ``integrity`` fields when
the chain is on) and ``lines[i]`` is the exact bytes to store, in the sink's format,
without a trailing newline.  The integrity chain covers ``lines[i]`` as stored.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from auditmw.canonical import dumps
from auditmw.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from auditmw.types import Event

__all__ = ["Batch", "Encoder", "EncoderFactory", "PlainEncoder", "require"]


@dataclass(slots=True)
class Batch:
    """An ordered group of records handed to a sink in one call.

    Args:
        events: the canonical events, in chain order.
        lines: the stored bytes of each event, same order and length as ``events``.
        on_stored: called once, in order, by :meth:`stored` when the sink has stored
            the batch (the integrity chain persists its restart state there).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``on_stored`` and :meth:`stored`.
    """

    events: list[Event] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    on_stored: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def extend(self, other: Batch) -> None:
        """Append every record of ``other``."""
        self.events.extend(other.events)
        self.lines.extend(other.lines)
        self.on_stored.extend(other.on_stored)

    def stored(self) -> None:
        """Report the batch stored by its sink: run and forget the ``on_stored`` callbacks.

        The delivery thread calls it after a successful ``emit``; code that hands
        encoded batches to storage itself must call it once they are stored.  A
        failing callback is logged, never raised.

        .. versionadded:: 0.2.0
        """
        callbacks, self.on_stored = self.on_stored, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logging.getLogger("auditmw.delivery").exception("auditmw on_stored failed")

    def payload(self) -> bytes:
        """Return the records as newline-terminated JSON lines (NDJSON)."""
        if not self.lines:
            return b""
        return b"\n".join([*self.lines, b""])  # one copy of the data, not two


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(feature, extra, module.split(".", maxsplit=1)[0]) from exc


class Encoder(Protocol):
    """Turns events into the stored records of one sink's stream, in order.

    The delivery thread owns one encoder per sink and calls it from that thread only,
    so an encoder may keep state (an integrity chain).  ``encode`` may add records of
    its own (checkpoints); ``tick`` is called periodically even when idle and
    ``finish`` once at shutdown, each returning records to append, or ``None``.

    .. versionadded:: 0.1.0
    """

    def encode(self, events: Sequence[Event]) -> Batch:
        """Return the stored records for ``events``."""

    def tick(self, now_ns: int) -> Batch | None:
        """Return records due by time (heartbeat checkpoints), if any."""

    def finish(self) -> Batch | None:
        """Return closing records (a final checkpoint), if any."""


class EncoderFactory(Protocol):
    """Creates the encoder of each sink stream (implemented by integrity options)."""

    def encoder_for(self, format: str, stream: str) -> Encoder:
        """Return a new encoder for a stream named ``stream`` stored in ``format``."""


class PlainEncoder:
    """Encodes each event with its format's exporter and canonical JSON; no chain.

    Args:
        format: the stored format name (see :mod:`auditmw.formats`).

    .. versionadded:: 0.1.0
    """

    def __init__(self, format: str = "auditmw") -> None:
        from auditmw.formats import get_exporter

        self._export = get_exporter(format)
        self.format = format
        #: events that could not be encoded even in their degraded forms
        self.dropped = 0

    def encode(self, events: Sequence[Event]) -> Batch:
        """Return one canonical JSON line per event (degraded when it cannot be serialized)."""
        export = self._export
        try:
            return Batch(list(events), [dumps(export(event)) for event in events])
        except Exception:  # one bad event: encode one by one, degrading the bad ones
            batch = Batch()
            for event in events:
                self._encode_one(batch, event)
            return batch

    def _encode_one(self, batch: Batch, event: Event) -> None:
        from auditmw._degrade import degrade, metadata_only

        for form in (lambda e: e, degrade, metadata_only):
            try:
                record = form(event)
                line = dumps(self._export(record))
            except Exception:  # noqa: S112 - the next, smaller form is tried
                continue
            batch.events.append(record)
            batch.lines.append(line)
            return
        self.dropped += 1

    def tick(self, now_ns: int) -> Batch | None:
        """Plain streams have nothing periodic to write."""
        return None

    def finish(self) -> Batch | None:
        """Plain streams have nothing to write at shutdown."""
        return None
