"""Benchmark: the harness against torch.autograd.gradcheck + gradgradcheck (run on demand, not in CI).

For elementwise sin over n float64 inputs: wall time of gradcheck + gradgradcheck (full and fast
mode) and of the harness (value, vjp, grad2: first and second derivatives), and the smallest relative
error in sin's backward that each one flags.

    python benchmarks/gradcheck_vs_harness.py [n ...]
"""

from __future__ import annotations

import sys
import time

import torch

from harness.cases import load_text
from harness.run import Options, check_case

CASE = """
name: sin-{n}
inputs: {{x: {{shape: [{n}], sample: {{uniform: [-3, 3]}}}}}}
expr: sin(x)
{target}checks: [value, vjp, grad2]
dtype: float64
"""


def scaled_sin(eps: float):
    class Sin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.sin(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.cos(x) * (1 + eps)

    return Sin.apply


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gradcheck_time(n: int, fast: bool) -> float:
    x = torch.linspace(-3, 3, n, dtype=torch.float64, requires_grad=True)
    return timed(lambda: (torch.autograd.gradcheck(torch.sin, (x,), fast_mode=fast),
                          torch.autograd.gradgradcheck(torch.sin, (x,), fast_mode=fast)), repeat=1 if n > 1000 else 3)


def harness_time(n: int) -> float:
    (case,) = load_text(CASE.format(n=n, target=""))
    return timed(lambda: check_case(case), repeat=1 if n > 1000 else 3)


def smallest_flagged_by_gradcheck() -> float:
    x = torch.linspace(-3, 3, 100, dtype=torch.float64, requires_grad=True)
    for eps in (1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2):
        try:
            ok = torch.autograd.gradcheck(scaled_sin(eps), (x,), raise_exception=False)
        except RuntimeError:
            ok = False
        if not ok:
            return eps
    return float("inf")


def smallest_flagged_by_harness() -> float:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    (folder / "bench_targets.py").write_text(
        "import torch\n"
        "def make(eps):\n"
        "    class Sin(torch.autograd.Function):\n"
        "        generate_vmap_rule = True\n"
        "        @staticmethod\n"
        "        def forward(x): return torch.sin(x)\n"
        "        @staticmethod\n"
        "        def setup_context(ctx, inputs, output): ctx.save_for_backward(inputs[0])\n"
        "        @staticmethod\n"
        "        def backward(ctx, g):\n"
        "            (x,) = ctx.saved_tensors\n"
        "            return g * torch.cos(x) * (1 + eps)\n"
        "    return Sin.apply\n"
        + "".join(f"sin_{i} = make({eps!r})\n" for i, eps in enumerate((1e-15, 1e-14, 1e-13, 1e-12, 1e-9))))
    sys.path.insert(0, str(folder))
    for i, eps in enumerate((1e-15, 1e-14, 1e-13, 1e-12, 1e-9)):
        text = CASE.format(n=100, target=f"target: bench_targets:sin_{i}\n").replace("[value, vjp, grad2]", "[vjp]")
        (case,) = load_text(text)
        (result,) = check_case(case, Options(allow_targets=True))
        if result.status == "fail":
            return eps
    return float("inf")


def main(sizes: list[int]) -> None:
    print(f"torch {torch.__version__}, float64, sin over n inputs; seconds (best of 3 below n = 1000)")
    print("| n | gradcheck + gradgradcheck (full) | (fast) | harness: value, vjp, grad2 |")
    print("|---|---|---|---|")
    for n in sizes:
        full = gradcheck_time(n, fast=False) if n <= 1000 else float("nan")
        fast = gradcheck_time(n, fast=True)
        ours = harness_time(n)
        print(f"| {n} | {full:.3f} | {fast:.3f} | {ours:.3f} |")
    print()
    print(f"smallest relative error in sin' flagged: gradcheck {smallest_flagged_by_gradcheck():g},"
          f" harness {smallest_flagged_by_harness():g}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000, 10000])
