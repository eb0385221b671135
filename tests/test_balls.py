"""Batch evaluation in Arb balls: the shortcuts the reference takes must give the same enclosures."""

import itertools
import math

import numpy as np
import pytest
import sympy
from flint import arb

from harness.balls import (
    HUGE,
    ZERO,
    Batch,
    all_but,
    closed,
    precision,
    underflow,
    upward,
)
from harness.numbers import FORMATS

F64 = FORMATS["float64"]


def test_fused_sums_and_products_agree_with_one_pass_per_operand():
    """closed() adds and multiplies up to four operands in one pass: the same operations, in order."""
    symbols = sympy.symbols("a0:9", real=True)
    columns = [[arb(3 * k + j + 1) / 7 for k in range(5)] for j in range(9)]
    for n in range(2, 10):
        for expr, op in ((sympy.Add(*symbols[:n]), lambda x, y: x + y), (sympy.Mul(*symbols[:n]), lambda x, y: x * y)):
            order = [symbols.index(a) for a in expr.args]  # SymPy's order of the operands
            naive = columns[order[0]]
            for i in order[1:]:
                naive = [op(x, y) for x, y in zip(naive, columns[i])]
            fused = closed(expr, symbols[:n])(Batch(columns[:n], 5))
            assert all(a.mid() == b.mid() and a.rad() == b.rad() for a, b in zip(fused, naive))


def test_the_product_of_all_but_one_factor_from_prefixes_and_suffixes():
    primes = [(2, 3, 5), (7, 11, 13), (17, 19, 23), (29, 31, 37), (41, 43, 47)]
    sizes = [upward.magnitudes([arb(p) for p in row]) for row in primes]
    for k in range(1, 6):
        for r in range(1, k + 1):
            for wanted in itertools.combinations(range(k), r):
                for i, others in zip(wanted, all_but(sizes[:k], list(wanted))):
                    expected = [math.prod(primes[j][m] for j in range(k) if j != i) for m in range(3)]
                    got = upward.to_floats(others)
                    assert (got >= expected).all() and (got <= np.array(expected) * (1 + 1e-12)).all()


def test_float_magnitudes_are_made_once_per_column():
    batch = Batch([[arb(-2), arb(3)]], 2)
    column = [arb(-1.5), arb(2)]
    first = batch.mag(column)
    assert batch.mag(column) is first and batch.mag([arb(-1.5), arb(2)]) is not first
    assert (upward.to_floats(first) >= [1.5, 2.0]).all()


def test_constants_once_per_batch_and_one_reciprocal_per_base():
    x = sympy.Symbol("x", real=True)
    expr = sympy.exp(-x**2) / sympy.sqrt(sympy.pi) + (x**2 + 1) ** -1 + (x**2 + 1) ** -2 + (x**2 + 1) ** -3
    form = closed(expr, (x,))
    points = [0.25, -1.5, 3.0]
    with precision(200):
        batch = Batch([[arb(v) for v in points]], 3)
        got = form(batch)
        constant = closed(1 / sympy.sqrt(sympy.pi), (x,))(batch)
        assert all(c is constant[0] for c in constant)  # one ball, shared by every member
        for v, ball in zip(points, got):
            a = arb(v)
            d = a * a + 1
            want = (-(a * a)).exp() / arb.pi().sqrt() + 1 / d + 1 / (d * d) + 1 / (d * d * d)
            assert ball.overlaps(want) and ball.rad() < arb(2) ** -150


def test_exp_takes_the_fast_path_only_where_the_guards_would_not_fire():
    x = sympy.Symbol("x", real=True)
    form = closed(sympy.exp(x), (x,))
    with precision(85):
        values = [arb(0.5), arb(-700.0), arb(2.0**18), HUGE * 2, -HUGE * 2]
        got = form(Batch([values], len(values)))
        assert all(g.overlaps(v.exp()) for g, v in zip(got[:3], values))
        assert got[3] == arb.pos_inf()
        assert got[4].contains(0) and got[4].rad() < arb(2) ** -2000000  # not computed digit by digit


@pytest.mark.parametrize("value, incoming, charged", [
    (arb(3), 0.0, False),  # normal: u covers it
    (arb(2) ** -1030, 0.0, True),  # subnormal in float64
    (ZERO, 0.0, False),  # an exact 0 from exact inputs stays exact
    (ZERO, 2.0**-1000, True),  # a 0 that carries an error may be a subnormal
])
@pytest.mark.parametrize("roundings", [1, 2, 3])
def test_roundings_to_subnormals_are_charged_where_they_can_happen(value, incoming, charged, roundings):
    batch = Batch([[ZERO]], 1, arb(2) ** -53, F64)
    with precision(200):
        bound = underflow(np.array([upward.log(incoming)]), [value], batch, roundings)
    got = float(upward.to_floats(bound)[0])
    if not charged:
        assert got == upward.to_float(upward.log(incoming))
        return
    # roundings times half the smallest subnormal (2^-1075, no float64: rounded up to 2^-1074 units)
    assert got >= incoming + roundings * 2.0**-1075
    assert got <= (incoming + math.ceil(roundings / 2) * 2.0**-1074) * (1 + 1e-10) + 2.0**-1074  # (the slack)


def test_caches_keyed_by_expressions_are_bounded():
    """A fuzz campaign draws a new expression per example: a cache keyed by expressions must evict
    (benchmarks/fuzz_memory.py measures the resident size flat over 10,000 examples)."""
    from harness import balls, reference

    for fn in (balls.closed, balls.compile_modelled, balls.compile_jets, balls.tree_depth, reference._subexpressions):
        assert fn.cache_parameters()["maxsize"] is not None, fn.__name__
    assert balls.closed.cache_parameters()["maxsize"] == balls.EXPRESSIONS
    assert balls.tree_depth.cache_parameters()["maxsize"] == balls.SUBTREES
