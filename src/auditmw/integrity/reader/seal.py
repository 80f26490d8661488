"""The verifier's checks of checkpoint records: seal, signature, key validity and MAC.

What it trusts: the key registry and the MAC key given to the verifier, nothing read
from the log.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from auditmw.core.canonical import dumps
from auditmw.integrity.layout import CHECKPOINT_DOMAIN, CHECKPOINT_MAC_DOMAIN, SIGNATURE_DOMAIN
from auditmw.integrity.reader.chainstate import Checkpoint

if TYPE_CHECKING:
    from auditmw.integrity.reader.chainstate import ChainState
    from auditmw.integrity.reader.report import Location
    from auditmw.integrity.reader.state import ReadState

__all__ = ["read_checkpoint"]


def _time_ns(value: Any) -> int:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return 0
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


def read_checkpoint(
    reader: ReadState, location: Location, line: bytes, doc: dict[str, Any]
) -> None:
    """Check a checkpoint record's seal, signature, key and MAC; remember it for its chain."""
    body, seal = doc.get("checkpoint"), doc.get("seal")
    try:
        if not isinstance(body, dict) or not isinstance(seal, dict):
            raise TypeError("checkpoint")
        chain = reader.chain(body["chain_id"])
        for name in ("n", "first_seq", "last_seq"):
            if type(body[name]) is not int:
                raise TypeError(name)
        bytes.fromhex(body["head"])
        stored = seal["hash"]
        rest = {k: v for k, v in doc.items() if k != "seal"}
        intact = (
            dumps(doc) == line and sha256(CHECKPOINT_DOMAIN + dumps(rest)).hexdigest() == stored
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        reader.flag("checkpoint_modified", "the checkpoint record is unreadable", location, None)
        return
    time_ns = _time_ns(doc.get("time"))
    if not intact:
        reader.flag(
            "checkpoint_modified",
            f"checkpoint {body['n']} does not match its seal",
            location,
            chain,
        )
    if intact and body["n"] == 0 and type(body.get("mac_index")) is int:
        chain.set_mac_index(body["mac_index"])
    trusted = intact and _trusted(reader, chain, location, body, seal, time_ns)
    chain.checkpoints.append(Checkpoint(location, body, stored, time_ns, intact, trusted))
    if intact:
        chain.epoch = max(chain.epoch, body["n"])


def _trusted(  # noqa: PLR0917 - internal, called positionally
    reader: ReadState,
    chain: ChainState,
    location: Location,
    body: dict[str, Any],
    seal: dict[str, Any],
    time_ns: int,
) -> bool:
    digest = bytes.fromhex(seal["hash"])
    verdicts = [_signature(reader, chain, location, body, seal, digest, time_ns)]
    if body.get("mac") and reader.mac_key is not None:
        assert reader.masters is not None  # set whenever mac_key is
        epoch, mac = max(body["n"] - 1, 0), str(seal.get("mac", ""))
        key = chain.mac_key(reader.masters, epoch)
        expected = hmac.digest(key, CHECKPOINT_MAC_DOMAIN + digest, "sha256").hex()
        ok = hmac.compare_digest(expected, mac) or (
            # Retention removed the genesis checkpoint naming the chain's master key.
            body["n"] != 0
            and chain.find_mac_index(reader.masters, epoch, CHECKPOINT_MAC_DOMAIN + digest, mac)
        )
        if not ok:
            reader.flag(
                "checkpoint_forged",
                f"checkpoint {body['n']} has an invalid MAC",
                location,
                chain,
            )
        verdicts.append(ok)
    known = [v for v in verdicts if v is not None]
    if not known and chain.chain_id not in reader.unchecked:
        reader.unchecked.add(chain.chain_id)
        reader.flag(
            "unchecked_signatures",
            "checkpoints could not be authenticated (give "
            "--keys and/or --mac-key-file); its events stay unverified",
            location,
            chain,
        )
    return bool(known) and all(known)


def _signature(  # noqa: PLR0917 - internal, called positionally
    reader: ReadState,
    chain: ChainState,
    location: Location,
    body: dict[str, Any],
    seal: dict[str, Any],
    digest: bytes,
    time_ns: int,
) -> bool | None:
    key_id, signature = body.get("key_id"), seal.get("signature")
    if key_id is None and signature is None:
        return None
    if reader.keys is None:
        return None
    entry = reader.keys.get(str(key_id))
    if entry is None:
        reader.flag(
            "unknown_key",
            f"checkpoint {body['n']} is signed by unknown key {key_id}",
            location,
            chain,
        )
        return False
    problem = entry.check(time_ns)
    if problem is not None:
        reader.flag(
            problem,
            f"checkpoint {body['n']} is signed by {problem.split('_')[0]} key {key_id}",
            location,
            chain,
        )
        return False
    try:
        raw = base64.b64decode(str(signature), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if base64.b64encode(raw).decode() != signature:
        raw = b""  # a non-canonical encoding (padding bits) is a changed record
    if not entry.verify(raw, SIGNATURE_DOMAIN + digest):
        reader.flag(
            "checkpoint_forged",
            f"checkpoint {body['n']} has an invalid signature",
            location,
            chain,
        )
        return False
    return True
