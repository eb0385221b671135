"""harness.balls.upward: float bounds (as logarithms) that are never below the exact value of the
same formula, whatever the range of the terms, and that keep an exact 0 exact."""

import math
import random

import numpy as np
from flint import arb

from harness.balls import precision, upward

BITS = 300


def _exact(b: np.ndarray) -> list:
    """The bounds as exact balls: 2^L with L the float the array holds."""
    return [arb(2) ** arb(float(v)) if np.isfinite(v) else (arb(0) if v < 0 else arb.pos_inf()) for v in b]


def _balls(rng: random.Random, n: int) -> list:
    """Positive balls from 2^-1200 to 2^1200: far past float64's range both ways, and normal ones."""
    return [arb(rng.uniform(0.5, 1)) * arb(2) ** rng.randint(-1200, 1200) * arb(3).sqrt() for _ in range(n)]


def _at_least(bounds: np.ndarray, exact: list, slack: float = 1e-9) -> None:
    for b, x in zip(_exact(bounds), exact):
        assert b >= x, (b, x)  # never smaller
        assert b <= x * (1 + arb(slack)), (b, x)  # and not loose


def test_magnitudes_bound_balls_from_above_in_and_past_float64_range():
    rng = random.Random(1)
    with precision(BITS):
        column = _balls(rng, 400) + [-x for x in _balls(rng, 100)]
        _at_least(upward.magnitudes(column), [abs(x).upper() for x in column])
        low = upward.lower_magnitudes(column)
        assert all(b <= abs(x).lower() for b, x in zip(_exact(low), column))


def test_magnitudes_of_balls_at_the_edge_of_the_narrow_path_still_bound_them():
    """A ball whose radius is near 2^-51 of its midpoint (where magnitudes stops reading the midpoint
    as a float and asks for the exact upper end), at midpoints that a float rounds down, and wide
    balls: every bound is at least the ball's upper end."""
    rng = random.Random(2)
    with precision(BITS):
        column = []
        for _ in range(600):
            mid = (1 + arb(2) ** -53 + arb(2) ** -rng.randint(54, 80)) * arb(2) ** rng.randint(-1000, 1000)
            column.append(arb(mid, abs(mid) * arb(2) ** -rng.uniform(40, 60)) * rng.choice((1, -1)))
        column += [arb(rng.uniform(-3, 3), rng.uniform(0, 2)) for _ in range(50)]  # wide, some about 0
        _at_least(upward.magnitudes(column), [abs(x).upper() for x in column])


def test_zero_nan_and_infinity():
    with precision(BITS):
        m = upward.magnitudes([arb(0), arb.nan(), arb.pos_inf(), arb(0, 1)])
    assert m[0] == -math.inf and m[1] == math.inf and m[2] == math.inf
    assert upward.to_floats(m[3:])[0] >= 1.0  # a ball around 0: its radius
    assert upward.lower_magnitudes([arb(0, 1)])[0] == -math.inf


def test_sums_products_and_quotients_stay_above_the_exact_ones():
    rng = random.Random(2)
    with precision(BITS):
        a, b, c = _balls(rng, 300), _balls(rng, 300), _balls(rng, 300)
        la, lb, lc = (upward.magnitudes(x) for x in (a, b, c))
        _at_least(upward.add(la, lb, lc), [x + y + z for x, y, z in zip(a, b, c)])
        _at_least(upward.mul(la, lb), [x * y for x, y in zip(a, b)])
        _at_least(upward.div(la, upward.lower_magnitudes(b)), [x / y for x, y in zip(a, b)])
        _at_least(upward.scale(3.5, la), [3.5 * x for x in a])
        _at_least(upward.maximum([la, lb]), [arb.max(x, y) for x, y in zip(a, b)])


def test_one_member_batches_take_the_same_arithmetic_on_floats():
    """Batches of one (each element its own expression) go through Python floats, not numpy."""
    rng = random.Random(3)
    with precision(BITS):
        a, b, c = _balls(rng, 60), _balls(rng, 60), _balls(rng, 60)
        for x, y, z in zip(a, b, c):
            lx, ly, lz = (upward.magnitudes([v]) for v in (x, y, z))
            _at_least(lx, [abs(x).upper()])
            _at_least(upward.add(lx, ly, lz), [x + y + z])
            _at_least(upward.mul(lx, ly), [x * y])
            _at_least(upward.div(lx, upward.lower_magnitudes([y])), [x / y])
            _at_least(upward.scale(3.5, lx), [3.5 * x])
    zero, none = upward.zeros(1), np.array([math.inf])
    assert upward.add(zero, zero)[0] == -math.inf and upward.mul(zero, upward.ones(1))[0] == -math.inf
    assert upward.mul(zero, none)[0] == math.inf and upward.div(zero, zero)[0] == math.inf
    assert upward.add(none, zero)[0] == math.inf and upward.add(zero, none)[0] == math.inf
    assert upward.magnitudes([arb(0)])[0] == -math.inf and upward.magnitudes([arb.nan()])[0] == math.inf


def test_an_exact_zero_stays_exact_and_no_bound_stays_none():
    zero, one, none = upward.zeros(1), upward.ones(1), np.array([math.inf])
    assert upward.add(zero, zero)[0] == -math.inf and upward.mul(zero, one)[0] == -math.inf
    assert upward.add(zero, one)[0] >= 0 and upward.to_floats(upward.add(zero, one))[0] < 1 + 1e-12
    assert upward.mul(zero, none)[0] == math.inf  # 0 * inf: no finite bound
    assert not upward.nonzero(zero)[0] and upward.nonzero(one)[0] and not upward.bounded(none)[0]


def test_floats_out_are_rounded_up_with_a_subnormal_for_what_underflows():
    with precision(BITS):
        column = [arb(2) ** -1100, arb(3) * arb(2) ** -1074, arb(1) / 3, arb(2) ** 1100]
        floats = upward.to_floats(upward.magnitudes(column))
    assert floats[0] == 5e-324 and floats[1] >= 3 * 5e-324 and floats[3] == math.inf
    assert arb(float(floats[2])) >= arb(1) / 3
    assert upward.to_floats(upward.zeros(2)).tolist() == [0.0, 0.0]


def test_scalar_helpers():
    assert upward.fmul(0.0, 3.0) == 0.0 and upward.fmul(0.0, math.inf) == math.inf
    assert upward.fmul(1e-300, 1e-300) == 5e-324  # underflowed: the smallest subnormal
    assert upward.fadd(1e-320, 1e-320) == 1e-320 + 1e-320  # exact below the normal range
    assert arb(upward.fadd(0.1, 0.2)) >= arb(0.1) + arb(0.2)
    assert upward.of(arb(0)) == 0.0 and upward.of(arb(2) ** -1100) == 5e-324 and upward.of(arb.nan()) == math.inf


def test_a_nan_is_no_bound_on_every_path():
    nan, zero = np.array([math.nan]), upward.zeros(1)
    assert upward.add(zero, nan)[0] == math.inf and upward.add(nan, zero)[0] == math.inf  # one member
    assert upward.add(np.array([-math.inf, math.nan]), np.array([math.nan, 0.0])).tolist() == [math.inf, math.inf]
    assert upward.maximum([nan, np.array([0.0])])[0] == math.inf


def test_bounds_below_the_normal_range_go_out_as_whole_subnormals_rounded_up():
    logs = np.linspace(-1080, -1015, 4001)
    floats = upward.to_floats(logs)
    with precision(BITS):
        assert all(arb(float(f)) >= arb(2) ** arb(float(v)) for f, v in zip(floats, logs))
    assert (floats[logs < -1075] == 5e-324).all()
