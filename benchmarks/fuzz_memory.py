"""Benchmark: memory over one long fuzz campaign (run on demand).

Campaigns of seeds 1, 2, 3, ... in one process until `examples` examples in all (default ops,
float32 and float64, the fuzzer's checks, nothing saved, symbolic cache off; a campaign stops at its
first failure, after shrinking it, and the next seed goes on), with the process's resident memory
sampled every `every` examples (/proc/self/statm: what the process holds now, not its peak). Flat
means: after the first samples (imports, the first compilations) the resident size stops growing
with the number of examples.

    python benchmarks/fuzz_memory.py [examples] [every]   (default 10000 1000)
"""

from __future__ import annotations

import os
import sys
import time

from harness import cache
from harness.fuzz import fuzz

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def main(examples: int, every: int) -> None:
    cache.use(None)
    done, seed, found = 0, 0, 0
    last = [0]
    start = time.perf_counter()

    def progress(n: int) -> None:
        total = done + n
        if total // every > last[0] // every:
            print(f"| {total} | {seed} | {time.perf_counter() - start:.0f} | {resident_mb():.0f} |", flush=True)
        last[0] = total

    print("| examples | seed | seconds | resident MB |")
    print("|---|---|---|---|")
    print(f"| 0 | - | 0 | {resident_mb():.0f} |", flush=True)
    while done < examples:
        seed += 1
        report = fuzz(seed=seed, max_examples=examples - done, save=None, progress=progress)
        done += report.examples
        found += report.failure is not None
    seconds = time.perf_counter() - start
    print(f"\n{done} examples in {seconds:.0f} s ({done / seconds:.1f}/s), seeds 1-{seed}, {found} failures found")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [10_000, 1_000][len(args):]))
