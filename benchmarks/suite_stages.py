"""Benchmark: the bundled suite, serially: total time, time per case, and where the time goes.

Stages are harness.timing's: parse, symbolic, reference, torch, compare, report (each stage's own
time; the rest is the harness's glue). Run on demand, not in CI:

    python benchmarks/suite_stages.py [folder ...]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.cases import load_paths
from harness.cli import write_reports
from harness.run import Options, check_case
from harness.timing import STAGES, STOPWATCH


def run(folders: list[str]) -> None:
    STOPWATCH.reset()
    start = time.perf_counter()
    cases = load_paths(folders)
    per_case: list[tuple[float, str]] = []
    results = []
    for case in cases:
        began = time.perf_counter()
        results += check_case(case, Options())
        per_case.append((time.perf_counter() - began, case.name))
    with tempfile.TemporaryDirectory() as folder:
        write_reports(results, Path(folder))
    total = time.perf_counter() - start
    seconds = [s for s, _ in per_case]
    print(f"{len(cases)} cases ({len(results)} case-dtype results) in {total:.2f} s;"
          f" per case: mean {statistics.mean(seconds) * 1e3:.0f} ms, median {statistics.median(seconds) * 1e3:.0f} ms,"
          f" max {max(seconds) * 1e3:.0f} ms")
    print("slowest:", ", ".join(f"{name} {s:.2f} s" for s, name in sorted(per_case, reverse=True)[:5]))
    print()
    print("| stage | seconds | share |")
    print("|---|---|---|")
    accounted = 0.0
    for name in STAGES:
        s = STOPWATCH.seconds[name]
        accounted += s
        print(f"| {name} | {s:.2f} | {s / total:.0%} |")
    print(f"| other (glue) | {total - accounted:.2f} | {(total - accounted) / total:.0%} |")
    print(f"| total | {total:.2f} | 100% |")


if __name__ == "__main__":
    run(sys.argv[1:] or ["cases"])
