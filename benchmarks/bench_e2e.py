"""End to end under uvicorn: throughput and latency of each ASGI variant, as ratios to bare.

    python -m benchmarks.bench_e2e [--quick]

Every variant of :mod:`benchmarks.bench_asgi` is served by its own uvicorn process
(one worker, loopback, no access log unless the variant is about it); all servers
start first, then a load generator in another process drives them in interleaved
rounds (ABC, BCA, ...), a fixed duration each.  The load generator is ``wrk`` when
it is on ``PATH``, otherwise a bounded Python generator (threads, keep-alive
connections) that costs more CPU per request than ``wrk``; the report says which.  Every
server is stopped by its PID in a ``finally``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Section, percentile, versions
from benchmarks.bench_asgi import HEADERS

#: variant name -> how the server builds it (see :func:`build_app`).
VARIANTS = {
    "bare": "bare",
    "bare + uvicorn access log": "access-log",
    "no-op pure-ASGI middleware": "noop",
    "asgi-correlation-id": "correlation-id",
    "OpenTelemetry ASGI (in-memory exporter)": "otel",
    "auditmw (metadata, JWT cached, chain, file)": "auditmw",
}
QUICK = ("bare", "no-op pure-ASGI middleware", "auditmw (metadata, JWT cached, chain, file)")
PATH = "/orders/42"


def build_app(kind: str, tmp: Path) -> Any:
    """The ASGI application of one variant (run inside the server process)."""
    from benchmarks import bench_asgi

    if kind in ("bare", "access-log"):
        return bench_asgi.bare_app()
    if kind == "noop":
        return bench_asgi.NoOpMiddleware(bench_asgi.bare_app())
    if kind == "correlation-id":
        return bench_asgi.correlation_id_app()
    if kind == "otel":
        app, clear = bench_asgi.otel_app()
        # The in-memory exporter keeps every span: clear it now and then, off the timing.
        _every(5.0, clear)
        return app
    if kind == "auditmw":
        return bench_asgi.audited(tmp, "e2e")[0]
    raise SystemExit(f"unknown variant {kind!r}")


def _every(seconds: float, func: Any) -> None:
    def loop() -> None:
        while True:
            time.sleep(seconds)
            func()

    threading.Thread(target=loop, daemon=True).start()


def serve(kind: str, port: int) -> None:
    """Server process entry point: uvicorn, one worker, on 127.0.0.1:``port``."""
    import uvicorn

    with tempfile.TemporaryDirectory() as name:
        app = build_app(kind, Path(name))
        # uvicorn's access log is written at INFO: the level must let it through.
        logged = kind == "access-log"
        level = "info" if logged else "warning"
        uvicorn.run(app, host="127.0.0.1", port=port, log_level=level, access_log=logged)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", PATH, headers=HEADERS)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(port: int, connections: int, seconds: float) -> dict[str, float]:
    """One ``wrk`` run: requests/s, p50 and p99 latency (ms)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for key, value in HEADERS.items():
        # wrk recognises only "Host" as the host header: a lowercase one would be sent
        # twice (with its own), and the server would answer 400.
        command += ["-H", f"{'Host' if key == 'host' else key}: {value}"]
    command.append(f"http://127.0.0.1:{port}{PATH}")
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = re.search(r"(\d+) requests in", output)
    return {
        "requests": float(requests.group(1)) if requests else 0.0,
        "rps": rps,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def python_load(port: int, connections: int, seconds: float, limit: int) -> dict[str, float]:
    """Fallback load generator: ``connections`` keep-alive threads, bounded in time and count."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    per_thread = max(1, limit // connections)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(per_thread):
            if time.perf_counter() >= deadline:
                break
            start = time.perf_counter()
            conn.request("GET", PATH, headers=HEADERS)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.perf_counter() - started
    return {
        "requests": float(len(latencies)),
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": float(errors[0]),
    }


def load(port: int, connections: int, seconds: float, generator: str) -> dict[str, float]:
    """Drive ``port`` for ``seconds`` from another process and return its figures."""
    if generator == "wrk":
        return run_wrk(port, connections, seconds)
    command = [sys.executable, "-m", "benchmarks.bench_e2e", "--load", str(port)]
    command += ["--connections", str(connections), "--seconds", str(seconds)]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(port: int, pid: int, connections: int, seconds: float, generator: str) -> Any:
    """One load run, plus the server's CPU time per request (robust to a noisy machine).

    Raises:
        RuntimeError: some responses were not 2xx: the figures would time an error path.
    """
    before = cpu_seconds(pid)
    result = load(port, connections, seconds, generator)
    after = cpu_seconds(pid)
    if result["errors"]:
        raise RuntimeError(
            f"{result['errors']:.0f} of {result['requests']:.0f} responses on port {port} "
            "were not 2xx; the benchmark would measure an error path"
        )
    if before is not None and after is not None and result["requests"]:
        result["server_cpu_us"] = (after - before) / result["requests"] * 1e6
    return result


def start_servers(names: list[str]) -> dict[str, tuple[int, subprocess.Popen[bytes]]]:
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    for name in names:
        port = free_port()
        command = [sys.executable, "-m", "benchmarks.bench_e2e", "--serve", VARIANTS[name]]
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        servers[name] = (port, process)
    return servers


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop one server by its PID: SIGTERM, then SIGKILL if it does not exit."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def run(
    *, quick: bool, seconds: float | None = None, rounds: int | None = None, connections: int = 32
) -> Section:
    """Serve each variant, drive them in interleaved rounds, return the report section."""
    names = list(QUICK if quick else VARIANTS)
    seconds = seconds or (2.0 if quick else 5.0)
    rounds = rounds or (3 if quick else 5)
    generator = "wrk" if shutil.which("wrk") else "python"
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    servers = start_servers(names)
    try:
        for port, process in servers.values():
            wait_ready(port, process)
        for name in names:  # warm-up
            load(servers[name][0], connections, 1.0, generator)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                port, process = servers[name]
                samples[name].append(measured(port, process.pid, connections, seconds, generator))
    finally:
        for _port, process in servers.values():
            stop(process)
    return _section(samples, generator, connections, seconds, rounds)


def _per_round(samples: dict[str, list[dict[str, float]]], name: str, key: str) -> list[float]:
    return [s[key] / b[key] for s, b in zip(samples[name], samples["bare"], strict=True)]


def _cpu_ratio(samples: dict[str, list[dict[str, float]]], name: str) -> tuple[float, float] | None:
    """Median server CPU µs per request and its median per-round ratio to bare."""
    pairs = [
        (s["server_cpu_us"], b["server_cpu_us"])
        for s, b in zip(samples[name], samples["bare"], strict=True)
        if "server_cpu_us" in s and "server_cpu_us" in b
    ]
    if not pairs:
        return None
    return statistics.median(p[0] for p in pairs), statistics.median(p[0] / p[1] for p in pairs)


def _section(
    samples: dict[str, list[dict[str, float]]],
    generator: str,
    connections: int,
    seconds: float,
    rounds: int,
) -> Section:
    rows = [
        "| variant | requests/s | x bare throughput (median, min-max) | best rounds "
        "| p50 ms | p99 ms | x bare p99 (median) | best rounds | server CPU µs/request "
        "| x bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    data: dict[str, Any] = {}
    for name, runs in samples.items():
        rps, p99 = _per_round(samples, name, "rps"), _per_round(samples, name, "p99_ms")
        figures = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        # Best rounds: noise on a shared machine only lowers throughput and raises latency.
        best_rps = max(r["rps"] for r in runs) / max(r["rps"] for r in samples["bare"])
        best_p99 = min(r["p99_ms"] for r in runs) / min(r["p99_ms"] for r in samples["bare"])
        cpu = _cpu_ratio(samples, name)
        data[name] = {
            **figures,
            "rps_ratio": statistics.median(rps),
            "rps_ratio_min": min(rps),
            "rps_ratio_max": max(rps),
            "p99_ratio": statistics.median(p99),
            "best_rps_ratio": best_rps,
            "best_p99_ratio": best_p99,
            "server_cpu_ratio": cpu[1] if cpu else None,
            "runs": runs,
        }
        rows.append(
            f"| {name} | {figures['rps']:.0f} | **{statistics.median(rps):.2f}** "
            f"({min(rps):.2f}-{max(rps):.2f}) | {best_rps:.2f} | {figures['p50_ms']:.2f} | "
            f"{figures['p99_ms']:.2f} | **{statistics.median(p99):.2f}** | {best_p99:.2f} | "
            + (f"{cpu[0]:.0f} | **{cpu[1]:.2f}** |" if cpu else "n/a | n/a |")
        )
    how = (
        "wrk (1 thread)"
        if generator == "wrk"
        else "the Python fallback generator (threads + http.client, bounded to 200,000 "
        "requests; install wrk for sharper figures: it needs far less CPU per request)"
    )
    markdown = (
        f"uvicorn, 1 worker, loopback; load from {how}, {connections} connections, "
        f"{rounds} interleaved rounds of {seconds:g} s per variant after a 1 s warm-up.  "
        "Server CPU per request (from `/proc`, user + system, the delivery thread included) "
        "is the steadiest figure on a shared machine: throughput and latency move with "
        "whatever else runs.\n\n" + "\n".join(rows) + "\n"
    )
    section = Section("e2e", "End to end (uvicorn)", markdown)
    section.data = {"generator": generator, "connections": connections, "variants": data}
    section.data["versions"] = versions("uvicorn", "h11", "uvloop", "httptools")
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 variants, 3 rounds of 2 s")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
    elif args.load:
        result = python_load(args.load, args.connections, args.seconds, limit=200_000)
        print(json.dumps(result))
    else:
        print(run(quick=args.quick, connections=args.connections).render())


if __name__ == "__main__":
    main()
