"""Benchmark: fuzzing throughput, cases per second (run on demand).

Five campaigns (seeds 1-5) of random expressions over the accurate elementwise ops, float32 and
float64, the fuzzer's seven checks at each drawn point; nothing is saved.

    python benchmarks/fuzz_throughput.py [examples per seed]
"""

from __future__ import annotations

import sys

from harness import cache
from harness.fuzz import fuzz


def main(examples: int) -> None:
    cache.use(None)
    total, seconds = 0, 0.0
    print("| seed | cases | seconds | cases/s | statuses |")
    print("|---|---|---|---|---|")
    for seed in range(1, 6):
        report = fuzz(seed=seed, max_examples=examples, save=None)
        total, seconds = total + report.examples, seconds + report.seconds
        print(f"| {seed} | {report.examples} | {report.seconds:.1f} | {report.per_second:.0f} |"
              f" {dict(sorted(report.statuses.items()))} |", flush=True)
    print(f"| all | {total} | {seconds:.1f} | {total / seconds:.0f} | |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
