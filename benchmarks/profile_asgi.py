"""Where auditmw's per-request time goes: the target ASGI variant under a sampling profiler.

    python -m benchmarks.profile_asgi --seconds 20          # the workload alone
    py-spy record --threads --format raw -o /tmp/auditmw.txt -- \\
        python -m benchmarks.profile_asgi --seconds 20      # sample it
    python -m benchmarks.profile_asgi --report /tmp/auditmw.txt
    python -m benchmarks.profile_asgi --ablate              # overhead removed piece by piece
    python -m benchmarks.profile_asgi --split               # CPU by thread and stage

The workload is the DESIGN §11 target configuration of :mod:`benchmarks.bench_asgi`
(metadata level, verified and cached HS256 JWT, integrity chain, file sink, async
delivery) serving the benchmark's GET request in a loop, flushing the delivery
thread every 1000 requests.  ``--report`` reads py-spy's raw (collapsed) output, one
line per distinct stack with its sample count, and attributes each sample to the
request path (split into the app itself and auditmw's own frames) or to the
delivery thread, then lists the auditmw functions with the largest share.

Sampling shares are a guide, not a measurement: py-spy stops the process to read a
stack, which over-weights lines that make system calls (``os.getpid()`` showed up
at 9 % of samples; caching it changed nothing measurable).  ``--ablate`` measures
instead: the target configuration with one feature removed at a time, interleaved
with the bare app, so each feature's cost is a difference of measured times.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from auditmw.sinks import FileSink
from benchmarks._harness import interleave
from benchmarks.bench_asgi import audited, bare_app, make_round

TOP = 20


def workload(seconds: float) -> int:
    """Serve requests through the target variant for ``seconds``; return how many."""
    with tempfile.TemporaryDirectory() as name:
        app, flush = audited(Path(name), "profile")
        serve = make_round(app, flush)
        served, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            serve(1000)
            served += 1000
        app.auditor.close()
    return served


def ablate(n: int = 5000, rounds: int = 9) -> str:
    """The target configuration with features removed one at a time, as µs over bare."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        configs: dict[str, dict[str, Any]] = {
            "target (JWT cached, chain, file fsync=batch)": {},
            "- fsync (file fsync=never)": {"sinks": [FileSink(tmp / "a.jsonl", fsync="never")]},
            "- integrity chain (plain lines)": {"integrity": None},
            "- identity (no resolver)": {"resolvers": []},
            "- identity - chain": {"resolvers": [], "integrity": None},
            "no sink (event built and queued only)": {"sinks": []},
            "no sink - identity - chain": {"sinks": [], "resolvers": [], "integrity": None},
        }
        apps = {
            label: audited(tmp, str(i), **opts) for i, (label, opts) in enumerate(configs.items())
        }
        variants = {"bare": make_round(bare_app())}
        variants.update({label: make_round(app, flush) for label, (app, flush) in apps.items()})
        try:
            results = interleave(variants, n=n, rounds=rounds, slices=5)
        finally:
            for app, _flush in apps.values():
                app.auditor.close()
    bare = results["bare"].cpu_median / 1000
    target = results[next(iter(configs))].cpu_median / 1000 - bare
    lines = ["| configuration | CPU µs/request over bare | share of the target's overhead |"]
    lines.append("|---|---:|---:|")
    for label, result in results.items():
        over = result.cpu_median / 1000 - bare
        lines.append(f"| {label} | {over:.1f} | {over / target:.0%} |")
    return f"bare: {bare:.1f} µs/request CPU ({rounds} rounds of {n})\n\n" + "\n".join(lines)


def split(n: int = 3000, rounds: int = 9) -> str:
    """Where the target configuration's CPU goes: request thread vs delivery thread, by stage.

    Variants, measured in alternating rounds with thread and process CPU clocks:
    ``shell`` replaces ``Auditor.record`` with a no-op (only the ASGI wrapping), ``built``
    builds every event but queues none, ``target`` is the whole thing.  The delivery
    thread's encoding and file writes are timed per event by wrapping
    ``ChainEncoder.encode`` and ``FileSink.emit`` with its thread CPU clock.
    """
    from auditmw.integrity.writer.encoder import ChainEncoder

    spent = {"encode": 0, "emit": 0}
    restore: list[tuple[Any, str, Any]] = []

    def timed(cls: Any, name: str, key: str) -> None:
        original = getattr(cls, name)
        restore.append((cls, name, original))

        def wrapper(self: Any, *args: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return original(self, *args)
            finally:
                spent[key] += time.thread_time_ns() - start

        setattr(cls, name, wrapper)

    timed(ChainEncoder, "encode", "encode")
    timed(FileSink, "emit", "emit")
    try:
        return _split(n, rounds, spent)
    finally:
        for cls, name, original in restore:
            setattr(cls, name, original)


def _split(n: int, rounds: int, spent: dict[str, int]) -> str:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        shell, _ = audited(tmp, "shell")
        shell.auditor.record = lambda exchange: None  # type: ignore[method-assign]
        built, _ = audited(tmp, "built")
        built.auditor.submit = lambda event: None  # type: ignore[method-assign]
        target, flush = audited(tmp, "target")
        runs = {
            "bare": make_round(bare_app()),
            "shell": make_round(shell),
            "built": make_round(built),
            "target": make_round(target, flush),
        }
        main: dict[str, list[float]] = {label: [] for label in runs}
        other: list[float] = []
        per_event: dict[str, list[float]] = {"encode": [], "emit": []}
        for run in runs.values():
            run(n // 3)
        for _ in range(rounds):
            for label, run in runs.items():
                spent.update(encode=0, emit=0)
                process, thread = time.process_time_ns(), time.thread_time_ns()
                run(n)
                thread = time.thread_time_ns() - thread
                main[label].append(thread / n / 1000)
                if label == "target":
                    other.append((time.process_time_ns() - process - thread) / n / 1000)
                    for key, values in per_event.items():
                        values.append(spent[key] / n / 1000)
        for app in (shell, built, target):
            app.auditor.close()
    bare = statistics.median(main["bare"])
    lines = [
        f"request thread CPU, bare: {bare:.1f} µs/request ({rounds} rounds of {n}); "
        "medians, over bare:",
        "| stage | µs/request |",
        "|---|---:|",
        f"| ASGI shell only (record is a no-op) | {statistics.median(main['shell']) - bare:.1f} |",
        f"| shell + event built, not queued | {statistics.median(main['built']) - bare:.1f} |",
        f"| target, request thread | {statistics.median(main['target']) - bare:.1f} |",
        f"| target, delivery thread | {statistics.median(other):.1f} |",
        f"| of which ChainEncoder.encode | {statistics.median(per_event['encode']):.1f} |",
        f"| of which FileSink.emit | {statistics.median(per_event['emit']):.1f} |",
    ]
    return "\n".join(lines)


_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:]+)(?::\d+)?\)$")


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        if match is not None:
            out.append((match["func"], match["file"]))
    return out


def _ours(file: str) -> bool:
    return file.startswith("auditmw/") or "/auditmw/" in file


def _short(func: str, file: str) -> str:
    if _ours(file):
        return f"auditmw/{file.rsplit('auditmw/', 1)[1]}:{func}"
    parts = file.split("site-packages/")
    module = parts[-1] if len(parts) > 1 else file.rsplit("/", 2)[-1]
    return f"{module}:{func}"


def classify(frames: list[tuple[str, str]], thread: str) -> str:
    """Which part of the work a sample belongs to.

    auditmw frames deeper than the app's entry are its ``send``/``receive`` wrappers,
    called by the app: they count as auditmw, not as the app.
    """
    files = [file for _, file in frames]
    own = [i for i, file in enumerate(files) if _ours(file)]
    if frames and frames[-1][1].endswith("threading.py") and "wait" in frames[-1][0]:
        return "waiting (lock or event)"
    if thread == "delivery":
        return "delivery thread"
    if not own:
        return "event loop, server or driver (no auditmw frame)"
    if any(file.startswith(("uvicorn/", "h11/")) for file in files[own[-1] + 1 :]):
        return "server called through auditmw (uvicorn + h11 send)"
    app = next((i for i, file in enumerate(files) if file.startswith("starlette/")), None)
    if app is None or own[-1] > app:
        return "request path: auditmw"
    return "request path: the app itself (Starlette)"


def report(path: Path) -> str:
    """Summarise py-spy raw output: shares by part, and auditmw's costliest functions."""
    parts: collections.Counter[str] = collections.Counter()
    self_cost: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    lines = path.read_text(encoding="utf-8").splitlines()
    # py-spy names a thread on some lines only: learn the delivery thread's id first.
    delivery_ids = set(re.findall(r"^thread \((\d+)\): auditmw-delivery", "\n".join(lines), re.M))
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        head, _, rest = stack.partition(";")
        thread_id = re.match(r"thread \((\d+)\)", head)
        frames = _frames(rest if thread_id else stack)
        in_delivery = thread_id is not None and thread_id.group(1) in delivery_ids
        part = classify(frames, "delivery" if in_delivery else "main")
        parts[part] += count
        total += count
        if part not in ("request path: auditmw", "delivery thread"):
            continue
        # Attribute the sample to the deepest auditmw frame and the library it called.
        names = [_short(func, file) for func, file in frames]
        own = [i for i, (_, file) in enumerate(frames) if _ours(file)]
        if not own:
            continue
        deepest = own[-1]
        leaf = names[-1] if deepest < len(names) - 1 else ""
        key = names[deepest] + (f"  -> {leaf}" if leaf else "")
        self_cost[part][key] += count
        for name in {names[i] for i in own}:
            inclusive[part][name] += count
    lines = [f"{total} samples", "", "| part | share of samples |", "|---|---:|"]
    lines += [f"| {part} | {n / total:.1%} |" for part, n in parts.most_common()]
    for part in ("request path: auditmw", "delivery thread"):
        part_total = parts[part] or 1
        lines += ["", f"**{part}** — inclusive (function on the stack), share of all samples:", ""]
        lines += ["| function | inclusive | of this part |", "|---|---:|---:|"]
        for name, n in inclusive[part].most_common(TOP):
            lines.append(f"| `{name}` | {n / total:.1%} | {n / part_total:.1%} |")
        lines += ["", f"**{part}** — by deepest auditmw frame (-> library leaf):", ""]
        lines += ["| frame | share of all samples |", "|---|---:|"]
        for name, n in self_cost[part].most_common(TOP):
            lines.append(f"| `{name}` | {n / total:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--report", type=Path, help="summarise py-spy raw output instead")
    parser.add_argument("--ablate", action="store_true", help="measure features one by one")
    parser.add_argument("--split", action="store_true", help="CPU by thread and stage")
    parser.add_argument("--n", type=int, default=3000, help="requests per round (--split)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (--split)")
    args: Any = parser.parse_args()
    if args.ablate:
        print(ablate())
        return
    if args.split:
        print(split(args.n, args.rounds))
        return
    if args.report:
        print(report(args.report))
        return
    served = workload(args.seconds)
    print(f"served {served} requests in {args.seconds:g} s")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
