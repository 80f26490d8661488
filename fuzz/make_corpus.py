"""Write the seed corpus of fuzz_chain (run once; the files are committed).

An input is: flags (bit 0: MAC on), cut, then marker, head, key, event domain and MAC
domain, each as one length byte + bytes, and the body as the rest (see fuzz_chain.c).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

HERE = Path(__file__).parent / "corpus"
CHAIN = "0192f5b2-0000-7000-8000-000000000001"
MARKER = b'"integrity":{"chain_id":"' + CHAIN.encode() + b'",'


def piece(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def seed(flags: int, body: bytes, marker: bytes = MARKER, head: bytes = bytes(32)) -> bytes:
    return (
        bytes([flags, 17])
        + piece(marker)
        + piece(head)
        + piece(b"k" * 32)
        + piece(b"auditmw/v1/event")
        + piece(b"auditmw/v1/mac")
        + body
    )


def line(mac: bool, **extra: object) -> bytes:
    integrity: dict[str, object] = {"chain_id": CHAIN, "prev": "00" * 32, "seq": 1}
    if mac:
        integrity["epoch"] = 0
    event = {"kind": "http", "actor": {"id": "é😀\u0001"}, **extra, "integrity": integrity}
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def main() -> None:
    HERE.mkdir(exist_ok=True)
    seeds = {
        "event-mac": seed(1, line(True)),
        "event": seed(0, line(False)),
        "twice": seed(1, line(True, a={"integrity": {"chain_id": CHAIN, "z": 1}})),
        "absent": seed(0, b'{"kind":"http"}'),
        "no-comma": seed(1, MARKER + b'"epoch":0'),
        "empty-marker": seed(0, b"", marker=b""),
        "long-key": seed(1, line(True)).replace(piece(b"k" * 32), piece(b"K" * 150)),
        "big": seed(1, line(True, blob="x" * 3000)),
    }
    for name, data in seeds.items():
        (HERE / name).write_bytes(data)
        print(name, len(data), hashlib.sha256(data).hexdigest()[:12])


if __name__ == "__main__":
    main()
