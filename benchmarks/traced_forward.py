"""Benchmark: what the traced exact side costs a case with a target (run on demand).

A classic autograd.Function (tests/traced_functions.py: ScaledSin, SCALE * sin(x) * y) at n
points, value + vjp, symbolic cache off, each variant the best of `repeats` in one process after a
first run: with `expr:` (the forward is traced, held to its outputs and compared with expr:) and
without (the trace is the exact side).

    python benchmarks/traced_forward.py [n] [repeats]   (default 1000 5)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import traced_functions as tf  # noqa: E402

import harness  # noqa: E402
from harness import cache  # noqa: E402


def main(n: int, repeats: int) -> None:
    cache.use(None)
    x = torch.linspace(-3, 3, n, dtype=torch.float64)
    y = torch.linspace(0.5, 2, n, dtype=torch.float64)
    print(f"ScaledSin, n = {n}, value + vjp, float64, symbolic cache off; seconds (best of {repeats})")
    print("| exact side | seconds |")
    print("|---|---|")
    for label, keywords in (("expr: (forward traced and compared)", {"expr": "1.2345678901 * sin(x) * y"}),
                            ("traced from the forward", {})):
        harness.check(tf.ScaledSin, x=x, y=y, checks=["value", "vjp"], **keywords)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            (result,) = harness.check(tf.ScaledSin, x=x, y=y, checks=["value", "vjp"], **keywords)
            best = min(best, time.perf_counter() - start)
        assert result.status == "pass", result.message
        print(f"| {label} ({result.exact_side}) | {best:.3f} |")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [1000, 5][len(args):]))
