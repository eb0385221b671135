"""Benchmark: where the reference's precisions go, over the bundled suite run serially (on demand).

Every certified evaluation (`harness.reference.evaluate_certified`) starts at the dtype's
precision and rises until each result is certified; what has no finite ball at two precisions in a
row (a pole, a point outside the domain) goes straight to the last one (8192 bits), which decides
it for the members without a finite ball. This prints, for each precision, how many evaluations
ran there and their seconds, and the cases that spent the most at the last one.

    python benchmarks/precisions.py [folder ...]
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import harness.checks
import harness.reference as reference
from harness.cases import load_paths
from harness.run import Options, check_case


def main(folders: list[str]) -> None:
    by_bits: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    at_last: dict[str, float] = defaultdict(float)
    current = [""]
    certified = reference.evaluate_certified

    def timed(compute, make, fmt, reuse=True):
        def one(ref):
            start = time.perf_counter()
            try:
                return compute(ref)
            finally:
                spent = time.perf_counter() - start
                by_bits[ref.bits][0] += 1
                by_bits[ref.bits][1] += spent
                if ref.bits >= reference.MAX_PRECISION:
                    at_last[current[0]] += spent
        return certified(one, make, fmt, reuse)

    reference.evaluate_certified = timed
    harness.checks.evaluate_certified = timed  # (imported by name there)
    start = time.perf_counter()
    for case in load_paths(folders):
        current[0] = case.name
        check_case(case, Options())
    total = time.perf_counter() - start
    print(f"{' '.join(folders)}: {total:.1f} s serially")
    print("| bits | evaluations | seconds |\n|---|---|---|")
    for bits in sorted(by_bits):
        count, seconds = by_bits[bits]
        print(f"| {bits} | {int(count)} | {seconds:.2f} |")
    worst = sorted(at_last.items(), key=lambda kv: -kv[1])[:5]
    print("most time at the last precision: " + ", ".join(f"{name} {s:.2f} s" for name, s in worst))


if __name__ == "__main__":
    main(sys.argv[1:] or ["cases"])
