"""harness.forward: a traced forward against expr:, in ulps at every point, and a traced tree held
to the outputs the forward returned."""

from fractions import Fraction

import numpy as np

from harness.catalogue import OPS
from harness.expr import parse
from harness.forward import exact_values, forward_against_expr, unreproduced
from harness.numbers import FORMATS
from harness.reference import fold
from harness.symbolic import build_output

F64 = FORMATS["float64"]
XS = [0.3, -1.2, 2.5, 1e-300, 0.0]
POINTS = [{"x": np.array([Fraction(v) for v in XS], dtype=object)}]


def _output(text: str):
    tree = fold(parse(text, ops=set(OPS), names={"x"}), F64, {})
    return {"y": build_output("y", tree, {"x": (len(XS),)}, {})}


def _against(forward_text: str, expr_text: str):
    traced = exact_values(_output(forward_text), POINTS, F64)
    (comparison,) = forward_against_expr(traced, _output(expr_text), POINTS, F64, "c [float64]")
    return comparison


def test_the_same_function_passes_with_nothing_apart():
    c = _against("sin(x) * 2", "2 * sin(x)")
    assert c.status == "pass" and c.max_ulps == 0 and c.count == len(XS) and "equals expr:" in c.message


def test_under_one_ulp_apart_is_the_same_function_at_this_precision():
    c = _against("x / 10", "0.1 * x")  # 0.1 is float64's: 5.5e-17 relative from a tenth
    assert c.status == "pass" and 0 < c.max_ulps < 1 and "within" in c.message and "(under one)" in c.message


def test_a_constant_or_a_threshold_that_differs_fails_with_where_and_how_much():
    c = _against("1.0000001 * x", "x")
    assert c.status == "fail" and c.mismatched == 4 and c.max_ulps > 1e8  # every element but 0
    branch = _against("where(x > 0.5, x, 0)", "where(x > 0.2, x, 0)")
    assert branch.status == "fail" and branch.mismatched == 1 and "element 0: forward 0.0, expr 0.3" in branch.message
    assert branch.worst is not None and branch.worst.torch == 0.0 and branch.worst.exact == 0.3


def test_defined_against_undefined_is_a_difference():
    c = _against("log(x)", "log(abs(x))")  # log of a negative number is undefined, of its size is not
    assert c.status == "fail" and c.mismatched == 1


def test_the_traced_tree_must_give_what_the_forward_returned():
    traced = exact_values(_output("sin(x)"), POINTS, F64)
    returned = [(np.sin(np.array(XS)),)]
    assert unreproduced(traced, returned, POINTS, F64) == ""  # within the error model's bound
    wrong = [(np.cos(np.array(XS)),)]
    message = unreproduced(traced, wrong, POINTS, F64)
    assert "does not give the output 'y' it returned, at point 1 (x=[0.3, -1.2, 2.5, 1e-300]...) element 0" in message
    assert "please report it" in message and "\n" not in message
