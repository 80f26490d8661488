"""Reading stored audit events for the evidence tools: streamed, in write order.

Trust: this module only *reads*; it does not verify anything.  Anything it yields is
as trustworthy as the files it read: run :func:`auditmw.integrity.verify_files` (or
``auditmw verify``) for proof that they were not altered.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from auditmw.exceptions import ConfigurationError
from auditmw.integrity.layout import CHECKPOINT_KIND
from auditmw.integrity.reader.sources import expand_paths, iter_files, use_keyring

if TYPE_CHECKING:
    import os
    from contextlib import AbstractContextManager

    from auditmw.integrity.crypto import KeyProvider
    from auditmw.integrity.reader.report import Location

__all__ = [
    "MISSING",
    "decrypting",
    "format_bound",
    "get_path",
    "iter_events",
    "iter_records",
    "parse_time",
]

#: Returned by :func:`get_path` when a path is absent (``None`` is never stored).
MISSING: Any = object()
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def decrypting(keyring: KeyProvider | None) -> AbstractContextManager[None]:
    """Decrypt encrypted files with ``keyring`` inside the block (nothing if ``None``).

    Without a keyring, a keyring installed by an outer block stays in force.

    Args:
        keyring: the key provider, or ``None``.

    .. versionadded:: 0.2.0
    """
    return use_keyring(keyring) if keyring is not None else contextlib.nullcontext()


def get_path(event: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at a dotted path (``actor.id``) of ``event`` or :data:`MISSING`.

    Args:
        event: a canonical event.
        dotted: keys separated by ``.``.

    .. versionadded:: 0.1.0
    """
    value: Any = event
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def parse_time(text: str, *, now: datetime | None = None, setting: str = "--since") -> datetime:
    """Parse an RFC 3339 time or a duration before ``now`` (``90s``, ``15m``, ``1h``, ``7d``).

    Args:
        text: the value given by the user.
        now: the reference for relative values (default: the current time).
        setting: the option named in the error.

    Raises:
        ConfigurationError: ``text`` is neither.

    .. versionadded:: 0.1.0
    """
    match = _RELATIVE.match(text)
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        stamp = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting} must be an RFC 3339 time (2026-11-30T03:00:00Z) or a duration such "
            f"as 90s, 15m, 1h, 7d, 2w; got {text!r}",
            setting=setting,
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def format_bound(stamp: datetime) -> str:
    """Format ``stamp`` like stored event times, so that bounds compare as strings.

    Event times are always ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, a fixed-width
    format in which string order is time order.

    Args:
        stamp: an aware datetime.

    .. versionadded:: 0.1.0
    """
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iter_records(
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[Location, bytes, dict[str, Any] | None]]:
    """Yield ``(location, stored line, parsed event or None)`` for every record, in order.

    Files are expanded and ordered like the verifier does (rotated and gzipped files
    oldest first); lines are read one at a time.  Unparsable lines yield ``None``.

    Args:
        paths: JSONL files (gzipped or not) and directories.
        progress: called with (bytes read, total bytes).

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    for location, line in iter_files(expand_paths(paths), progress):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield location, line, None
            continue
        yield location, line, doc if isinstance(doc, dict) else None


def iter_events(
    paths: Iterable[str | os.PathLike[str]],
    *,
    checkpoints: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the stored events of ``paths`` in write order, streaming.

    Args:
        paths: JSONL files (gzipped or not) and directories of them.
        checkpoints: also yield integrity checkpoint records.
        progress: called with (bytes read, total bytes).

    Raises:
        FileNotFoundError: a path does not exist.

    .. versionadded:: 0.1.0
    """
    for _, _, event in iter_records(paths, progress=progress):
        if event is None:
            continue
        if not checkpoints and event.get("kind") == CHECKPOINT_KIND:
            continue
        yield event
