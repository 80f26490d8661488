"""The ``auditmw`` command line: one module per sub-command, :mod:`.main` dispatches.

May import: everything; nothing imports it but ``python -m auditmw``, the console
script and the Django management command.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.cli.main import (
    COMMANDS,
    build_parser,
    main,
)

__all__ = [
    "COMMANDS",
    "build_parser",
    "main",
]
