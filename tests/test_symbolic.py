from fractions import Fraction

import sympy

from harness.catalogue import OPS
from harness.expr import parse
from harness.symbolic import build_output


def build(text, shapes, constants=None):
    tree = parse(text, ops=set(OPS), names=set(shapes) | set(constants or {}))
    from harness.numbers import FORMATS
    from harness.reference import fold

    return build_output("y", fold(tree, FORMATS["float64"], constants or {}), shapes, {})


def test_elementwise_output_is_built_once_for_any_size():
    out = build("x*x - 2*x + 1", {"x": (1000,)})
    assert out.elementwise and out.shape == (1000,) and len(out.terms) == 1
    x = sympy.Symbol("x", real=True)
    assert out.gradient(0) == ((x, 2 * x - 2),)
    assert out.hessian(0) == ((x, x, 2),)
    assert out.binding(999) == {x: ("x", 999)}


def test_broadcasting_binds_the_right_elements():
    out = build("a*b", {"a": (2, 3), "b": (3,)})
    a, b = sympy.symbols("a b", real=True)
    assert out.shape == (2, 3)
    assert out.binding(4) == {a: ("a", 4), b: ("b", 1)}


def test_tree_keeps_torch_structure_while_expr_simplifies():
    out = build("(x + 1) - x", {"x": ()})
    assert out.term(0).expr == 1
    assert out.term(0).tree != 1 and out.term(0).tree.args  # the unevaluated subtraction stays


def test_general_mode_for_reductions_matmul_and_indexing():
    out = build("sum(x*x) + x[0]*y", {"x": (3,), "y": ()})
    assert not out.elementwise and out.shape == ()
    grads = dict(out.gradient(0))
    x0 = sympy.Symbol("x[0]", real=True)
    y = sympy.Symbol("y", real=True)
    assert grads[x0] == 2 * x0 + y and grads[y] == x0
    mm = build("A @ v", {"A": (2, 2), "v": (2,)})
    assert mm.shape == (2,) and len(mm.terms) == 2


def test_mean_over_a_dimension():
    out = build("mean(A, dim=1)", {"A": (2, 3)})
    a00 = sympy.Symbol("A[0,0]", real=True)
    assert out.shape == (2,)
    assert dict(out.gradient(0))[a00] == sympy.Rational(1, 3)


def test_constants_fold_to_the_dtype():
    out = build("a*x", {"x": ()}, {"a": Fraction(1, 3)})
    coefficient = out.term(0).expr.as_coeff_Mul()[0]
    assert coefficient == sympy.Rational(Fraction(1 / 3))  # the float64 nearest 1/3, not 1/3
