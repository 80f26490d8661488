"""One audited worker process of the multi-worker harness, driven line by line over stdin.

Run as ``python multiworker_app.py NAME CONFIG_JSON``.  Commands (one per line):

- ``record N``: record N requests (paths ``/NAME/i``), wait until delivered, reply ``ok``;
- ``send N``: record N requests without waiting, reply ``sent``;
- ``hold``: the next batch that carries a checkpoint blocks inside the sink's ``emit``
  (before anything is stored) until the process is killed; reply ``armed``, and
  ``held HASH,...`` (the held checkpoints) once a batch is held;
- ``stop``: close the auditor (closing checkpoint), reply ``stopped`` and exit.

The first line written is ``ready``.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import orjson

from auditmw import AuditConfig, Auditor
from auditmw.event import Headers
from auditmw.integrity import IntegrityOptions
from auditmw.sinks.file import FileSink

if TYPE_CHECKING:
    from auditmw.sinks.base import Batch

_out = threading.Lock()


def reply(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class HoldingSink:
    """Wraps a sink; once armed, blocks forever in the first ``emit`` carrying a checkpoint."""

    format = "auditmw"

    def __init__(self, inner: FileSink) -> None:
        self.inner = inner
        self.armed = threading.Event()

    def emit(self, batch: Batch) -> None:
        if self.armed.is_set():
            held = [e["seal"]["hash"] for e in batch.events if e.get("kind") == "audit.checkpoint"]
            if held:
                reply("held " + ",".join(held))
                threading.Event().wait()  # inside emit, nothing stored: until SIGKILL
        self.inner.emit(batch)

    def close(self) -> None:
        self.inner.close()


def main(name: str, config: dict[str, str | int]) -> None:
    file_sink = FileSink(
        str(config["log"]),
        fsync="batch",
        rotate_bytes=int(config["rotate_bytes"]),
        compress=True,
        max_files=int(config["max_files"]) if config.get("max_files") else None,
    )
    sink = HoldingSink(file_sink)
    options = IntegrityOptions(
        signing_key_file=str(config["signing_key_file"]),
        mac_key_file=str(config["mac_key_file"]),
        checkpoint_every=int(config["checkpoint_every"]),
        digest_path=str(config["digest"]),
        state_dir=str(config["state_dir"]),
    )
    auditor = Auditor(AuditConfig(service=f"mw-{name}", sinks=[sink], integrity=options))
    count = 0

    def record(n: int) -> None:
        nonlocal count
        for _ in range(n):
            exchange = auditor.new_exchange(
                "http", "GET", f"/{name}/{count}", Headers([]), client=("10.0.0.1", 1)
            )
            exchange.status = 200
            auditor.record(exchange)
            count += 1

    reply("ready")
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "record":
            record(int(arg))
            reply("ok" if auditor.flush(60) else "timeout")
        elif command == "send":
            record(int(arg))
            reply("sent")
        elif command == "hold":
            sink.armed.set()
            reply("armed")
        elif command == "stop":
            auditor.close(60)
            reply("stopped")
            return


if __name__ == "__main__":
    main(sys.argv[1], orjson.loads(sys.argv[2]))
