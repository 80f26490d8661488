"""Key material for integrity: Ed25519 signing keys, MAC keys and the key registry.

Trust: the registry is the verifier's root of trust.  A checkpoint is trusted only when
it is signed by a key listed there, inside the key's validity window and before its
revocation.  Checkpoint times are asserted by the signer, so set ``revoked_at`` to the
earliest moment the key may have been exposed.  Never load a registry from the same
host whose logs it is meant to verify.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditmw.exceptions import ConfigurationError

if TYPE_CHECKING:
    import os

__all__ = [
    "KeyEntry",
    "KeyRegistry",
    "evolve_mac_key",
    "generate_keypair",
    "key_id_for",
    "load_mac_key",
    "load_signing_key",
    "mac_key_for_chain",
    "next_master_key",
]

MAC_CHAIN_DOMAIN = b"auditmw/v1/chain\x00"
MAC_EVOLVE_DOMAIN = b"auditmw/v1/evolve"
MAC_NEXT_DOMAIN = b"auditmw/v1/next-chain"


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """Return the key id of ``public_key``: ``ed25519:`` and 16 hex digits of its SHA-256.

    Args:
        public_key: an Ed25519 public key.

    .. versionadded:: 0.1.0
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair() -> tuple[bytes, bytes, str]:
    """Create an Ed25519 key pair for signing checkpoints.

    Returns:
        ``(private_pem, public_pem, key_id)``; the private key is unencrypted PKCS#8.

    .. versionadded:: 0.1.0
    """
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem, key_id_for(private.public_key())


def load_signing_key(pem: bytes, *, setting: str = "signing_key") -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PEM bytes.

    Args:
        pem: PKCS#8 PEM as written by ``auditmw keygen``.
        setting: the setting named in errors.

    Raises:
        ConfigurationError: the bytes are not an unencrypted Ed25519 private key.

    .. versionadded:: 0.1.0
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "the signing key is not an unencrypted PEM private key; create one with "
            "'auditmw keygen'",
            setting=setting,
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError("the signing key must be an Ed25519 key", setting=setting)
    return key


def _load_public_key(text: str, *, setting: str) -> Ed25519PublicKey:
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "public_key must be a PEM public key or base64 of 32 raw bytes", setting=setting
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError("public_key must be an Ed25519 key", setting=setting)
    return key


def load_mac_key(data: bytes, *, setting: str = "mac_key", is_file: bool = False) -> bytes:
    """Return MAC key bytes: ``data`` itself, or decoded from a key file's hex digits.

    Args:
        data: the key (raw bytes), or a key file's content when ``is_file``.
        setting: the setting named in errors.
        is_file: decode a file holding at least 64 hex digits (``auditmw keygen --mac``);
            other file content is used as raw bytes.

    Raises:
        ConfigurationError: the key is shorter than 32 bytes.

    .. versionadded:: 0.1.0
    """
    key = data
    if is_file:
        text = data.strip()
        try:
            decoded = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            decoded = b""
        key = decoded if len(decoded) >= 32 else data
    if len(key) < 32:
        raise ConfigurationError(
            "the MAC key must hold at least 32 bytes; create one with 'auditmw keygen --mac'",
            setting=setting,
        )
    return key


def mac_key_for_chain(master: bytes, chain_id: str) -> bytes:
    """Derive epoch 0's MAC key of one chain from the configured (master) MAC key."""
    return hmac.digest(master, MAC_CHAIN_DOMAIN + chain_id.encode("ascii"), "sha256")


def next_master_key(key: bytes) -> bytes:
    """Return the master MAC key for the next chain; the caller must drop the old one."""
    return hmac.digest(key, MAC_NEXT_DOMAIN, "sha256")


def evolve_mac_key(key: bytes) -> bytes:
    """Return the next epoch's MAC key; the caller must drop the old one."""
    return hmac.digest(key, MAC_EVOLVE_DOMAIN, "sha256")


def _parse_time(value: Any, *, setting: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000) * 1000
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigurationError(f"{value!r} is not an RFC 3339 time", setting=setting) from exc
    if parsed.tzinfo is None:
        raise ConfigurationError(f"{value!r} needs a time zone (use Z)", setting=setting)
    return int(parsed.timestamp() * 1_000_000) * 1000


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One public key of the registry with its validity window (nanoseconds, UTC).

    .. versionadded:: 0.1.0
    """

    key_id: str
    public_key: Ed25519PublicKey
    not_before_ns: int | None = None
    not_after_ns: int | None = None
    revoked_at_ns: int | None = None

    def check(self, time_ns: int) -> str | None:
        """Return ``"expired_key"`` or ``"revoked_key"`` when unusable at ``time_ns``."""
        if self.revoked_at_ns is not None and time_ns >= self.revoked_at_ns:
            return "revoked_key"
        if self.not_before_ns is not None and time_ns < self.not_before_ns:
            return "expired_key"
        if self.not_after_ns is not None and time_ns > self.not_after_ns:
            return "expired_key"
        return None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Key objects do not pickle; parallel verification ships the raw key instead.
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        windows = (self.not_before_ns, self.not_after_ns, self.revoked_at_ns)
        return (_entry_from_raw, (self.key_id, raw, *windows))

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Return whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _entry_from_raw(key_id: str, raw: bytes, *windows: int | None) -> KeyEntry:
    return KeyEntry(key_id, Ed25519PublicKey.from_public_bytes(raw), *windows)


class KeyRegistry:
    """The public keys a verifier trusts, by key id.

    Args:
        entries: the keys.

    .. versionadded:: 0.1.0
    """

    def __init__(self, entries: list[KeyEntry]) -> None:
        self._entries = {entry.key_id: entry for entry in entries}

    def get(self, key_id: str) -> KeyEntry | None:
        """Return the entry of ``key_id``, or ``None`` when unknown."""
        return self._entries.get(key_id)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRegistry:
        """Load a registry: JSON/TOML with a ``keys`` list, or a single PEM public key.

        Raises:
            ConfigurationError: the file cannot be read or an entry is invalid.
        """
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read key registry {path}: {exc.strerror}", setting="keys"
            ) from exc
        if text.lstrip().startswith("-----BEGIN PUBLIC KEY"):
            key = _load_public_key(text, setting="keys")
            return cls([KeyEntry(key_id_for(key), key)])
        try:
            document = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(
                f"key registry {path} is not valid JSON/TOML: {exc}", setting="keys"
            ) from exc
        return cls.from_mapping(document)

    @classmethod
    def from_mapping(cls, document: Any) -> KeyRegistry:
        """Build a registry from ``{"keys": [{key_id, public_key, not_before?, ...}]}``.

        Raises:
            ConfigurationError: an entry is invalid or its key id does not match its key.
        """
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ConfigurationError("the key registry needs a 'keys' list", setting="keys")
        entries = []
        for index, item in enumerate(document["keys"]):
            where = f"keys[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("public_key"), str):
                raise ConfigurationError(f"{where} needs a 'public_key' string", setting=where)
            key = _load_public_key(item["public_key"], setting=f"{where}.public_key")
            key_id = key_id_for(key)
            if item.get("key_id", key_id) != key_id:
                raise ConfigurationError(
                    f"{where}.key_id does not match its public key (expected {key_id})",
                    setting=f"{where}.key_id",
                )
            entries.append(
                KeyEntry(
                    key_id,
                    key,
                    _parse_time(item.get("not_before"), setting=f"{where}.not_before"),
                    _parse_time(item.get("not_after"), setting=f"{where}.not_after"),
                    _parse_time(item.get("revoked_at"), setting=f"{where}.revoked_at"),
                )
            )
        return cls(entries)
