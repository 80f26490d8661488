"""auditmw quick start: run the demo app under uvicorn, send requests, show the audit log.

    python examples/quickstart.py [--out audit-out/demo.jsonl]

It starts ``examples/app.py`` under a real uvicorn server on 127.0.0.1, sends a
handful of requests (anonymous, a signed-in user, a denied one, a failing one, a
404, a streaming one), stops the server (which flushes the log), prints one line
per audited event and the full event of the user's update, then verifies the log.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import uvicorn

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _send_requests(base_url: str) -> None:
    user = {"x-demo-user": "ada"}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        steps = [
            ("anonymous read", client.get("/orders/1")),
            ("signed-in update", client.put("/orders/1", params={"qty": 3}, headers=user)),
            ("denied delete", client.delete("/orders/1", headers={"x-demo-user": "mallory"})),
            # uvicorn closes the connection after an unhandled exception; ask for that
            # up front so the client does not reuse a socket the server is closing.
            ("failing call", client.post("/orders/1/fail", headers={"connection": "close"})),
            ("missing order", client.get("/orders/404")),
            ("streaming", client.get("/stream", params={"count": 5})),
        ]
    for label, response in steps:
        print(
            f"  {label:<18} {response.request.method:<6} {response.request.url.path:<18} "
            f"-> {response.status_code}  Audit-Id: {response.headers.get('audit-id', '-')}"
        )


def _show(log: Path) -> list[dict[str, object]]:
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    print(f"\n{len(events)} records in {log} (events and signed checkpoints):")
    for e in events:
        actor = e["actor"]["id"] if isinstance(e.get("actor"), dict) else "-"
        print(f"  {e['kind']:<20} {e['action']:<22} {e['outcome']:<8} actor={actor}")
    update = next(e for e in events if e.get("action") == "orders.update")
    print("\nThe signed-in update, as stored:")
    print(orjson.dumps(update, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return events


def _verify(log: Path, keys: Path) -> int:
    from auditmw.cli import main as cli

    args = [
        str(log),
        "--keys",
        str(keys / "auditmw.pub"),
        "--mac-key-file",
        str(keys / "auditmw.mac"),
    ]
    print(f"\n$ auditmw verify {' '.join(args)}")
    clean = cli(["verify", *args])
    # Show what tampering looks like: change one byte of a copy and verify again.
    forged = log.with_name(log.stem + ".tampered.jsonl")
    forged.write_bytes(
        log.read_bytes().replace(b'"qty"', b'"qtY"', 1).replace(b"/orders/1", b"/orders/2", 1)
    )
    print(f"\nThe same log with one request's path edited ({forged.name}):")
    print(f"$ auditmw verify {forged.name} ...")
    detected = cli(["verify", str(forged), *args[1:]])
    print("\nverified: the log is intact" if clean == 0 else "\nverification FAILED")
    return 0 if clean == 0 and detected == 1 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("audit-out/demo.jsonl"))
    args = parser.parse_args(argv)
    log: Path = args.out.resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ["AUDITMW_DEMO_LOG"] = str(log)
    keys = log.parent / "keys"
    os.environ["AUDITMW_DEMO_KEYS"] = str(keys)
    sys.path.insert(0, str(HERE))
    from app import app  # the demo app reads AUDITMW_DEMO_LOG at import

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    print(f"demo app on http://127.0.0.1:{port}, audited to {log}\n")
    _send_requests(f"http://127.0.0.1:{port}")
    server.should_exit = True  # lifespan shutdown drains the audit log
    thread.join(15)
    _show(log)
    return _verify(log, keys)


if __name__ == "__main__":
    raise SystemExit(main())
