"""Encryption at rest for audit files: envelope encryption with AES-256-GCM.

What it trusts: the key-encryption keys (KEKs) held by a :class:`KeyProvider`
(a local :class:`Keyring`, or a KMS behind the same protocol) and the
``cryptography`` package; no cryptography is written here.  What it protects: the
confidentiality of stored events, and (with GCM's tag and the associated data)
that no encrypted line was altered, moved within its file or taken from another
file.  It does not protect against a reader that holds the KEK, nor against the
loss of the end of a file (the integrity chain's checkpoints detect that), and it
does not hide file sizes or write times.  Do not use it as the only control for
logs that must stay readable for years without a key escrow: a lost KEK loses the
logs.

File format (still line-framed and appendable)::

    {"auditmw_encryption": {"v": 1, "alg": "AES-256-GCM", "file_id": ...,
                            "key_id": ..., "wrapped_key": ...}}
    base64(nonce ‖ AES-GCM(data key, nonce, batch of JSON lines, aad))
    ...

Each file (segment) has a fresh 256-bit data key, wrapped by the KEK ``key_id``
with AES-GCM (the file id as associated data).  Each later line encrypts one
batch; its associated data is the file id and the byte offset at which the line
starts, so swapping, deleting or transplanting lines fails authentication.
Rotating the KEK needs no rewrite: new files name the new key id, old files keep
theirs.  Destroying a file's wrapped data key (:func:`shred`) or its KEK makes
exactly that data unreadable: crypto-shredding.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auditmw.exceptions import DecryptionError
from auditmw.integrity.keyring import KeyProvider, Keyring
from auditmw.integrity.layout import is_fenced_torn

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "AlteredLineError",
    "DecryptionError",
    "KeyProvider",
    "Keyring",
    "SegmentKey",
    "decrypt_lines",
    "new_segment",
    "open_segment",
    "parse_header",
    "shred",
]

HEADER_KEY = "auditmw_encryption"
_HEADER_PREFIX = b'{"' + HEADER_KEY.encode() + b'"'
_ALG = "AES-256-GCM"
_NONCE = 12


class AlteredLineError(DecryptionError):
    """An encrypted line fails authentication: altered, moved, or from another file.

    .. versionadded:: 0.1.0
    """


class SegmentKey:
    """The data key of one encrypted file; encrypts and decrypts its lines.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_aead", "file_id", "key_id")

    def __init__(self, file_id: str, key_id: str, data_key: bytes) -> None:
        self.file_id = file_id
        self.key_id = key_id
        self._aead = AESGCM(data_key)

    def _aad(self, offset: int) -> bytes:
        return f"auditmw-line:{self.file_id}:{offset}".encode()

    def encrypt(self, payload: bytes, offset: int) -> bytes:
        """Return the line (with ``\\n``) that stores ``payload`` at byte ``offset``."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, payload, self._aad(offset))
        return binascii.b2a_base64(nonce + sealed)  # ends with the line's "\n"

    def decrypt(self, line: bytes, offset: int) -> bytes:
        """Return the payload of ``line`` (without its ``\\n``) stored at ``offset``.

        Raises:
            AlteredLineError: the line was altered, moved or comes from another file.
        """
        try:
            blob = binascii.a2b_base64(line, strict_mode=True)
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], self._aad(offset))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise AlteredLineError(
                f"encrypted line at byte {offset} fails authentication (altered, moved or "
                "from another file)",
                key_id=self.key_id,
            ) from exc

    def __repr__(self) -> str:
        return f"SegmentKey(file_id={self.file_id!r}, key_id={self.key_id!r})"


def _context(file_id: str) -> bytes:
    return f"auditmw-data-key:{file_id}".encode()


def new_segment(provider: KeyProvider) -> tuple[bytes, SegmentKey]:
    """Create a fresh data key; return the header line to write first and its key.

    .. versionadded:: 0.1.0
    """
    file_id = str(uuid.uuid4())
    data_key = AESGCM.generate_key(256)
    key_id, wrapped = provider.wrap(data_key, _context(file_id))
    header = {
        "v": 1,
        "alg": _ALG,
        "file_id": file_id,
        "key_id": key_id,
        "wrapped_key": base64.b64encode(wrapped).decode(),
    }
    return orjson.dumps({HEADER_KEY: header}) + b"\n", SegmentKey(file_id, key_id, data_key)


def parse_header(line: bytes) -> dict[str, Any] | None:
    """Return the encryption header of a file's first line, or ``None`` if it is plain."""
    if not line.startswith(_HEADER_PREFIX):
        return None
    try:
        header = orjson.loads(line)[HEADER_KEY]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return header if isinstance(header, dict) else None


def open_segment(line: bytes, provider: KeyProvider | None, source: str) -> SegmentKey:
    """Unwrap the data key named by the header ``line`` of file ``source``.

    Raises:
        DecryptionError: no key provider, an unknown or wrong key, or a shredded file.

    .. versionadded:: 0.1.0
    """
    header = parse_header(line)
    if header is None:
        raise DecryptionError(f"{source}: no encryption header on the first line")
    key_id = str(header.get("key_id"))
    if header.get("wrapped_key") is None:
        raise DecryptionError(
            f"{source}: its data key was shredded at {header.get('shredded_at')}; "
            "the content is unrecoverable by design",
            key_id=key_id,
        )
    if provider is None:
        raise DecryptionError(
            f"{source} is encrypted with key id {key_id!r}; pass the keyring (--keyring FILE)",
            key_id=key_id,
        )
    file_id = str(header["file_id"])
    wrapped = base64.b64decode(header["wrapped_key"])
    try:
        data_key = provider.unwrap(key_id, wrapped, _context(file_id))
    except DecryptionError as exc:
        raise DecryptionError(f"{source}: {exc}", key_id=key_id) from exc
    return SegmentKey(file_id, key_id, data_key)


def decrypt_lines(
    header: bytes,
    lines: Iterable[bytes],
    provider: KeyProvider | None,
    source: str,
    *,
    strict: bool = True,
) -> Iterator[bytes]:
    """Yield the plaintext lines (with ``\\n``) of an encrypted file.

    Args:
        header: the file's first line.
        lines: the remaining raw lines, in order.
        provider: the key provider holding the file's KEK.
        source: the file name, for messages.
        strict: raise on a line that fails authentication; otherwise yield it
            unchanged, so a verifier reports it as a malformed record (and yield
            nothing for a shredded file).

    Raises:
        DecryptionError: the key is missing or wrong, or (``strict``) a line fails.

    .. versionadded:: 0.1.0
    """
    parsed = parse_header(header)
    if not strict and parsed is not None and parsed.get("wrapped_key") is None:
        return  # crypto-shredded: nothing to read; a verifier sees the events as missing
    key = open_segment(header, provider, source)
    offset = len(header)
    for raw in lines:
        line = raw.rstrip(b"\n")
        if line:
            try:
                payload = key.decrypt(line, offset)
            except AlteredLineError as exc:
                if not strict:
                    yield line + b"\n"  # a verifier reports it (torn_record if fenced)
                elif not is_fenced_torn(line):  # a fenced crash fragment holds no record
                    raise AlteredLineError(f"{source}: {exc}", key_id=key.key_id) from exc
            else:
                for record in payload.split(b"\n"):
                    if record:
                        yield record + b"\n"
        offset += len(raw)


def shred(path: str | os.PathLike[str], *, now: str | None = None) -> str:
    """Crypto-shred an encrypted file: replace its wrapped data key by ``null``.

    The ciphertext stays (sizes and line counts remain evidence that data existed);
    without the data key nobody, including the KEK holder, can read it.  Copies of
    the file made before (backups, archives) still hold the wrapped key: shred them
    too, or destroy the KEK if it wrapped only this data.

    Args:
        path: the encrypted file (gzipped or not).
        now: the time recorded in the header (RFC 3339; default: now).

    Returns:
        The key id that wrapped the destroyed data key.

    Raises:
        DecryptionError: the file is not encrypted.

    .. versionadded:: 0.1.0
    """
    import gzip

    from auditmw.core.canonical import format_time

    source = Path(path)
    raw = source.read_bytes()
    gzipped = raw[:2] == b"\x1f\x8b"
    data = gzip.decompress(raw) if gzipped else raw
    first, sep, rest = data.partition(b"\n")
    header = parse_header(first)
    if header is None:
        raise DecryptionError(f"{source}: not an encrypted audit file; nothing to shred")
    header["wrapped_key"] = None
    header["shredded_at"] = now or format_time(time.time_ns())
    out = orjson.dumps({HEADER_KEY: header}) + sep + rest
    if gzipped:
        out = gzip.compress(out, mtime=0)
    mode = source.stat().st_mode & 0o777
    temp = source.with_name(f".{source.name}.shred")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(out)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, mode)
    os.replace(temp, source)
    return str(header["key_id"])
