"""The writer side of integrity: chaining, MACs and checkpoints as records are stored.

:mod:`.encoder` is the :class:`ChainEncoder` of one sink stream; :mod:`.lineage`
keeps chain state per process lineage (``state_dir``).  Shared byte layout, keys
and Merkle trees live one level up, in :mod:`auditmw.integrity`.

May import: the core, :mod:`auditmw.formats` and the shared integrity modules; never
the reader side.

.. versionadded:: 0.2.0
"""

from __future__ import annotations
