"""Integrity: per-stream hash chains, evolving MACs and signed checkpoints (DESIGN §9).

What it trusts: the process writing the log, up to the moment it is compromised.  The
hash chain detects any change to stored records once a later *signed* checkpoint (or a
head kept elsewhere) commits to them; the optional MAC, whose key evolves at every
checkpoint and whose old values are discarded, stops an intruder who takes the host
later from forging earlier records.  It cannot protect records written after a
compromise, nor the tail after the last checkpoint: keep checkpoints where the
application host cannot write (a digest file shipped elsewhere, ``--expected-head``).

Byte layout (``hex`` is lower-case, ``‖`` is concatenation):

- event ``hash`` = ``SHA-256(b"auditmw/v1/event" ‖ prev ‖ body)`` where ``prev`` is the
  32 raw bytes of the previous event's hash (32 zero bytes for ``seq`` 1) and ``body`` is
  the stored canonical JSON line with the ``"hash":"…",`` and ``"mac":"…",`` members
  removed from the integrity object;
- event ``mac`` = ``HMAC-SHA256(k_epoch, b"auditmw/v1/mac" ‖ hash)`` where, for the chain
  created ``m``-th by the options (``mac_index`` in its genesis checkpoint),
  ``master_0`` = the configured key, ``master_{i+1} = HMAC(master_i, b"auditmw/v1/next-chain")``,
  ``k_0 = HMAC(master_m, b"auditmw/v1/chain\\x00" ‖ chain_id)`` and
  ``k_{e+1} = HMAC(k_e, b"auditmw/v1/evolve")`` after every checkpoint;
- checkpoint ``seal.hash`` = ``SHA-256(b"auditmw/v1/checkpoint" ‖ canonical record without seal)``,
  ``seal.signature`` = Ed25519 over ``b"auditmw/v1/checkpoint-signature" ‖ seal.hash``,
  ``seal.mac`` = ``HMAC-SHA256(k_epoch, b"auditmw/v1/checkpoint-mac" ‖ seal.hash)``.

Where things live: the writer side in :mod:`.writer`, the reader side in
:mod:`.reader`, both sharing :mod:`.layout` (domain-separation prefixes), :mod:`.keys`
(signing and MAC keys), :mod:`.merkle` (RFC 6962 trees), :mod:`.crypto` and
:mod:`.keyring` (encryption at rest); :mod:`.options` joins them into the
:class:`IntegrityOptions` a configuration holds.

May import: the core and :mod:`auditmw.formats`.  The writer and the reader never
import each other; nothing here imports sinks, delivery or configuration.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.integrity.options import (
    CHECKPOINT_KIND,
    ChainEncoder,
    ExpectedHead,
    Finding,
    IntegrityOptions,
    KeyRegistry,
    Location,
    Report,
    generate_keypair,
    integrity_key,
    verify_files,
    verify_records,
)

__all__ = [
    "CHECKPOINT_KIND",
    "ChainEncoder",
    "ExpectedHead",
    "Finding",
    "IntegrityOptions",
    "KeyRegistry",
    "Location",
    "Report",
    "generate_keypair",
    "integrity_key",
    "verify_files",
    "verify_records",
]
