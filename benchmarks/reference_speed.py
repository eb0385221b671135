"""Benchmark: the certified exact reference, in microseconds per point (run on demand).

For f(x) = log(1 + exp(sin(x)*x**2))/(1 + x**2) + tanh(x)*erf(x) at n float64 points:

- f, f' and f'' as Arb balls, evaluated as one batch (each subexpression once): proven enclosures;
- the same converted to floats (midpoint as hi + lo) and checked narrower than 2**-12 ulp;
- the whole reference a check uses: the same values plus the error model's bound for each and
  the magnitudes of the chain rule's terms (harness.reference.PointReference).

    python benchmarks/reference_speed.py [n]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import sympy
from flint import arb

from harness import cache
from harness.balls import Batch, closed, precision
from harness.catalogue import OPS
from harness.expr import parse
from harness.numbers import FORMATS
from harness.reference import ZERO, Exact, PointReference, as_floats, evaluate_certified, fold, start_precision
from harness.symbolic import build_output

EXPR = "log(1 + exp(sin(x)*x**2))/(1 + x**2) + tanh(x)*erf(x)"
F64 = FORMATS["float64"]


def setup(n: int):
    points = np.random.default_rng(0).uniform(-3, 3, n)
    tree = fold(parse(EXPR, ops=set(OPS), names={"x"}), F64, {})
    out = build_output("y", tree, {"x": (n,)}, {})
    (s, d1), = out.gradient(0)
    (_, _, d2), = out.hessian(0)
    return points, out, [out.term(0).expr, d1, d2], (s,)


def balls(points: np.ndarray, exprs: list, symbols: tuple) -> list:
    with precision(start_precision(F64)):
        batch = Batch([[arb(v) for v in points.tolist()]], len(points))
        return [closed(e, symbols)(batch) for e in exprs]


def certified_values(points: np.ndarray, exprs: list, symbols: tuple) -> bool:
    columns = balls(points, exprs, symbols)
    floats = as_floats([Exact(v, ZERO) for column in columns for v in column])
    return bool(floats.certified(F64).all())


def whole_reference(points: np.ndarray, out) -> bool:
    values = {"x": points}
    _, floats, ok = evaluate_certified(
        lambda ref: ref.values("y") + [d for row in ref.firsts("y") for _, d in row]
        + [d for row in ref.seconds("y") for _, _, d in row],
        lambda bits, final: PointReference({"y": out}, values, F64, bits, final), F64)
    return ok


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        assert fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int) -> None:
    cache.use(None)
    points, out, exprs, symbols = setup(n)
    print(f"f = {EXPR}; sympy {sympy.__version__}; n = {n} float64 points in [-3, 3], best of 5")
    t = best(lambda: balls(points, exprs, symbols))
    print(f"f, f', f'' as Arb balls (proven enclosures):   {t / n * 1e6:6.1f} us/point")
    t = best(lambda: certified_values(points, exprs, symbols))
    print(f"... as floats, each checked under 2^-12 ulp:   {t / n * 1e6:6.1f} us/point")
    t = best(lambda: whole_reference(points, out))
    print(f"the whole reference (bounds, term magnitudes): {t / n * 1e6:6.1f} us/point")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
