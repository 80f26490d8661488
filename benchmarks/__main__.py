"""Run the whole benchmark suite and write ``results.md`` and ``results.json``.

    python -m benchmarks [--quick] [--only asgi,wsgi,e2e,components] [--out benchmarks/results]

Parts: ``asgi`` (in-process Starlette: auditmw against the bare app and the
alternatives), ``wsgi`` (in-process Flask), ``e2e`` (uvicorn driven by wrk or a
Python load generator), ``components`` (the per-topic scripts).  ``--quick``
finishes in about a minute; the full run takes a few minutes.  Every figure is a
ratio measured within this run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks._harness import Section, environment, write_results

PARTS = ("asgi", "wsgi", "e2e", "components")


def run_part(part: str, args: argparse.Namespace) -> Section:
    """Run one part of the suite."""
    if part == "asgi":
        from benchmarks import bench_asgi

        return bench_asgi.run(quick=args.quick, n=args.n, rounds=args.rounds)
    if part == "wsgi":
        from benchmarks import bench_wsgi

        return bench_wsgi.run(quick=args.quick, n=args.n, rounds=args.rounds)
    if part == "e2e":
        from benchmarks import bench_e2e

        return bench_e2e.run(quick=args.quick, seconds=args.seconds, rounds=args.rounds)
    from benchmarks import _components

    return _components.run(quick=args.quick)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts ({','.join(PARTS)})"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--n", type=int, help="requests per round (in-process parts)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, help="seconds per end-to-end run")
    args = parser.parse_args(argv)
    args.parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; choose from {PARTS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    env = environment(command.strip())
    print(f"{env['date']} | load {env['load_average']} | {env['versions']}\n", flush=True)
    sections = []
    for part in args.parts:
        start = time.perf_counter()
        section = run_part(part, args)
        section.data["seconds"] = round(time.perf_counter() - start, 1)
        print(section.render(), flush=True)
        sections.append(section)
    md, js = write_results(args.out, env, sections)
    print(f"written: {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
