"""Write events as JSON lines to standard output or standard error.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO, Literal

from auditmw.exceptions import SinkUnavailableError

if TYPE_CHECKING:
    from auditmw.sinks.base import Batch

__all__ = ["StdoutSink"]


class StdoutSink:
    """Writes one JSON line per event to ``stdout`` (or ``stderr``).

    Args:
        stream: ``"stdout"`` or ``"stderr"``.
        format: the stored format.

    .. versionadded:: 0.1.0
    """

    def __init__(self, stream: Literal["stdout", "stderr"] = "stdout", *, format: str = "auditmw"):
        self.format = format
        self._stream = stream

    def _buffer(self) -> BinaryIO:
        # Looked up per batch so that redirections (pytest's capsys) are honoured.
        target = sys.stdout if self._stream == "stdout" else sys.stderr
        return target.buffer

    def emit(self, batch: Batch) -> None:
        """Write the batch in one call and flush."""
        try:
            out = self._buffer()
            out.write(batch.payload())
            out.flush()
        except (OSError, ValueError) as exc:
            raise SinkUnavailableError(f"cannot write to {self._stream}: {exc}") from exc

    def close(self) -> None:
        """Flush the stream."""
        try:
            self._buffer().flush()
        except (OSError, ValueError):
            pass  # the stream may already be closed at interpreter exit
