"""Batches of Arb balls (one column per symbol) and the small ball functions the others use:
safe arithmetic near the format's range, underflow scales, sums and products of columns."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import flint
import numpy as np
from flint import arb

from harness.balls.upward import fmul, magnitudes
from harness.catalogue.markers import Conventions
from harness.numbers import FloatFormat

ZERO = arb(0)
ONE = arb(1)
Column = list[arb]  # one ball per member of a batch


@contextmanager
def precision(bits: int) -> Iterator[None]:
    old = flint.ctx.prec
    flint.ctx.prec = bits
    try:
        yield
    finally:
        flint.ctx.prec = old


class Batch:
    """The balls of each symbol at n points, evaluated together; results memoized per node."""

    __slots__ = ("columns", "n", "memo", "u", "unit", "tiny", "normal", "edge", "log_largest",
                 "fmt", "conventions", "_children", "_mag")

    def __init__(self, columns: Sequence[Column], n: int, u: arb = ZERO, fmt: FloatFormat | None = None,
                 conventions: Conventions | None = None) -> None:
        self.columns, self.n, self.u, self.fmt = columns, n, u, fmt
        self.normal = _smallest_normal(fmt)  # below it a rounding errs by half the smallest subnormal
        self.edge = overflow_edge(fmt)  # results at least this large round to inf
        # for the error model's floats (harness.balls.upward): u, half the smallest subnormal (0 for
        # float64, where 2^-1075 is no float: see subnormal_charge), log2 of the largest finite number
        self.unit, self.tiny, self.log_largest = _float_scales(fmt)
        self.conventions = conventions or Conventions()
        self.memo: dict[object, object] = {}
        self._children: dict[tuple[int, ...], Batch] = {}
        self._mag: dict[int, tuple[Column, np.ndarray]] = {}

    @classmethod
    def point(cls, args: Sequence[arb]) -> Batch:
        return cls([[a] for a in args], 1)

    def subset(self, index: Sequence[int]) -> Batch:
        return Batch([[c[i] for i in index] for c in self.columns], len(index), self.u, self.fmt, self.conventions)

    def of(self, columns: Sequence[Column]) -> Batch:
        """A batch of the same size over other columns (an op's arguments, for its closed forms).

        The same columns give the same batch, so an op's value, partials and second partials share
        their subexpressions (tanh and 1 - tanh^2; exp(-x^2) in erf' and erf'')."""
        key = tuple(id(c) for c in columns)  # the child holds its columns: ids stay unique
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = Batch(columns, self.n, self.u, self.fmt, self.conventions)
        return child

    def subnormal_charge(self, roundings: float) -> float:
        """`roundings` times half the smallest subnormal of the format, rounded up to a float64."""
        if self.tiny > 0:
            return fmul(roundings, self.tiny)
        return math.ldexp(math.ceil(roundings / 2), -1074)  # float64's 2^-1075 is no float: 2^-1074 units

    def mag(self, column: Column) -> np.ndarray:
        """log2 of upper bounds of |column| (harness.balls.upward), once per column (held with it, so
        its id stays unique): the error model asks for the magnitude of a value in every product and
        sum that uses it."""
        hit = self._mag.get(id(column))
        if hit is None or hit[0] is not column:
            hit = self._mag[id(column)] = (column, magnitudes(column))
        return hit[1]


# Caches keyed by expressions are bounded (least recently used out): a fuzz campaign draws a new
# expression per example, and an unbounded cache would grow with the campaign. A bundled run uses a
# few hundred distinct expressions; SUBTREES counts their subtrees.
EXPRESSIONS = 2048
SUBTREES = 65_536


@cache
def overflow_edge(fmt: FloatFormat | None) -> arb:
    """The largest finite number plus half an ulp: a result this large rounds to inf."""
    if fmt is None:
        return arb.pos_inf()
    with precision(4 * fmt.precision + 64):  # exactly
        return arb(fmt.largest.numerator) * (1 + arb(2) ** -(fmt.precision + 1))


@cache
def _smallest_normal(fmt: FloatFormat | None) -> arb:
    return ZERO if fmt is None else arb(2) ** fmt.emin


@cache
def _float_scales(fmt: FloatFormat | None) -> tuple[float, float, float]:
    if fmt is None:
        return 0.0, 0.0, math.inf
    exponent = fmt.emin - fmt.precision  # of half the smallest subnormal
    return fmt.unit_roundoff, math.ldexp(1.0, exponent) if exponent >= -1074 else 0.0, math.log2(float(fmt.largest))


def _memo(fn: Callable[[Batch], object]) -> Callable[[Batch], object]:
    def node(b: Batch) -> object:
        hit = b.memo.get(node)
        if hit is None:
            hit = b.memo[node] = fn(b)
        return hit

    return node


def _where(mask: Sequence[bool]) -> list[int]:
    return [i for i, m in enumerate(mask) if m]


def _sum(columns: Sequence[Column]) -> Column:
    """Left to right, as ((a + b) + c) + d; up to four terms in one pass over the members."""
    total, rest = columns[0], columns[1:]
    while rest:
        if len(rest) >= 3:
            total = [a + b + c + d for a, b, c, d in zip(total, *rest[:3])]
        elif len(rest) == 2:
            total = [a + b + c for a, b, c in zip(total, *rest)]
        else:
            total = [a + b for a, b in zip(total, rest[0])]
        rest = rest[3:]
    return total


def _prod(columns: Sequence[Column]) -> Column:
    """Left to right, as ((a * b) * c) * d; up to four factors in one pass over the members."""
    total, rest = columns[0], columns[1:]
    while rest:
        if len(rest) >= 3:
            total = [a * b * c * d for a, b, c, d in zip(total, *rest[:3])]
        elif len(rest) == 2:
            total = [a * b * c for a, b, c in zip(total, *rest)]
        else:
            total = [a * b for a, b in zip(total, rest[0])]
        rest = rest[3:]
    return total


def _kinks(flags: Sequence[list[bool] | None]) -> list[bool] | None:
    """Which members met a kink anywhere below (None: none did)."""
    present = [f for f in flags if f is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return [any(t) for t in zip(*present)]


# ---------------------------------------------------------------- small ball functions


# |exponent| beyond which exp is not computed (Arb's nan past about 2^62): exp(-5e7) is still needed,
# as the numerator of log_ndtr'(-1e4) = exp(-x^2/2)/erfc(-x/sqrt 2), a ratio of two such numbers
HUGE = arb(2) ** 60
MODERATE = 2.0**59  # a midpoint below this in size: the ball is neither above HUGE nor below -HUGE


def _exp(a: arb) -> arb:
    """exp, without computing astronomically large or small values digit by digit."""
    if -MODERATE < float(a) < MODERATE:
        return a.exp()
    if a > HUGE:
        return arb.pos_inf()
    if a < -HUGE:
        return arb(0, arb(2) ** -(2**21))  # 0 with a radius far below every subnormal
    return a.exp()


def _cosh(a: arb) -> arb:
    return _exp(abs(a)) if abs(a) > HUGE else a.cosh()


def _sinh(a: arb) -> arb:
    if a > HUGE:
        return arb.pos_inf()
    if a < -HUGE:
        return arb.neg_inf()
    return a.sinh()


def _power(b: arb, e: arb) -> arb:
    if b > 0 and not (abs(e * b.log()) < HUGE):
        return _exp(e * b.log())
    return b**e


def _round_half_even(a: arb) -> arb:
    lo = (a + arb(1) / 2).floor()
    if a.is_exact() and lo.is_exact() and (a + arb(1) / 2) == lo:  # a tie: pick the even neighbour
        return lo if int(lo.unique_fmpz()) % 2 == 0 else lo - 1
    return lo


def _trunc(a: arb) -> arb:
    if a >= 0:
        return a.floor()
    if a < 0:
        return a.ceil()
    return arb.union(a.floor(), a.ceil())


def _lgamma_abs(a: arb) -> arb:
    """log|Gamma(a)|, by reflection below 1/2 (Arb's lgamma is for positive arguments)."""
    if a > 0.5:
        return a.lgamma()
    s = (a * arb.pi()).sin()
    return (arb.pi() / abs(s)).log() - (1 - a).lgamma()


MAX_POLYGAMMA_SHIFTS = 100_000  # (Arb's acb polygamma was certified wrong far left: not used)


def _polygamma(n: arb, x: arb) -> arb:
    order = int(n.unique_fmpz()) if n.is_exact() and n.is_integer() else None
    if order is None or order < 0:
        return arb.nan()
    if order == 0:
        return x.digamma()
    if not x.is_finite():
        return arb.nan()
    if not x > -MAX_POLYGAMMA_SHIFTS and not (x.is_exact() and x.is_integer()):
        return arb(0, float("inf"))  # a shift per unit left of 0.5: past the cap, no finite ball (uncertified)
    # Hurwitz zeta wants a positive shift: zeta(s, x) = zeta(s, x + k) + sum_{j<k} (x + j)^-s
    s, total, shift = arb(order + 1), ZERO, x
    while not shift > 0.5:
        if shift.is_exact() and shift.is_integer() and shift <= 0:
            # a pole: ~ (-1)**(n+1) n!/(x - x0)**(n+1), +inf from both sides for odd n; no limit for even n
            return arb.pos_inf() if order % 2 else arb.nan()
        total = total + 1 / shift ** (order + 1)
        shift = shift + 1
    return (-1) ** (order + 1) * arb.fac_ui(order) * (s.zeta(shift) + total)


def _besseli(nu: arb, x: arb) -> arb:
    return x.bessel_i(nu)


def _share(i: int, values: list[arb], sign: int) -> arb:
    """The even split of max's gradient; sign -1 for min."""
    values = [sign * v for v in values]
    mine = values[i]
    if any(v > mine for v in values):
        return ZERO
    ties = [j for j, v in enumerate(values) if not (v < mine)]
    if len(ties) == 1:
        return arb(1)
    if all((values[j] - mine).is_exact() and values[j] == mine for j in ties):
        return arb(1) / len(ties)
    return arb.union(ZERO, arb(1))


def _cmp(d: arb, strict: bool) -> bool | None:
    """d > 0 (strict) or d >= 0; None when the ball cannot tell."""
    if d > 0:
        return True
    if d < 0:
        return False
    if d.is_exact():  # exactly 0
        return not strict
    return None


Decision = list[bool | None]  # one per member; None: the ball cannot tell


