"""Records as they travel from the pipeline to storage: :class:`Batch` and the encoders' protocol.

A sink receives batches from the delivery thread only.  Each record of a batch has
two forms: ``events[i]`` is the canonical event (with its ``integrity`` fields when
the chain is on) and ``lines[i]`` is the exact bytes to store, in the sink's format,
without a trailing newline.  The integrity chain covers ``lines[i]`` as stored.

The integrity writer produces batches, the delivery thread hands them on and the
sinks store them; all three import them from here.  Public as
:mod:`auditmw.sinks.base`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from auditmw.core.types import Event

__all__ = ["Batch", "Encoder", "EncoderFactory"]


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
