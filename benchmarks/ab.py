"""Before/after: the target configuration's ratio to bare, old code against new, interleaved.

    python -m benchmarks.ab --base ../base/src [--pairs 8] [--variant target|noid]

``--base`` is the ``src`` directory of another checkout (for example a worktree of
the commit before a change: ``git worktree add ../base <commit>``).  Each pair runs
one child process with the base code first on ``PYTHONPATH`` and one with this
checkout's code; every child measures bare and auditmw in alternating rounds (process
CPU time, the delivery thread drained each round) and reports the median ratio.
Alternating whole processes cancels the slow drift of a shared machine that makes
two separate suite runs hard to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROUNDS = 21
N = 2000


def child(variant: str, n: int, rounds: int) -> None:
    """Measure bare and auditmw in alternating rounds; print one JSON line."""
    import auditmw
    from benchmarks.bench_asgi import audited, bare_app, make_round

    with tempfile.TemporaryDirectory() as name:
        options: dict[str, object] = {"resolvers": []} if variant == "noid" else {}
        app, flush = audited(Path(name), "ab", **options)
        bare, full = make_round(bare_app()), make_round(app, flush)
        bare(n // 2)
        full(n // 2)

        def cpu(run: Callable[[int], int]) -> int:
            start = time.process_time_ns()
            run(n)
            return time.process_time_ns() - start

        ratios = []
        for _ in range(rounds):
            base_ns = cpu(bare)
            ratios.append(cpu(full) / base_ns)
        app.auditor.close()
    print(json.dumps({"auditmw": auditmw.__file__, "ratio": statistics.median(ratios)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="src/ of the code to compare")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--variant", choices=("target", "noid"), default="target")
    parser.add_argument("--n", type=int, default=N, help="requests per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.variant, args.n, args.rounds)
        return 0
    if not (args.base / "auditmw" / "__init__.py").is_file():
        parser.error(f"--base {args.base}: no auditmw package there (pass a checkout's src/)")
    results: dict[str, list[float]] = {"base": [], "this checkout": []}
    command = [sys.executable, "-m", "benchmarks.ab", "--child", "--base", str(args.base)]
    command += ["--variant", args.variant, "--n", str(args.n), "--rounds", str(args.rounds)]
    for pair in range(1, args.pairs + 1):
        for label, path in (("base", str(args.base.resolve())), ("this checkout", "")):
            env = dict(os.environ, PYTHONPATH=path)
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            ratio = json.loads(out.stdout.strip().splitlines()[-1])["ratio"]
            results[label].append(ratio)
            print(f"pair {pair}/{args.pairs} {label:13s} {ratio:.2f}x bare", flush=True)
    for label, values in results.items():
        print(
            f"{label:13s} median {statistics.median(values):.2f}x bare "
            f"({min(values):.2f}-{max(values):.2f}) over {len(values)} runs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
