"""Command-line options shared by ``auditmw report`` and ``auditmw audit-ready``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditmw.exceptions import ConfigurationError
from auditmw.integrity.keys import KeyRegistry, load_mac_key

if TYPE_CHECKING:
    import argparse

    from auditmw.integrity.crypto import Keyring

__all__ = [
    "ProgressBar",
    "add_keyring_option",
    "add_verification_options",
    "load_keyring",
    "progress_for",
    "verification_options",
]


def add_keyring_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--keyring``, which every command reading stored logs takes.

    .. versionadded:: 0.2.0
    """
    parser.add_argument(
        "--keyring", metavar="FILE", help="keyring (0600 JSON) to decrypt encrypted files"
    )


def load_keyring(args: argparse.Namespace) -> Keyring | None:
    """Return the keyring named by ``--keyring``, or ``None`` when none was given.

    Raises:
        ConfigurationError: the keyring cannot be read or is invalid.

    .. versionadded:: 0.2.0
    """
    path = getattr(args, "keyring", None)
    if not path:
        return None
    from auditmw.integrity.crypto import Keyring

    return Keyring.from_file(path)


def add_verification_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--keys``, ``--mac-key-file``, ``--keyring``, ``--policy`` and ``--progress``."""
    parser.add_argument("--keys", metavar="REGISTRY", help="key registry (JSON/TOML) or PEM key")
    parser.add_argument("--mac-key-file", metavar="FILE", help="the writer's initial MAC key")
    add_keyring_option(parser)
    parser.add_argument(
        "--policy", metavar="FILE", help="the audit policy in force (TOML/YAML/JSON)"
    )
    parser.add_argument("--progress", action="store_true", help="show progress even if not a TTY")


def verification_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return ``keys``, ``mac_key`` and ``policy`` loaded from the parsed options.

    Raises:
        ConfigurationError: a file cannot be read or is invalid.
    """
    from auditmw.evidence.report import PolicyInfo

    options: dict[str, Any] = {"keys": None, "mac_key": None, "policy": None}
    if args.keys:
        options["keys"] = KeyRegistry.from_file(args.keys)
    if args.mac_key_file:
        try:
            data = Path(args.mac_key_file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read {args.mac_key_file}: {exc.strerror}", setting="--mac-key-file"
            ) from exc
        options["mac_key"] = load_mac_key(data, setting="--mac-key-file", is_file=True)
    if args.policy:
        options["policy"] = PolicyInfo.from_file(args.policy)
    return options


def progress_for(args: argparse.Namespace, label: str) -> Any:
    """Return a stderr progress bar when asked for or when stderr is a terminal."""
    return ProgressBar(label) if args.progress or sys.stderr.isatty() else None


class ProgressBar:
    """A progress bar on stderr: ``label [#####-----]  50%``.

    Args:
        label: shown before the bar.

    .. versionadded:: 0.1.0
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Redraw, at most five times a second."""
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        share = min(done / total, 1.0) if total else 1.0
        bar = "#" * int(share * 30) + "-" * (30 - int(share * 30))
        sys.stderr.write(f"\r{self.label} [{bar}] {share:4.0%}")
        sys.stderr.flush()
