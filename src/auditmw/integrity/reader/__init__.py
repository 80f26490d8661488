"""The reader side of integrity: reading stored records back and verifying them.

:mod:`.sources` reads JSONL files (gzipped, encrypted) and directories;
:mod:`.verify` is the streaming pass (with :mod:`.fastpath` and :mod:`.seal`);
:mod:`.chainstate`, :mod:`.conclude`, :mod:`.reconcile`, :mod:`.order` and
:mod:`.heads` draw the conclusions; :mod:`.run` and :mod:`.parallel` are the entry
points; :mod:`.report` holds findings and the report.

May import: the core and the shared integrity modules; never the writer side.

.. versionadded:: 0.2.0
"""

from __future__ import annotations
