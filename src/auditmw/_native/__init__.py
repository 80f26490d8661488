"""Which core runs: the optional C extension (``_core``) or the pure-Python reference.

The extension is built by ``pip install`` where a C compiler is present; without one, or
when it fails to load, or was built without OpenSSL's libcrypto, or with
``AUDITMW_PURE_PYTHON=1`` in the environment, the Python code runs instead.  Importing
this module never raises.

Attributes:
    CORE: ``"native"`` or ``"python"``.
    UNAVAILABLE_REASON: why the native core is not used (``None`` when it is).
    chain_step: :func:`auditmw._native._core.chain_step`, or ``None`` on the Python core.
    MacKey: :class:`auditmw._native._core.MacKey`, or ``None`` on the Python core.
    headers_pick, headers_index: ``Headers.pick`` on a fresh ``Headers`` and
        ``Headers._index`` (they return ``None`` where the Python code must run), or ``None``.
    merkle_root: the RFC 6962 tree hash of a list of 32-byte leaves (``None`` where the
        Python code must run: another shape of input), or ``None`` on the Python core.
    build_http_event: ``Pipeline._build`` for the common HTTP request (``None`` where the
        Python code must run), or ``None`` on the Python core.
    format_time, new_event_id: the C event time and UUIDv7, or ``None`` on the Python core;
        ``format_time`` calls the reference given to :func:`use_format_time_reference` for
        what it does not format itself (negative or beyond 64 bits).

The Python code is the specification: the native functions return exactly what it
returns, byte for byte (``tests/native``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "CORE",
    "PURE_PYTHON_ENV",
    "UNAVAILABLE_REASON",
    "BuildHttpEvent",
    "ChainStep",
    "MacKey",
    "NativeMacKey",
    "build_http_event",
    "chain_step",
    "format_time",
    "headers_index",
    "headers_pick",
    "id_state",
    "merkle_root",
    "new_event_id",
    "use_format_time_reference",
]


class NativeMacKey(Protocol):
    """The precomputed HMAC-SHA256 states of one MAC key (``_core.MacKey``): opaque here.

    Declared as a protocol so that typed code names it without importing the
    extension, which may be absent.
    """


#: ``chain_step(body, head, marker, event_domain, mac_key, mac_domain)`` ->
#: ``(line or None, digest, hash_hex, mac_hex or None)``; see ``_core.pyi``.
ChainStep: TypeAlias = Callable[
    [bytes, bytes, bytes, bytes, "NativeMacKey | None", bytes],
    tuple[bytes | None, bytes, str, "str | None"],
]

#: ``headers_pick(raw, raw_names)`` -> the values (``None`` where absent), or ``None``
#: when ``raw``/``raw_names`` are not the plain types it reads (the Python code runs).
HeadersPick: TypeAlias = Callable[[object, tuple[bytes, ...]], "list[str | None] | None"]
#: ``headers_index(raw)`` -> ``{lower-cased name: value}``, or ``None`` as above.
HeadersIndex: TypeAlias = Callable[[object], "dict[bytes, bytes] | None"]

#: ``build_http_event(exchange, decision, actor, service, ctx)`` -> the event of
#: ``Pipeline._build``, or ``None`` where the Python code must build it; see ``_core.pyi``.
BuildHttpEvent: TypeAlias = Callable[
    [object, object, object, object, tuple[object, ...]], "dict[str, Any] | None"
]

#: Set to ``1`` to run the pure-Python core even where the extension is built.
PURE_PYTHON_ENV: Final = "AUDITMW_PURE_PYTHON"


def _load() -> tuple[ModuleType | None, str | None]:
    """Return the extension module, or ``None`` and the reason it is not used."""
    if os.environ.get(PURE_PYTHON_ENV, "").strip() not in ("", "0"):
        return None, f"{PURE_PYTHON_ENV} is set"
    try:
        core = importlib.import_module("auditmw._native._core")
    except ImportError as exc:  # not built (no compiler at install time), or broken
        return None, f"the C extension is not available: {exc}"
    except Exception as exc:  # a broken build must never stop the import of auditmw
        return None, f"the C extension failed to load: {type(exc).__name__}: {exc}"
    if getattr(core, "SHA256_IMPL", None) != "openssl":
        # Its portable SHA-256 is slower than hashlib's OpenSSL (SHA-NI, AVX2): measured,
        # the chain step would cost more than the Python one (_native/README.md).
        return None, "the C extension was built without OpenSSL's libcrypto (libssl-dev)"
    return core, None


_module, UNAVAILABLE_REASON = _load()

CORE: Literal["native", "python"] = "python" if _module is None else "native"
chain_step: ChainStep | None = None if _module is None else _module.chain_step
MacKey: Callable[[bytes], NativeMacKey] | None = None if _module is None else _module.MacKey
headers_pick: HeadersPick | None = None if _module is None else _module.headers_pick
headers_index: HeadersIndex | None = None if _module is None else _module.headers_index
merkle_root: Callable[[object], bytes | None] | None = (
    None if _module is None else _module.merkle_root
)
build_http_event: BuildHttpEvent | None = None if _module is None else _module.build_http_event
format_time: Callable[[int], str] | None = None if _module is None else _module.format_time
new_event_id: Callable[..., str] | None = None if _module is None else _module.new_event_id
#: the id generator's ``(last_ms, counter, prefix, pool, pos)``: for tests
id_state: Callable[[], tuple[int, int, str, bytes, int]] | None = (
    None if _module is None else _module._id_state
)
_set_reference: Callable[[Callable[[int], str]], None] | None = (
    None if _module is None else _module.set_format_time_reference
)
del _module


def use_format_time_reference(reference: Callable[[int], str]) -> None:
    """Hand the C ``format_time`` its Python reference, for the values it leaves to it."""
    if _set_reference is not None:
        _set_reference(reference)
