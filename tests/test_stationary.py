"""The exact stationary point of a scalar output and its kind (what `minimize` compares the optimizer's
last iterate with)."""

import numpy as np
import sympy

from harness.catalogue import OPS
from harness.expr import parse
from harness.stationary import stationary_point
from harness.symbolic import build_output


def _solve(expr: str, start: dict[str, float]):
    names = list(start)
    out = build_output("y", parse(expr, ops=set(OPS), names=set(names)), {n: () for n in names}, {})
    return stationary_point(out, [np.array([v]) for v in start.values()], names)


def test_a_polynomial_s_point_is_exact_and_its_kind_from_the_hessian():
    values, kind = _solve("(x - 3)**2 + 2*(y + 0.5)**2", {"x": 0.0, "y": 0.0})
    assert values == [[sympy.Integer(3)], [sympy.Rational(-1, 2)]] and kind == "minimum"
    assert _solve("-(x**2) - y**2", {"x": 1.0, "y": 1.0})[1] == "maximum"
    assert _solve("x**2 - y**2", {"x": 1.0, "y": 1.0})[1] == "saddle point"


def test_a_transcendental_point_is_found_near_the_start_to_40_digits():
    values, kind = _solve("exp(x) - 2*x", {"x": 0.5})  # f' = exp(x) - 2: x = log 2
    (root,) = values[0]
    assert kind == "minimum" and abs(sympy.N(root - sympy.log(2), 50)) < sympy.Float(10) ** -38


def test_no_stationary_point_is_none():
    assert _solve("x + 1", {"x": 0.0}) is None  # the gradient never vanishes
