"""The verifier's fast path for the common record: the next event of a known chain.

It does not parse the whole line.  It reads only the integrity object, and checks the
hash over the stored bytes, the MAC with the current epoch's key, the sequence
number and the link.  When all of them hold, the bytes are exactly what the writer
wrote, so a full parse would teach nothing more.  Anything unusual (a first event,
a new epoch, a checkpoint, a drop notice, any mismatch) returns ``False``, and the
record goes through the full checks in :mod:`auditmw.integrity.reader.verify`.  The fast path never
reports a finding, so it cannot change a report, only its speed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import TYPE_CHECKING

import orjson

from auditmw.integrity.layout import EVENT_DOMAIN, MAC_DOMAIN

if TYPE_CHECKING:
    from auditmw.integrity.reader.report import Location
    from auditmw.integrity.reader.state import ReadState

__all__ = ["accept_fast"]

# Matches "integrity" (canonical format, CloudEvents data) and "auditmw_integrity".
_MARKER = b'integrity":{"chain_id":"'
_DROPPED = b'"kind":"audit.events_dropped"'
_loads = orjson.loads
_hmac = hmac.digest


def accept_fast(reader: ReadState, location: Location, line: bytes) -> bool:
    """Accept ``line`` if it is the intact, correctly linked next event of its chain."""
    start = line.find(_MARKER)
    if start < 0:
        return False
    start += 11  # the integrity object's "{"
    end = line.find(b"}", start)
    try:
        integrity = _loads(line[start : end + 1])
        chain = reader.chains[integrity["chain_id"]]
        seq, stored, prev = integrity["seq"], integrity["hash"], bytes.fromhex(integrity["prev"])
        seal = b'"hash":"' + stored.encode() + b'",'
        mac = integrity.get("mac")
        if mac is not None:
            seal += b'"mac":"' + mac.encode() + b'",'
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return False
    if seq != chain.expect or prev != chain.head or chain.first_seq is None or chain.fresh_run:
        return False
    at = line.find(seal, start)
    if at < 0:
        return False
    hasher = sha256(EVENT_DOMAIN + prev)
    view = memoryview(line)
    hasher.update(view[:at])
    hasher.update(view[at + len(seal) :])
    digest = hasher.digest()
    if digest.hex() != stored or _DROPPED in line:
        return False
    if reader.mac_key is not None:
        epoch, key = chain.epoch_key
        if integrity.get("epoch") != epoch or epoch != chain.epoch or not isinstance(mac, str):
            return False
        if not hmac.compare_digest(_hmac(key, MAC_DOMAIN + digest, "sha256").hex(), mac):
            return False
    reader.report.records += 1
    chain.hashes += digest
    chain.events += 1
    chain.expect, chain.head = seq + 1, digest
    chain.pending_forged = chain.last_modified = None
    chain.last_location = location
    return True
