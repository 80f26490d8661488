"""The sink protocols' data: :class:`Batch`, and helpers shared by sink modules.

A sink receives batches from the delivery thread only.  Each record of a batch has
two forms: ``events[i]`` is the canonical event (with its ``integrity`` fields when
the chain is on) and ``lines[i]`` is the exact bytes to store, in the sink's format,
without a trailing newline.  The integrity chain covers ``lines[i]`` as stored.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditmw.core.canonical import dumps
from auditmw.core.optional import require
from auditmw.core.records import Batch, Encoder, EncoderFactory

if TYPE_CHECKING:
    from collections.abc import Sequence

    from auditmw.core.types import Event

__all__ = ["Batch", "Encoder", "EncoderFactory", "PlainEncoder", "require"]


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
        from auditmw.core.degrade import degrade, metadata_only

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
