"""``auditmw cat``: print audit files as plain JSON lines, decrypting encrypted ones.

Lines go out as stored, except to a terminal, where control characters in them are
escaped (see :mod:`auditmw.cli._output`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from auditmw.cli._output import LineWriter, error, warn
from auditmw.evidence._options import add_keyring_option, load_keyring
from auditmw.exceptions import ConfigurationError
from auditmw.integrity.crypto import AlteredLineError, DecryptionError
from auditmw.integrity.reader.sources import Oversized, expand_paths, iter_file, use_keyring

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``cat`` sub-command."""
    parser = subparsers.add_parser(
        "cat",
        help="print audit logs (gzipped, encrypted, directories) as JSON lines",
        description="Print the records of audit files in writing order; encrypted files "
        "need --keyring.  Exit status: 0 ok, 1 a line fails authentication, 2 usage error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="log files or directories")
    add_keyring_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write every record to stdout; stop at a line that fails authentication."""
    out = LineWriter(sys.stdout.buffer)
    try:
        with use_keyring(load_keyring(args)):
            # Files print in the order given; a directory's files in writing order.
            skipped: list[Path] = []
            files = [f for arg in args.paths for f in expand_paths([arg], skipped=skipped)]
            for link in skipped:
                warn("cat", f"{link}: a symbolic link inside a directory; not followed")
            for path in files:
                for number, line in iter_file(path, strict=True):
                    if isinstance(line, Oversized):
                        warn(
                            "cat",
                            f"{path}:{number}: a {line.size}-byte record, over the cap; skipped",
                        )
                        continue
                    out.write_line(line)
    except DecryptionError as exc:
        return error("cat", exc, 1 if isinstance(exc, AlteredLineError) else 2)
    except BrokenPipeError:
        # The reader (``| head``) went away: not an error; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigurationError, OSError) as exc:
        return error("cat", exc)
    sys.stdout.buffer.flush()
    return 0
