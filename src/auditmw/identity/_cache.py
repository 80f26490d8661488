"""A bounded, thread-safe LRU of resolved actors keyed by a token digest.

Keys are 16-byte BLAKE2b digests of the credential, so the cache never holds a token.
Every entry carries an absolute wall-clock expiry (a token's ``exp`` plus leeway, capped
by a TTL); an expired entry is never returned.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditmw.event import Actor

__all__ = ["TokenCache", "digest"]


def digest(credential: str) -> bytes:
    """Return the cache key of ``credential`` (a header value decoded as Latin-1)."""
    return hashlib.blake2b(credential.encode("latin-1", "replace"), digest_size=16).digest()


class TokenCache:
    """An LRU mapping of digest → (actor, expiry), bounded to ``maxsize`` entries."""

    __slots__ = ("_data", "_lock", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, tuple[Actor, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, now: float) -> Actor | None:
        """Return the live actor cached under ``key``, or ``None``."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry[0]

    def put(self, key: bytes, actor: Actor, expires: float) -> None:
        """Store ``actor`` until ``expires``, evicting the least recently used entry."""
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = (actor, expires)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (for example after a key rotation)."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
