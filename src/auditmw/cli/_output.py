"""Terminal-safe output and the one error format shared by every ``auditmw`` command.

Log content is attacker-controlled: every reading command passes it through
:func:`escape_control` (always, for human-readable text) or :class:`LineWriter`
(for data lines: escaped only when the output is a terminal); see
:mod:`auditmw.core.terminal`.  Messages on stderr are escaped too.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import sys
from typing import IO

from auditmw.core.terminal import escape_bytes, escape_control, is_terminal

__all__ = [
    "LineWriter",
    "error",
    "escape_bytes",
    "escape_control",
    "is_terminal",
    "warn",
    "write_json",
]

#: Exit status of a usage, configuration or I/O error (argparse uses 2 as well).
EXIT_USAGE = 2


class LineWriter:
    """Writes stored lines to a binary stream, escaping them when it is a terminal.

    Args:
        stream: a binary stream (``sys.stdout.buffer``).
        terminal: whether to escape; default: whether ``stream`` is a terminal.

    .. versionadded:: 0.2.0
    """

    def __init__(self, stream: IO[bytes], *, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = is_terminal(stream) if terminal is None else terminal

    def write_line(self, line: bytes) -> None:
        """Write one line (without its newline) and a newline."""
        self.stream.write((escape_bytes(line) if self.terminal else line) + b"\n")


def write_json(data: object) -> None:
    """Print ``data`` as indented JSON on stdout, escaped line by line on a terminal.

    JSON already escapes C0 control characters, but not C1 ones (``U+009B``, an
    8-bit CSI) nor bidirectional overrides.

    Args:
        data: JSON-compatible data.

    .. versionadded:: 0.2.0
    """
    import orjson

    out = LineWriter(sys.stdout.buffer)
    for line in orjson.dumps(data, option=orjson.OPT_INDENT_2).split(b"\n"):
        out.write_line(line)
    sys.stdout.buffer.flush()


def error(command: str, message: object, code: int = EXIT_USAGE) -> int:
    """Print ``auditmw <command>: error: <message>`` on stderr and return ``code``.

    Args:
        command: the command as typed (``query``, ``postgres init``).
        message: the message (an exception is printed as its text).
        code: the exit status to return (2: usage, configuration or I/O error).

    .. versionadded:: 0.2.0
    """
    _say(command, "error", message)
    return code


def warn(command: str, message: object) -> None:
    """Print ``auditmw <command>: warning: <message>`` on stderr.

    Args:
        command: the command as typed.
        message: the message.

    .. versionadded:: 0.2.0
    """
    _say(command, "warning", message)


def _say(command: str, level: str, message: object) -> None:
    text = escape_control(str(message))
    setting = getattr(message, "setting", None)
    if isinstance(setting, str) and setting not in text:
        text += f" (setting: {setting})"
    try:
        sys.stdout.flush()  # keep the message after what was already printed
    except (OSError, ValueError):
        pass
    print(f"auditmw {command}: {level}: {text}", file=sys.stderr)
