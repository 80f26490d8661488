"""Type stub of the C extension ``auditmw._native._core`` (see ``_core.c``)."""

from typing import Final, Literal, final

from typing_extensions import Buffer

#: where SHA-256 comes from: OpenSSL's libcrypto, or the portable C code
SHA256_IMPL: Final[Literal["openssl", "portable"]]

@final
class MacKey:
    """An HMAC-SHA256 key whose inner and outer states are computed once."""

    def __new__(cls, key: Buffer) -> MacKey: ...
    def digest(self, message: Buffer, /) -> bytes: ...

def sha256(data: Buffer, /) -> bytes: ...
def chain_step(
    body: Buffer,
    head: Buffer,
    marker: Buffer,
    event_domain: Buffer,
    mac_key: MacKey | None,
    mac_domain: Buffer,
    /,
) -> tuple[bytes | None, bytes, str, str | None]: ...
