"""Policy matching cost as rules grow: 1, 10, 100, 1000 rules, the matching rule last.

    python -m benchmarks.bench_policy

Prints, per request kind, the median time of ``Policy.decide`` and its ratio to
the 1-rule policy (interleaved rounds, medians), plus a linear scan of the same
1000 rules for comparison.  About 15 s.
"""

from __future__ import annotations

import time
from typing import Any

from auditmw.event import ANONYMOUS, Exchange, Headers
from auditmw.policy import Policy
from benchmarks._harness import interleave, ratios, versions

SIZES = (1, 10, 100, 1000)


def document(size: int, last: dict[str, Any]) -> dict[str, Any]:
    """``size - 1`` rules that never match the benchmarked request, then ``last``, which does."""
    rules: list[dict[str, Any]] = []
    for i in range(size - 1):
        if i % 3 == 0:
            rules.append({"id": f"r{i}", "routes": [f"/svc{i}/{{item_id}}"], "level": "request"})
        elif i % 3 == 1:
            rules.append(
                {"id": f"p{i}", "methods": ["POST"], "paths": [f"/p{i}/**"], "level": "none"}
            )
        else:
            rules.append({"id": f"m{i}", "paths": [f"/m{i}/*/items"], "level": "metadata"})
    return {"rules": [*rules, last]}


def exchange(path: str, route: str | None) -> Exchange:
    return Exchange(
        event_id="e", kind="http", method="GET", path=path, headers=Headers(mapping={}),
        start_ns=0, start_mono=0, route=route, status=200,
    )  # fmt: skip


def decide_round(policy: Policy, ex: Exchange, expected: str) -> Any:
    decide = policy.decide
    assert decide(ex, ANONYMOUS).rule == expected

    def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            decide(ex, ANONYMOUS)
        return time.perf_counter_ns() - start

    return run


def scan_round(policy: Policy, ex: Exchange, expected: str) -> Any:
    rules = policy.rules
    (found,) = [r for r in rules if r.matches(ex, ANONYMOUS)][:1]
    assert found.id == expected

    def run(n: int) -> int:
        # The scan is ~500x slower: time 1/100 of the iterations and scale up.
        start = time.perf_counter_ns()
        for _ in range(max(1, n // 100)):
            for rule in rules:
                if rule.matches(ex, ANONYMOUS):
                    break
        return (time.perf_counter_ns() - start) * (n // max(1, n // 100))

    return run


ORDERS = {"id": "last", "methods": ["GET"], "routes": ["/orders/{order_id}"], "level": "request"}
FILES = {"id": "last", "paths": ["/files/**"], "level": "metadata"}


def main() -> None:
    print(versions("auditmw"))
    cases = {
        "route /orders/{order_id}": (exchange("/orders/42", "/orders/{order_id}"), ORDERS),
        "path glob /files/** (request /files/a/b.pdf)": (exchange("/files/a/b.pdf", None), FILES),
    }
    for label, (ex, last) in cases.items():
        policies = {size: Policy(document(size, last)) for size in SIZES}
        variants = {f"{size} rules": decide_round(p, ex, "last") for size, p in policies.items()}
        variants["1000 rules, linear scan"] = scan_round(policies[1000], ex, "last")
        results = interleave(variants, n=10_000, rounds=9)
        print(f"\n{label}: Policy.decide, matching rule last")
        print("| rules | ns/decision (median) | ratio to 1 rule (median, min-max) |")
        print("|---|---:|---:|")
        for name, (median, low, high) in ratios(results, "1 rules").items():
            ns = results[name].median
            print(f"| {name} | {ns:.0f} | {median:.2f} ({low:.2f}-{high:.2f}) |")


if __name__ == "__main__":
    main()
