"""Escaping log content before it reaches a terminal.

Trust: everything read from a log is attacker-controlled (a user agent, a path, an
actor id).  Written raw to a terminal, an escape sequence in it could clear the
screen, rewrite earlier lines, set the window title or, on some terminals, answer
back into the shell.  Human-readable output built from log content goes through
:func:`escape_control`; data lines through :func:`escape_bytes` when the output is a
terminal (a pipe or a file still receives the stored bytes unchanged).

The escapes are JSON's (``\\u001b``), so an escaped JSON line still parses to the
same value.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

__all__ = ["escape_bytes", "escape_control", "is_terminal"]


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # as JSON writes it: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape_control(text: str) -> str:
    """Return ``text`` with every non-printable character as a visible escape.

    Control characters (C0, DEL, C1 such as the 8-bit CSI ``U+009B``), format
    characters (bidirectional overrides, zero-width marks), line and paragraph
    separators and unassigned code points become ``\\uXXXX``; newlines and tabs too,
    so one value stays on one line.

    Args:
        text: text that may come from a log.

    .. versionadded:: 0.2.0
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def escape_bytes(data: bytes) -> bytes:
    """Return one stored line made safe for a terminal (see :func:`escape_control`).

    Bytes that are not UTF-8 become ``\\xNN``.

    Args:
        data: a line as stored, without its newline.

    .. versionadded:: 0.2.0
    """
    if data.isascii() and data.decode("ascii").isprintable():
        return data
    return escape_control(data.decode("utf-8", "backslashreplace")).encode("utf-8")


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is attached to a terminal (``False`` when it cannot tell).

    Args:
        stream: a file object such as ``sys.stdout``.

    .. versionadded:: 0.2.0
    """
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False
