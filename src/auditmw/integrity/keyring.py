"""Key-encryption keys: the :class:`KeyProvider` protocol and a local :class:`Keyring`.

What it trusts: the key material it is given, and file permissions (a keyring file
readable by group or others is refused).  A :class:`Keyring` holds raw keys in
process memory; use a KMS-backed :class:`KeyProvider` when keys must never leave
a hardware boundary.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auditmw.exceptions import ConfigurationError, DecryptionError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["KeyProvider", "Keyring"]

_NONCE = 12


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys with key-encryption keys it never reveals.

    A KMS client implements this protocol with its encrypt/decrypt calls (the
    ``context`` is the KMS encryption context).

    .. versionadded:: 0.1.0
    """

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` with the current KEK; return ``(key_id, wrapped)``."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Unwrap with KEK ``key_id``.

        Raises:
            DecryptionError: the key id is unknown, or the key or context is wrong.
        """
        ...


class Keyring:
    """Local key-encryption keys by key id; new files use ``current``.

    Args:
        keys: 32-byte AES keys by key id.
        current: the key id used to wrap new data keys.

    Raises:
        ConfigurationError: a key is not 32 bytes or ``current`` is not in ``keys``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ConfigurationError(
                    f"keyring key {key_id!r} must be 32 bytes (64 hex digits)", setting="keyring"
                )
        if current not in keys:
            raise ConfigurationError(
                f"keyring current key {current!r} is not among its keys; add it or fix 'current'",
                setting="keyring",
            )
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def generate(cls, key_id: str | None = None) -> Keyring:
        """Return a keyring with one fresh random key (id ``kek-<random>`` by default)."""
        key_id = key_id or f"kek-{os.urandom(4).hex()}"
        return cls({key_id: AESGCM.generate_key(256)}, key_id)

    def rotate(self, key_id: str | None = None) -> Keyring:
        """Return a keyring with a fresh current key; older keys stay to read old files."""
        fresh = Keyring.generate(key_id)
        return Keyring({**self._keys, **fresh._keys}, fresh.current)

    def destroy(self, key_id: str) -> Keyring:
        """Return a keyring without ``key_id``: every file wrapped by it becomes unreadable.

        Raises:
            ConfigurationError: ``key_id`` is the current key (rotate first).
        """
        if key_id == self.current:
            raise ConfigurationError(
                f"cannot destroy the current key {key_id!r}; rotate() first", setting="keyring"
            )
        return Keyring({k: v for k, v in self._keys.items() if k != key_id}, self.current)

    @property
    def key_ids(self) -> list[str]:
        """The key ids held, in insertion order."""
        return list(self._keys)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` with the current key (AES-GCM, ``context`` as associated data)."""
        nonce = os.urandom(_NONCE)
        return self.current, nonce + AESGCM(self._keys[self.current]).encrypt(
            nonce, data_key, context
        )

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """Unwrap a data key wrapped by :meth:`wrap`.

        Raises:
            DecryptionError: ``key_id`` is not in the keyring, or the key is wrong.
        """
        key = self._keys.get(key_id)
        if key is None:
            raise DecryptionError(
                f"key id {key_id!r} is not in the keyring (it has {', '.join(self._keys)}); "
                "load the keyring that holds it, or the data was crypto-shredded",
                key_id=key_id,
            )
        try:
            return AESGCM(key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], context)
        except InvalidTag as exc:
            raise DecryptionError(
                f"key {key_id!r} does not unwrap this data key: wrong key for that id, "
                "or the header was altered",
                key_id=key_id,
            ) from exc

    def to_json(self) -> bytes:
        """Serialise as ``{"current": ..., "keys": {id: hex}}`` (secret: store it 0600)."""
        keys = {k: v.hex() for k, v in self._keys.items()}
        return orjson.dumps({"current": self.current, "keys": keys})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` with mode ``0600`` (replacing it atomically)."""
        target = Path(path)
        temp = target.with_name(f".{target.name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.to_json())
        os.replace(temp, target)

    @classmethod
    def from_json(cls, data: bytes | str, *, setting: str = "keyring") -> Keyring:
        """Parse :meth:`to_json` output.

        Raises:
            ConfigurationError: the document is malformed (its content is never echoed).
        """
        try:
            doc = orjson.loads(data)
            keys = {str(k): bytes.fromhex(v) for k, v in doc["keys"].items()}
            current = str(doc["current"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigurationError(
                f'{setting}: expected {{"current": ID, "keys": {{ID: 64 hex digits}}}}',
                setting=setting,
            ) from exc
        return cls(keys, current)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Load a keyring file, refusing one that group or others can access.

        Raises:
            ConfigurationError: the file is unreadable, too open, or malformed.
        """
        try:
            info = os.stat(path)
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read keyring {str(path)!r}: {exc.strerror}", setting="keyring"
            ) from exc
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"keyring {str(path)!r} is accessible to group or others "
                f"(mode {info.st_mode & 0o777:o}); run: chmod 600 {path}",
                setting="keyring",
            )
        return cls.from_json(data, setting=f"keyring {str(path)!r}")

    @classmethod
    def from_env(
        cls, name: str = "AUDITMW_KEYRING", environ: Mapping[str, str] | None = None
    ) -> Keyring:
        """Load a keyring from the JSON in environment variable ``name``.

        Raises:
            ConfigurationError: the variable is unset or malformed.
        """
        env = os.environ if environ is None else environ
        if name not in env:
            raise ConfigurationError(f"{name} is not set; put the keyring JSON in it", setting=name)
        return cls.from_json(env[name], setting=name)

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, key_ids={self.key_ids!r})"  # never the keys
