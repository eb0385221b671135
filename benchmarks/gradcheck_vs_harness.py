"""Benchmark: the harness against torch.autograd.gradcheck + gradgradcheck (run on demand, not in CI).

For two elementwise functions over n float64 inputs (sin, and a composite of log, exp, sin,
tanh and erf): wall time of gradcheck + gradgradcheck (full and fast mode) and of the harness's
first- and second-order check (value, vjp, grad2: every autograd path, against the certified
reference with its error bounds), and the smallest relative error in sin's backward each one
flags. Times are the best of 5 runs (1 at n = 10000); the symbolic cache is off.

    python benchmarks/gradcheck_vs_harness.py [n ...]
"""

from __future__ import annotations

import sys
import time

import torch

from harness import cache
from harness.cases import load_text
from harness.run import Options, check_case

FUNCTIONS = {
    "sin": (torch.sin, "sin(x)"),
    "composite": (lambda t: torch.log(1 + torch.exp(torch.sin(t) * t**2)) / (1 + t**2) + torch.tanh(t) * torch.erf(t),
                  "log(1 + exp(sin(x)*x**2))/(1 + x**2) + tanh(x)*erf(x)"),
}

CASE = """
name: bench-{n}
inputs: {{x: {{shape: [{n}], sample: {{uniform: [-3, 3]}}, edges: none}}}}
expr: {expr}
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


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gradcheck_time(fn, n: int, fast: bool) -> float:
    x = torch.linspace(-3, 3, n, dtype=torch.float64, requires_grad=True)
    return timed(lambda: (torch.autograd.gradcheck(fn, (x,), fast_mode=fast),
                          torch.autograd.gradgradcheck(fn, (x,), fast_mode=fast)), repeat=1 if n > 1000 else 5)


def harness_time(expr: str, n: int) -> float:
    (case,) = load_text(CASE.format(n=n, expr=expr, target=""))
    (result,) = check_case(case)
    assert result.status == "pass", result.message
    return timed(lambda: check_case(case), repeat=1 if n > 1000 else 5)


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
    epsilons = (1e-15, 1e-14, 1e-13, 1e-12, 1e-9)
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
        + "".join(f"sin_{i} = make({eps!r})\n" for i, eps in enumerate(epsilons)))
    sys.path.insert(0, str(folder))
    for i, eps in enumerate(epsilons):
        text = CASE.format(n=100, expr="sin(x)", target=f"target: bench_targets:sin_{i}\n")
        (case,) = load_text(text.replace("[value, vjp, grad2]", "[vjp]"))
        (result,) = check_case(case, Options(allow_targets=True))
        if result.status == "fail":
            return eps
    return float("inf")


def main(sizes: list[int]) -> None:
    cache.use(None)
    print(f"torch {torch.__version__}, float64, n inputs in [-3, 3]; seconds, best of 5 (1 at n > 1000)")
    print("| function | n | gradcheck + gradgradcheck, full | fast | harness: value, vjp, grad2 |"
          " full / harness | harness / fast |")
    print("|---|---|---|---|---|---|---|")
    for label, (fn, expr) in FUNCTIONS.items():
        for n in sizes:
            full = gradcheck_time(fn, n, fast=False) if n <= 1000 else float("nan")
            fast = gradcheck_time(fn, n, fast=True)
            ours = harness_time(expr, n)
            print(f"| {label} | {n} | {full:.3f} | {fast:.4f} | {ours:.4f} | {full / ours:.1f} | {ours / fast:.1f} |",
                  flush=True)
    print()
    print(f"smallest relative error in sin' flagged: gradcheck {smallest_flagged_by_gradcheck():g},"
          f" harness {smallest_flagged_by_harness():g}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000, 10000])
