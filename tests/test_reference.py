from fractions import Fraction

import numpy as np
import pytest
import sympy

from harness.errors import HarnessError
from harness.expr import parse
from harness.numbers import FORMATS
from harness.ops import OPS
from harness.reference import PointReference, as_floats, constant_value, evaluate_certified, fold
from harness.symbolic import build_output

F64, F32 = FORMATS["float64"], FORMATS["float32"]


def reference(text, values, fmt=F64):
    shapes = {n: np.asarray(v, dtype=object).shape for n, v in values.items()}
    tree = fold(parse(text, ops=set(OPS), names=set(values)), fmt, {})
    outputs = {"y": build_output("y", tree, shapes, {})}
    exact = {n: np.asarray([Fraction(v) for v in np.ravel(x)], dtype=object).reshape(shapes[n])
             for n, x in values.items()}

    def make(bits, final):
        return PointReference(outputs, exact, fmt, bits, final)

    return make


def value_and_grad(text, values, fmt=F64):
    make = reference(text, values, fmt)
    results, _, ok = evaluate_certified(
        lambda ref: ref.values("y") + [d for row in ref.firsts("y") for _, d in row], make, fmt)
    return results, ok


def to_float_pair(x):
    floats = as_floats([x])
    return floats.hi[0], floats.lo[0]


def test_value_at_the_exact_binary_input():
    (value, grad), ok = value_and_grad("sin(x)", {"x": 0.1})
    assert ok
    hi, lo = to_float_pair(value)
    import mpmath

    mpmath.mp.prec = 200
    exact = mpmath.sin(mpmath.mpf(0.1))  # at the double 0.1, not the decimal
    assert abs(mpmath.mpf(hi) + mpmath.mpf(lo) - exact) < mpmath.mpf(2) ** -100
    assert to_float_pair(grad)[0] == float(mpmath.cos(mpmath.mpf(0.1)))


def test_precision_rises_until_certified():
    # log(1 + exp(-800)) needs about 1200 bits before the ball is narrow enough
    (value,), floats, ok = evaluate_certified(lambda ref: ref.values("y"), reference("softplus(x)", {"x": -800.0}), F64)
    assert ok and floats.certified(F64).all()
    assert to_float_pair(value)[0] == pytest.approx(float(sympy.exp(-800).evalf(30)), rel=1e-15)


def test_kink_flags_the_point_and_uses_torch_convention():
    (value, grad), ok = value_and_grad("relu(x)", {"x": 0.0})
    assert not value.kink and to_float_pair(value)[0] == 0.0
    assert grad.kink and to_float_pair(grad)[0] == 0.0
    (_, away), _ = value_and_grad("relu(x)", {"x": 1e-300})
    assert not away.kink and to_float_pair(away)[0] == 1.0


def test_outside_the_domain_is_undefined():
    (value, grad), _ = value_and_grad("log(x)", {"x": -1.0})
    assert value.undefined and grad.undefined


def test_derivative_where_the_value_is_undefined_is_poisoned():
    (value, grad_x, grad_y), _ = value_and_grad("x + log(y)", {"x": 1.0, "y": 0.0})
    assert value.undefined and grad_x.undefined and grad_y.undefined


def test_error_model_sees_cancellation_in_the_tree():
    # (x + 1) - x is exactly 1, but torch computes 0 at x = 1e20: the bound must allow that
    (value,), _, _ = evaluate_certified(lambda ref: ref.values("y"), reference("(x + 1) - x", {"x": 1e20}), F64)
    assert to_float_pair(value)[0] == 1.0
    assert float(value.bound.upper()) >= 1.0
    # ... while an isolated function is held to a few ulps of its own value
    (single,), _, _ = evaluate_certified(lambda ref: ref.values("y"), reference("exp(x)", {"x": 1.0}), F64)
    assert float(single.bound.upper()) < 1e-14


def test_constant_value_rounds_once():
    assert constant_value(parse("1/3", ops=set(OPS), names=set()), F32) == Fraction(float(np.float32(1 / 3)))
    assert constant_value(parse("pi", ops=set(OPS), names=set()), F64) == Fraction(np.pi)
    with pytest.raises(HarnessError, match="overflows float32"):
        constant_value(parse("exp(100)", ops=set(OPS), names=set()), F32)
    with pytest.raises(HarnessError, match="not a finite real"):
        constant_value(parse("log(-1)", ops=set(OPS), names=set()), F64)
