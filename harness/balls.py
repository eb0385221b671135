"""SymPy expressions compiled to functions of Arb balls: closed forms, and the error model.

Every compiled expression evaluates a whole batch at once: a `Batch` holds one column of balls
per symbol (the same expression at many points, or at every element of an elementwise output),
and each node of the expression is one pass over its columns. Results are memoized per compiled
node within a batch, so the subexpressions a value shares with its first and second derivatives
(sin(x) in sin(x), cos(x) and -sin(x)) are evaluated once.

`closed` compiles an expression to its ball values (one table of node types, as sympy2jax does
for JAX). `compile_modelled` does the same for the harness's own trees and derivative
expressions, and runs the error model beside the value: a bound on the rounding error that a
floating-point evaluation of the same tree in the case's dtype can make. The model charges each
operation its kernel's accuracy and propagates input errors through partial derivatives
(first-order running error analysis); sums charge the magnitude of the terms they add, which is
what lets a result that cancels to 0 be compared against an absolute floor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from functools import cache, lru_cache
from typing import Any

import flint
import sympy
from flint import arb

from harness import cache as stored
from harness.catalogue.markers import (
    Conventions,
    KinkFunction,
    OpFunction,
    amax_fn,
    amin_fn,
    as_sympy,
    ceil_fn,
    erfc_neg,
    floor_fn,
    jump,
    loggamma_abs,
    max_share,
    min_share,
    no_grad,
    norm2,
    op_function,
    ratio,
    reverse_ratio,
    round_fn,
    select,
    trunc_fn,
)
from harness.errors import HarnessError
from harness.numbers import FloatFormat, round_to_format
from harness.symbolic import closed_body

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

    __slots__ = ("columns", "n", "memo", "u", "eta", "normal", "edge", "fmt", "conventions", "_children", "_abs")

    def __init__(self, columns: Sequence[Column], n: int, u: arb = ZERO, fmt: FloatFormat | None = None,
                 conventions: Conventions | None = None) -> None:
        self.columns, self.n, self.u, self.fmt = columns, n, u, fmt
        # a rounding to a subnormal result errs by up to half the smallest subnormal (see _underflow)
        self.eta, self.normal = _underflow_scales(fmt)
        self.edge = overflow_edge(fmt)  # results at least this large round to inf
        self.conventions = conventions or Conventions()
        self.memo: dict[object, object] = {}
        self._children: dict[tuple[int, ...], Batch] = {}
        self._abs: dict[int, tuple[Column, Column]] = {}

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


    def abs_of(self, column: Column) -> Column:
        """|column|, once per column (held with it, so its id stays unique): the error model asks
        for the magnitude of a value in every product and sum that uses it."""
        hit = self._abs.get(id(column))
        if hit is None or hit[0] is not column:
            hit = self._abs[id(column)] = (column, [abs(x) for x in column])
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
def _underflow_scales(fmt: FloatFormat | None) -> tuple[arb, arb]:
    """Half the smallest subnormal, and the smallest normal number."""
    return (ZERO, ZERO) if fmt is None else (arb(2) ** (fmt.emin - fmt.precision), arb(2) ** fmt.emin)


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


def _abs(column: Column) -> Column:
    return [abs(x) for x in column]


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


def _relation(cond: sympy.Basic, symbols: tuple[sympy.Symbol, ...]) -> Callable[[Batch], Decision]:
    """A condition of a Piecewise branch, decided on balls."""
    if cond is sympy.true or cond is sympy.false:
        truth = cond is sympy.true
        return lambda b: [truth] * b.n
    if isinstance(cond, sympy.And | sympy.Or):
        parts = [_relation(c, symbols) for c in cond.args]
        joined = all if isinstance(cond, sympy.And) else any

        def both(b: Batch) -> Decision:
            return [None if None in t else joined(t) for t in zip(*(p(b) for p in parts))]

        return both
    diff = closed(cond.lhs - cond.rhs, symbols)
    if isinstance(cond, sympy.Eq | sympy.Ne):
        equal = isinstance(cond, sympy.Eq)

        def eq(d: arb) -> bool | None:
            if d > 0 or d < 0:
                return not equal
            return equal if d.is_exact() else None

        return lambda b: [eq(d) for d in diff(b)]
    sign = 1 if isinstance(cond, sympy.GreaterThan | sympy.StrictGreaterThan) else -1
    strict = isinstance(cond, sympy.StrictGreaterThan | sympy.StrictLessThan)
    return lambda b: [_cmp(sign * d, strict) for d in diff(b)]


def _branches(b: Batch, decisions: Sequence[Callable[[Batch], Decision]],
              evaluate: Callable[[int, Batch], tuple]) -> list[list[tuple]]:
    """Piecewise: each member's candidate results, branch by branch (first decided branch wins,
    undecided branches are candidates too). `evaluate(i, sub)` gives branch i's result on a sub-batch
    as a tuple of columns; returned per member as a list of tuples of balls."""
    candidates: list[list[tuple]] = [[] for _ in range(b.n)]
    active = list(range(b.n))
    for i, decide in enumerate(decisions):
        if not active:
            break
        sub = b.subset(active) if len(active) < b.n else b
        decided = decide(sub)
        take = [j for j, d in enumerate(decided) if d is not False]
        if take:
            chosen = sub.subset(take) if len(take) < sub.n else sub
            results = evaluate(i, chosen)
            for pos, j in enumerate(take):
                candidates[active[j]].append(tuple(col[pos] for col in results))
        active = [active[j] for j, d in enumerate(decided) if d is not True]
    return candidates


# ---------------------------------------------------------------- closed forms, ball only

_UNARY: dict[type, Callable[[arb], arb]] = {
    sympy.exp: _exp, sympy.log: arb.log, sympy.sin: arb.sin, sympy.cos: arb.cos, sympy.tan: arb.tan,
    sympy.tanh: arb.tanh, sympy.sinh: _sinh, sympy.cosh: _cosh, sympy.asin: arb.asin,
    sympy.acos: arb.acos, sympy.atan: arb.atan, sympy.asinh: arb.asinh, sympy.acosh: arb.acosh,
    sympy.atanh: arb.atanh, sympy.sec: lambda a: 1 / a.cos(), sympy.csc: lambda a: 1 / a.sin(),
    sympy.cot: lambda a: 1 / a.tan(), sympy.sech: lambda a: 1 / a.cosh(), sympy.csch: lambda a: 1 / a.sinh(),
    sympy.coth: lambda a: 1 / a.tanh(), sympy.Abs: abs, sympy.sign: arb.sgn, sympy.erf: arb.erf,
    sympy.erfc: arb.erfc, sympy.erfinv: arb.erfinv, sympy.gamma: arb.gamma, sympy.floor: arb.floor,
    sympy.ceiling: arb.ceil, floor_fn: arb.floor, ceil_fn: arb.ceil, round_fn: _round_half_even,
    trunc_fn: _trunc, loggamma_abs: _lgamma_abs, no_grad: lambda a: a, erfc_neg: lambda a: (-a).erfc(),
}
_BINARY: dict[type, Callable[[arb, arb], arb]] = {
    sympy.atan2: arb.atan2, sympy.polygamma: _polygamma, sympy.besseli: _besseli,
}
_NARY: dict[type, Callable[[list[arb]], arb]] = {
    sympy.Max: lambda v: _reduce(v, arb.max), sympy.Min: lambda v: _reduce(v, arb.min),
    amax_fn: lambda v: _reduce(v, arb.max), amin_fn: lambda v: _reduce(v, arb.min),
    norm2: lambda v: sum((x * x for x in v), ZERO).sqrt(),
}

BatchForm = Callable[[Batch], Column]
ClosedForm = Callable[[Sequence[arb]], arb]


def _reduce(values: list[arb], combine: Callable[[arb, arb], arb]) -> arb:
    total = values[0]
    for v in values[1:]:
        total = combine(total, v)
    return total


def compile_closed(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> ClosedForm:
    """A SymPy expression as a function of one point's ball arguments."""
    form = closed(expr, tuple(symbols))
    return lambda a: form(Batch.point(a))[0]


def _constant(expr: sympy.Expr) -> Callable[[], arb] | None:
    """A number's ball, made at the precision of the moment it is asked for."""
    if expr.is_Rational:
        p, q = int(expr.p), int(expr.q)
        return (lambda: arb(p)) if q == 1 else (lambda: arb(p) / q)
    if expr.is_Float:
        r = sympy.Rational(expr)
        return lambda: arb(int(r.p)) / int(r.q)
    named = {sympy.pi: arb.pi, sympy.E: arb.const_e, sympy.EulerGamma: arb.const_euler,
             sympy.Catalan: arb.const_catalan, sympy.oo: arb.pos_inf, sympy.S.NegativeInfinity: arb.neg_inf,
             sympy.nan: arb.nan, sympy.zoo: arb.nan}  # SymPy's 0/0 and 1/0: not a real number
    return named.get(expr)


@lru_cache(maxsize=EXPRESSIONS)
def closed(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> BatchForm:
    """A SymPy expression as a function of a batch of ball arguments."""
    if expr in symbols:
        i = symbols.index(expr)
        return lambda b: b.columns[i]
    constant = _constant(expr)
    if constant is not None:
        return _memo(lambda b: [constant()] * b.n)
    if symbols and not expr.free_symbols:  # a number made of numbers (1/sqrt(pi)): once per batch
        alone = closed(expr, ())
        return _memo(lambda b: alone(Batch([], 1, b.u, b.fmt, b.conventions)) * b.n)
    if isinstance(expr, sympy.Piecewise):
        return _memo(_closed_piecewise(expr, symbols))
    parts = [closed(arg, symbols) for arg in expr.args]
    if expr.is_Add:
        return _memo(lambda b: _sum([p(b) for p in parts]))
    if expr.is_Mul:
        return _memo(lambda b: _prod([p(b) for p in parts]))
    if expr.is_Pow:
        return _memo(_closed_pow(expr, parts))
    return _memo(_closed_function(expr, parts))


def _closed_kink(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    cls, (inner, convention) = type(expr), parts
    return lambda b: [_kink_value(cls, x, lambda k=k: convention(b)[k])[0] for k, x in enumerate(inner(b))]


def _closed_op(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    form = closed_form(type(expr))[0]
    return lambda b: form(b.of([p(b) for p in parts]))


def _closed_select(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    d, x, y, _ = parts
    m = int(expr.args[3])
    return lambda b: _select(b, d(b), m, x, y)


def _closed_jump(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    d = parts[0]
    return lambda b: [_jump(v)[0] for v in d(b)]


def _closed_ratio(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    num, den = parts
    return lambda b: [_ratio(p, q, _masked(expr, b))[0] for p, q in zip(num(b), den(b))]


def _closed_share(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    i, sign = int(expr.args[0]), (-1 if isinstance(expr, min_share) else 1)
    rest = parts[1:]
    return lambda b: [_share(i, list(t), sign) for t in zip(*(p(b) for p in rest))]


# The closed forms of the harness's own function classes, one rule per class (a subclass takes its
# nearest base's); SymPy's functions are in the tables _UNARY, _BINARY and _NARY.
CLOSED_RULES: dict[type, Callable[[sympy.Expr, list[BatchForm]], BatchForm]] = {
    KinkFunction: _closed_kink, OpFunction: _closed_op, select: _closed_select, jump: _closed_jump,
    ratio: _closed_ratio, max_share: _closed_share,
}


def _closed_function(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    cls = type(expr)
    rule = rule_for(cls, CLOSED_RULES)
    if rule is not None:
        return rule(expr, parts)
    if cls in (sympy.Heaviside, sympy.DiracDelta):  # from |w| and sign(w) of real parts
        step, inner = cls is sympy.Heaviside, parts[0]
        at_zero = parts[1] if step and len(parts) > 1 else None
        return lambda b: [_step(x, at_zero(b)[k] if at_zero else None) if step else _delta(x)
                          for k, x in enumerate(inner(b))]
    if cls in (sympy.sin, sympy.cos):  # one Arb call gives both: sin' = cos
        pick, (inner,) = int(cls is sympy.cos), parts
        return lambda b: [pair[pick] for pair in _sin_cos(b, inner)]
    if cls in _UNARY and len(parts) == 1:
        fn, (inner,) = _UNARY[cls], parts
        return lambda b: [fn(x) for x in inner(b)]
    if cls in _BINARY:
        fn2, (first, second) = _BINARY[cls], parts
        return lambda b: [fn2(x, y) for x, y in zip(first(b), second(b))]
    if cls in _NARY:
        fnn = _NARY[cls]
        return lambda b: [fnn(list(t)) for t in zip(*(p(b) for p in parts))]
    raise HarnessError(f"the reference cannot evaluate {cls.__name__} (in {expr})")


def _step(x: arb, at_zero: arb | None) -> arb:
    """Heaviside: 0 below 0, 1 above, SymPy's H0 (1/2) at 0."""
    if x > 0 or x < 0:
        return arb(int(bool(x > 0)))
    if x.is_exact():
        return at_zero if at_zero is not None else arb(1) / 2
    return arb.union(ZERO, arb(1))


def _delta(x: arb) -> arb:
    """DiracDelta (and its derivatives): 0 away from 0, not a number at 0."""
    return ZERO if x > 0 or x < 0 else arb.nan()


def _sin_cos(b: Batch, inner: BatchForm) -> list[tuple[arb, arb]]:
    key = ("sin_cos", inner)
    pairs = b.memo.get(key)
    if pairs is None:
        pairs = b.memo[key] = [x.sin_cos() for x in inner(b)]
    return pairs  # type: ignore[return-value]


def _closed_piecewise(expr: sympy.Piecewise, symbols: tuple[sympy.Symbol, ...]) -> BatchForm:
    values = [closed(e, symbols) for e, _ in expr.args]
    decisions = [_relation(c, symbols) for _, c in expr.args]

    def piecewise(b: Batch) -> Column:
        found = _branches(b, decisions, lambda i, sub: (values[i](sub),))
        return [_reduce([c[0] for c in cs], arb.union) if cs else arb.nan() for cs in found]

    return piecewise


def _kink_value(cls: type[KinkFunction], x: arb, convention: Callable[[], arb]) -> tuple[arb, bool]:
    if x > 0 or x < 0:
        return arb(cls.away(bool(x > 0))), False
    if x.is_exact():
        return convention(), True
    return arb.union(arb(cls.away(True)), arb(cls.away(False))), False


def _choice(d: arb, mode: int) -> bool | None:
    """where()'s condition on d: d > 0 (mode 0), d >= 0 (1), d == 0 (2); None: undecided."""
    if mode == 2:
        return True if d.is_exact() and d == 0 else (False if d > 0 or d < 0 else None)
    return _cmp(d, strict=mode == 0)


def _split(b: Batch, chosen: Sequence[bool | None], a: Callable[[Batch], tuple],
           c: Callable[[Batch], tuple]) -> tuple[list[tuple | None], list[tuple | None]]:
    """Evaluate `a` where chosen is True or None and `c` where False or None, per member."""
    out_a: list[tuple | None] = [None] * b.n
    out_c: list[tuple | None] = [None] * b.n
    for fn, out, keep in ((a, out_a, (True, None)), (c, out_c, (False, None))):
        index = [i for i, ch in enumerate(chosen) if ch in keep]
        if index:
            sub = b.subset(index) if len(index) < b.n else b
            results = fn(sub)
            for pos, i in enumerate(index):
                out[i] = tuple(col[pos] for col in results)
    return out_a, out_c


def _select(b: Batch, d: Column, mode: int, x: BatchForm, y: BatchForm) -> Column:
    chosen = [_choice(v, mode) for v in d]
    va, vb = _split(b, chosen, lambda s: (x(s),), lambda s: (y(s),))
    return [arb.union(p[0], q[0]) if p is not None and q is not None else (p or q)[0] for p, q in zip(va, vb)]


def _jump(d: arb) -> tuple[arb, bool]:
    if d > 0 or d < 0:
        return ZERO, False
    return ZERO, bool(d.is_exact())


def _ratio(num: arb, den: arb, masked: bool = True) -> tuple[arb, bool]:
    if den.is_exact() and den == 0:
        return (ZERO, True) if masked else (arb.nan(), False)
    return num / den, False


def _masked(expr: ratio, b: Batch) -> bool:
    """Whether torch masks this ratio's 0/0 in the mode compared (forward mode does not for atan2)."""
    return not (isinstance(expr, reverse_ratio) and b.conventions.mode == "forward")


def _powers(column: Column, n: int) -> Column:
    if n == 1:
        return column
    if n == 2:
        return [x * x for x in column]
    if n == 3:
        return [x * x * x for x in column]
    if n == -1:
        return [1 / x for x in column]
    if n == -2:
        return [1 / (x * x) for x in column]
    return [x**n for x in column] if n >= 0 else [1 / x ** (-n) for x in column]


def _reciprocal(b: Batch, base: BatchForm) -> Column:
    key = ("reciprocal", base)
    found = b.memo.get(key)
    if found is None:
        found = b.memo[key] = [1 / x for x in base(b)]
    return found  # type: ignore[return-value]


def _closed_pow(expr: sympy.Pow, parts: list[BatchForm]) -> BatchForm:
    base, exponent = parts
    e = expr.exp
    if e.is_Integer and e < 0:  # one reciprocal per base, its powers by products (x^-1, x^-2, x^-3 of one x)
        n = -int(e)
        return lambda b: _powers(_reciprocal(b, base), n)
    if e.is_Integer:
        n = int(e)
        return lambda b: _powers(base(b), n)
    if e == sympy.S.Half:
        return lambda b: [x.sqrt() for x in base(b)]
    if e == -sympy.S.Half:
        return lambda b: [x.rsqrt() for x in base(b)]
    return lambda b: [_power(x, y) for x, y in zip(base(b), exponent(b))]


@cache
def closed_form(cls: type, arity: int = 1) -> tuple[BatchForm, tuple[BatchForm, ...]]:
    """The closed form of a function class and of its partial derivatives (for the error model),
    as functions of a batch of the op's arguments."""
    if issubclass(cls, OpFunction):
        syms, body = closed_body(cls)
        if cls.op.partials is not None and not any(cls.orders):
            derivatives = [cls.op.partials(syms, i) for i in range(cls.op.arity)]
        else:
            derivatives = [stored.diff(body, s) for s in syms[: cls.op.arity]]
        partials = tuple(closed(as_sympy(d), syms) for d in derivatives)
        return closed(body, syms), partials
    syms = sympy.symbols(f"a0:{arity}", real=True)
    body = cls(*syms)
    return closed(body, syms), tuple(closed(stored.diff(body, s), syms) for s in syms)


@cache
def _kink_locators(cls: type) -> tuple[tuple[BatchForm, bool, object], ...]:
    """For a one-input op: where each kink is, whether it repeats, and the Kink itself."""
    if not issubclass(cls, OpFunction) or cls.op.arity != 1:
        return ()
    syms = sympy.symbols(f"a0:{cls.n_args}", real=True)
    out = []
    for kink in cls.op.kinks:
        if kink.at is not None:
            out.append((closed(as_sympy(syms[0] - kink.at(*syms[1:])), syms), kink.lattice, kink))
    return tuple(out)


@lru_cache(maxsize=EXPRESSIONS)
def _limit(cls: type, args: tuple[Fraction, ...]) -> sympy.Expr | None:
    """The limit of an op's closed form at an exact point where the form is 0/0 (sinc at 0)."""
    syms, body = closed_body(cls)
    body = body.subs({s: sympy.Rational(a.numerator, a.denominator) for s, a in zip(syms[1:], args[1:])})
    return stored.limit(body, syms[0], sympy.Rational(args[0].numerator, args[0].denominator))


def _exact_fraction(b: arb) -> Fraction | None:
    if not b.is_exact() or not b.is_finite():
        return None
    man, exp = (int(x) for x in b.mid().man_exp()) if b != 0 else (0, 0)
    return Fraction(man) * Fraction(2) ** exp


def finite(b: arb) -> bool:
    return b.is_finite() and not b.is_nan()


def defined(b: arb) -> bool:
    """A finite ball, or an exact infinity (a pole's or a domain edge's limit): a value to compare."""
    return finite(b) or (b.is_exact() and not b.is_nan())


# ---------------------------------------------------------------- the error model

Kinks = list[bool] | None  # which members met a kink (None: none did)
ModelResult = tuple[Column, Column, Kinks]  # values, error-model bounds, kinks
Modelled = Callable[[Batch], ModelResult]


@lru_cache(maxsize=EXPRESSIONS)
def compile_modelled(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat,
                     forward: frozenset[sympy.Expr] | None = None) -> Modelled:
    """Value and error-model bound of a harness tree or derivative expression, over a batch.

    A rounding to a subnormal is charged its absolute error (`_underflow`) where torch evaluates
    the node as written: everywhere in a function's own tree (forward None), and in a derivative
    expression only at the subexpressions of the function it differentiates (`forward`: what the
    forward pass computes and the backward reuses, x / 0.62 in sqrt'(x / 0.62)). The other terms are
    our derivative formula's, which torch's backward need not form (2 exp(x)^2 / exp(x)^3)."""
    if forward is not None and expr in forward:
        return compile_modelled(expr, symbols, fmt)
    if expr in symbols:
        i = symbols.index(expr)
        return lambda b: (b.columns[i], [ZERO] * b.n, None)
    if expr in (sympy.nan, sympy.zoo, sympy.oo, sympy.S.NegativeInfinity):
        infinite = closed(expr, symbols)
        return lambda b: (infinite(b), [ZERO] * b.n, None)
    under = forward is None or _reuses_forward(expr, forward)  # see _underflow
    if expr.is_Number or expr.is_NumberSymbol:
        value = closed(expr, symbols)
        if expr.is_Rational and _representable(Fraction(int(expr.p), int(expr.q)), fmt):
            return lambda b: (value(b), [ZERO] * b.n, None)
        return lambda b: _rounded(value(b), b, under)
    if isinstance(expr, sympy.Piecewise):
        return _memo(_modelled_piecewise(expr, symbols, fmt, forward))
    parts = [compile_modelled(arg, symbols, fmt, forward) for arg in expr.args]
    shared = _shared(expr, symbols)
    if expr.is_Add:
        return _memo(lambda b: _add([p(b) for p in parts], b, shared, under))
    if expr.is_Mul:
        roundings = max(0, sum(1 for f in expr.args if not _is_power_of_two(f)) - 1)
        return _memo(lambda b: _mul([p(b) for p in parts], roundings, b, shared, under))
    if expr.is_Pow:
        return _memo(_modelled_pow(expr, parts, shared, under))
    special = _modelled_special(expr, parts, under)
    return _memo(special if special is not None else _modelled_function(expr, parts, fmt, under))


def _reuses_forward(expr: sympy.Expr, forward: frozenset[sympy.Expr]) -> bool:
    """A derivative of an op whose value the forward pass computed: torch's backward may form it
    from that value (exp' is the saved exp(x)), so a subnormal rounding of it is charged too."""
    if not isinstance(expr, OpFunction) or not any(expr.orders):
        return False
    return op_function(expr.op)(*expr.args) in forward


Shared = Callable[[Batch, list[ModelResult]], Column | None]


def _shared(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> Shared:
    """A node's values from the batch's closed forms, when its arguments' values are theirs (no
    torch convention or removable singularity replaced any below): each subexpression of a value,
    its derivatives and their error model is then evaluated once."""
    own = closed(expr, symbols)
    args = [closed(a, symbols) for a in expr.args]

    def values(b: Batch, terms: list[ModelResult]) -> Column | None:
        return own(b) if all(t[0] is a(b) for t, a in zip(terms, args)) else None

    return values


def _representable(q: Fraction, fmt: FloatFormat) -> bool:
    return round_to_format(q, fmt) == q


def _is_power_of_two(x: sympy.Expr) -> bool:
    if not x.is_Rational or x == 0:
        return False
    p, q = abs(int(x.p)), int(x.q)
    return p & (p - 1) == 0 and q & (q - 1) == 0


def _rounded(v: Column, b: Batch, under: bool) -> ModelResult:
    return v, _underflow([b.u * a for a in b.abs_of(v)], v, b, under), None


def _underflow(bound: Column, values: Column, b: Batch, roundings: float) -> Column:  # roundings 0: none
    """Add each rounding's absolute error where the result may be subnormal: fl(x op y) =
    (x op y)(1 + d) + e, |e| <= half the smallest subnormal, and e = 0 unless the result is below the
    normal range. x / 0.62 at x = 2e-311 errs by 7e-14 of itself, and sqrt passes half of it on.
    An exact 0 with no error coming in stays exact (0 * y, x - x of exact inputs). A result past
    the range is inf in torch, rightly: from there on no finite bound holds (exp(104) in float32
    inside log(1 + exp(...)))."""
    if b.fmt is None:
        return bound
    if any(a > b.edge for a in b.abs_of(values)):
        bound = [arb.pos_inf() if a > b.edge else e for e, a in zip(bound, b.abs_of(values))]
    if not roundings:
        return bound
    tiny, normal = roundings * b.eta, b.normal
    return [e + tiny if not a >= normal and (e != ZERO or not a.is_zero()) else e
            for e, a in zip(bound, b.abs_of(values))]


def _add(terms: list[ModelResult], b: Batch, shared: Shared, under: bool) -> ModelResult:
    value = shared(b, terms) or _sum([t[0] for t in terms])
    size = _sum([b.abs_of(t[0]) for t in terms])
    charge = (len(terms) - 1) * b.u
    bound = [e + charge * s for e, s in zip(_sum([t[1] for t in terms]), size)]
    return value, _underflow(bound, value, b, under * (len(terms) - 1)), _kinks([t[2] for t in terms])


def _mul(factors: list[ModelResult], roundings: int, b: Batch, shared: Shared, under: bool) -> ModelResult:
    value = shared(b, factors) or _prod([f[0] for f in factors])
    charge = roundings * b.u
    bound = [charge * a for a in b.abs_of(value)] if roundings else [ZERO] * b.n
    carrying = [i for i, f in enumerate(factors) if any(x != ZERO for x in f[1])]
    if carrying:  # each factor's error times the magnitudes of the others
        sizes = [b.abs_of(f[0]) for f in factors]
        for i, others in zip(carrying, _all_but(sizes, carrying)):
            bound = [bd + x * o if x != ZERO else bd for bd, x, o in zip(bound, factors[i][1], others)]
    return value, _underflow(bound, value, b, under * roundings), _kinks([f[2] for f in factors])


def _all_but(sizes: list[Column], wanted: list[int]) -> list[Column]:
    """For each wanted i, the product of every column but the i-th (from prefix and suffix
    products: linear in the number of factors, not quadratic)."""
    k = len(sizes)
    if k == 1:
        return [[ONE] * len(sizes[0])]
    prefix: list[Column | None] = [None] * k  # product of sizes[:i]
    for i in range(1, max(wanted) + 1):
        prefix[i] = sizes[0] if i == 1 else [x * y for x, y in zip(prefix[i - 1], sizes[i - 1])]  # type: ignore[arg-type]
    suffix: list[Column | None] = [None] * k  # product of sizes[i + 1:]
    for i in range(k - 2, min(wanted) - 1, -1):
        suffix[i] = sizes[k - 1] if i == k - 2 else [x * y for x, y in zip(sizes[i + 1], suffix[i + 1])]  # type: ignore[arg-type]
    out = []
    for i in wanted:
        before, after = prefix[i], suffix[i]
        out.append(after if before is None else before if after is None else [x * y for x, y in zip(before, after)])
    return out


def _modelled_pow(expr: sympy.Pow, parts: list[Modelled], shared: Shared, under: bool) -> Modelled:
    base, exponent = parts
    e = expr.exp
    if e.is_Integer:
        n = int(e)
        roundings = 0 if n in (0, 1) else (1 if n in (2, -1) else 2)

        def integer_power(b: Batch) -> ModelResult:
            x, ex, kinks = found = base(b)
            values = shared(b, [found, exponent(b)]) or _powers(x, n)
            charge = roundings * b.u
            bound = [charge * a for a in b.abs_of(values)] if roundings else [ZERO] * b.n
            index = _where([y != ZERO for y in ex])
            if index:  # the input's error times |n x^(n-1)|
                xs = [x[k] for k in index]
                slopes = _powers(xs, n - 1) if n >= 1 else [1 / p for p in _powers(xs, 1 - n)]
                weight = arb(abs(n))
                for k, slope in zip(index, slopes):
                    bound[k] = bound[k] + weight * abs(slope) * ex[k]
            return values, _underflow(bound, values, b, under * roundings), kinks

        return integer_power

    def real_power(b: Batch) -> ModelResult:
        (x, ex, kx), (y, ey, ky) = terms = base(b), exponent(b)
        values = shared(b, list(terms))
        if values is not None:
            pass
        elif e == sympy.S.Half:
            values = [v.sqrt() for v in x]
        elif e == -sympy.S.Half:
            values = [v.rsqrt() for v in x]
        else:
            values = [_power(v, w) for v, w in zip(x, y)]
        bound = [2 * b.u * abs(v) for v in values]
        for k in range(b.n):
            if ex[k] != ZERO:
                bound[k] = bound[k] + abs(y[k] * values[k] / x[k]) * ex[k]
            if ey[k] != ZERO:
                bound[k] = bound[k] + abs(values[k] * x[k].log()) * ey[k]
        return values, _underflow(bound, values, b, under * 2), _kinks([kx, ky])

    return real_power


def _modelled_piecewise(expr: sympy.Piecewise, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat,
                        forward: frozenset[sympy.Expr] | None) -> Modelled:
    values = [compile_modelled(e, symbols, fmt, forward) for e, _ in expr.args]
    decisions = [_relation(c, symbols) for _, c in expr.args]

    def evaluate(i: int, sub: Batch) -> tuple:
        v, e, k = values[i](sub)
        return v, e, k if k is not None else [False] * sub.n

    def piecewise(b: Batch) -> ModelResult:
        found = _branches(b, decisions, evaluate)
        out_v, out_e, out_k = [], [], []
        for cs in found:
            if not cs:
                out_v.append(arb.nan())
                out_e.append(ZERO)
                out_k.append(False)
                continue
            out_v.append(_reduce([c[0] for c in cs], arb.union))
            out_e.append(_reduce([c[1] for c in cs], arb.max))
            out_k.append(any(c[2] for c in cs))
        return out_v, out_e, out_k if any(out_k) else None

    return piecewise


def _model_kink(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    cls = type(expr)
    inner, convention = parts
    jump_size = abs(arb(cls.away(True)) - arb(cls.away(False)))

    def kink(b: Batch) -> ModelResult:
        x, ex, kx = inner(b)
        values, bounds, kinks = [], [], list(kx) if kx is not None else [False] * b.n
        for k in range(b.n):
            value, hit = _kink_value(cls, x[k], lambda k=k: convention(b)[0][k])
            kinks[k] = kinks[k] or hit
            if not hit and ex[k] != 0 and abs(x[k]) <= 2 * ex[k]:
                # torch's rounded x may sit on the other side of the kink: allow the jump
                kinks[k] = True
                bounds.append(arb.max(jump_size, abs(value - convention(b)[0][k])))
            else:
                bounds.append(ZERO)
            values.append(value)
        return values, bounds, kinks

    return kink


def _model_select(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    d, x, y, _ = parts
    mode = int(expr.args[3])

    def chosen(b: Batch) -> ModelResult:
        dv, _, dk = d(b)
        picks = [_choice(v, mode) for v in dv]
        ra, rb = _split(b, picks, lambda s: _flagged(x(s), s.n), lambda s: _flagged(y(s), s.n))
        out = [(arb.union(p[0], q[0]), arb.max(p[1], q[1]), p[2] or q[2]) if p is not None and q is not None
               else (p or q) for p, q in zip(ra, rb)]
        values, bounds, kinks = _unzip(out)
        return values, bounds, _kinks([dk, kinks])

    return chosen


def _model_jump(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    d = parts[0]

    def jumped(b: Batch) -> ModelResult:
        dv, _, dk = d(b)
        hits = [_jump(v)[1] for v in dv]
        return [ZERO] * b.n, [ZERO] * b.n, _kinks([dk, hits if any(hits) else None])

    return jumped


def _model_ratio(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    num, den = parts

    def quotient(b: Batch) -> ModelResult:
        (n, en, kn), (dv, ed, kd) = num(b), den(b)
        values, bounds, hits, masked = [], [], [], _masked(expr, b)
        for k in range(b.n):
            value, hit = _ratio(n[k], dv[k], masked)
            values.append(value)
            hits.append(hit)
            bounds.append(ZERO if hit else b.u * abs(value) + en[k] / abs(dv[k]) + abs(value / dv[k]) * ed[k])
        return values, _underflow(bounds, values, b, under), _kinks([kn, kd, hits if any(hits) else None])

    return quotient


def _model_no_grad(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    return parts[0]


def _model_share(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    i, sign = int(expr.args[0]), (-1 if isinstance(expr, min_share) else 1)
    rest = parts[1:]

    def share(b: Batch) -> ModelResult:
        results = [p(b) for p in rest]
        columns = [r[0] for r in results]
        values, hits = [], []
        for t in zip(*columns):
            v = _share(i, list(t), sign)
            ties = sum(1 for w in t if (w - t[i]).is_exact() and w == t[i])
            values.append(v)
            hits.append(ties > 1 and v != 0)
        return values, [ZERO] * b.n, _kinks([*(r[2] for r in results), hits if any(hits) else None])

    return share


def _model_extreme(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    pick = arb.max if isinstance(expr, amax_fn | sympy.Max) else arb.min  # amin_fn is no amax_fn

    def extreme(b: Batch) -> ModelResult:
        terms = [p(b) for p in parts]
        values = [_reduce(list(t), pick) for t in zip(*(t[0] for t in terms))]
        bounds = [_reduce(list(t), arb.max) for t in zip(*(t[1] for t in terms))]
        return values, bounds, _kinks([t[2] for t in terms])

    return extreme


def _model_norm2(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    def length(b: Batch) -> ModelResult:
        terms = [p(b) for p in parts]
        values, bounds = [], []
        for k in range(b.n):
            pairs = [(t[0][k], t[1][k]) for t in terms]
            value = sum((v * v for v, _ in pairs), ZERO).sqrt()
            bound = (len(terms) + 1) * b.u * value
            if value != 0:
                bound = bound + sum((abs(v / value) * e for v, e in pairs if e != 0), ZERO)
            values.append(value)
            bounds.append(bound)
        return values, _underflow(bounds, values, b, under * (len(terms) + 1)), _kinks([t[2] for t in terms])

    return length


# The error model of the harness's own marker functions (kinks, where, ratios, shares,
# stop-gradients, extremes, norms), one rule per class; a subclass takes its first base's rule
# (kink_step and kink_sign are KinkFunctions, min_share a max_share).
MODEL_RULES: dict[type, Callable[[sympy.Expr, list[Modelled], bool], Modelled]] = {
    KinkFunction: _model_kink, select: _model_select, jump: _model_jump, ratio: _model_ratio,
    no_grad: _model_no_grad, max_share: _model_share, amax_fn: _model_extreme, amin_fn: _model_extreme,
    sympy.Max: _model_extreme, sympy.Min: _model_extreme, norm2: _model_norm2,
}


def rule_for(cls: type, rules: dict[type, Any]) -> Any:
    """The rule of a class or of its nearest base in `rules` (None: no rule)."""
    return next((rules[base] for base in cls.__mro__ if base in rules), None)


def _modelled_special(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled | None:
    """The harness's own marker functions, by MODEL_RULES; None for anything else."""
    rule = rule_for(type(expr), MODEL_RULES)
    return rule(expr, parts, under) if rule is not None else None


def _flagged(result: ModelResult, n: int) -> tuple:
    v, e, k = result
    return v, e, k if k is not None else [False] * n


def _unzip(rows: list) -> ModelResult:
    values, bounds, kinks = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    return values, bounds, kinks if any(kinks) else None


def _modelled_function(expr: sympy.Function, parts: list[Modelled], fmt: FloatFormat, under: bool) -> Modelled:
    cls = type(expr)
    value_form, partials = closed_form(cls, len(expr.args))
    is_op = issubclass(cls, OpFunction)
    ulps = cls.op.accuracy(fmt.precision) if is_op else 2.0
    order = sum(cls.orders) if is_op else 0
    kinks = _kink_locators(cls)

    def function(b: Batch) -> ModelResult:
        args = [p(b) for p in parts]
        inner = b.of([a[0] for a in args])
        values = value_form(inner)
        flags = _kinks([a[2] for a in args])
        if kinks:
            values, flags = _kinked(cls, order, kinks, inner, values, flags)
        if is_op and cls.op.arity == 1 and not all(map(arb.is_finite, values)):  # (a nan is not finite)
            values = [v if finite(v) else _removable(cls, [c[k] for c in inner.columns], v)
                      for k, v in enumerate(values)]
        # the op's own result: a few ulps, plus the errors its operands bring (|df/da|*e). How
        # torch's kernel forms the result earns nothing: sigmoid'(40) = 0 from y*(1 - y) is a loss,
        # not a rounding. (What a half-ulp change of the inputs makes unavoidable is charged once,
        # on the whole expression: reference.PointReference._conditioning.)
        charge = 2 * ulps * b.u
        bound = [charge * s for s in b.abs_of(values)]
        for d, (_, e, _) in zip(partials, args):
            index = _where([x != ZERO for x in e])
            if index:
                slopes = d(inner.subset(index) if len(index) < b.n else inner)
                for k, slope in zip(index, slopes):
                    bound[k] = bound[k] + abs(slope) * e[k]
        return values, _underflow(bound, values, b, under * 2 * ulps), flags

    return function


def _kinked(cls: type, order: int, kinks: tuple, inner: Batch, values: Column, flags: Kinks) -> tuple[Column, Kinks]:
    """At a kink of a one-input op: flag it, and use torch's convention where it overrides."""
    if order == 0:
        return values, flags
    original, values, hits, done = values, list(values), [False] * inner.n, [False] * inner.n
    for locate, lattice, kink in kinks:
        for k, delta in enumerate(locate(inner)):
            if done[k] or not delta.is_exact() or not (delta.is_integer() if lattice else delta == 0):
                continue
            hits[k] = True
            pinned = inner.conventions.pinned(cls.op.name, order, _exact_fraction(inner.columns[0][k]))
            override = kink.override(order)
            if pinned is not None:
                values[k], done[k] = arb(pinned.numerator) / pinned.denominator, True
            elif override is not None:
                values[k], done[k] = compile_closed(as_sympy(override), [])([]), True
    return (values if any(done) else original), _kinks([flags, hits if any(hits) else None])


def _removable(cls: type, balls: list[arb], value: arb) -> arb:
    """A one-input op's value where its closed form is not finite at an exact argument: the limit
    there (log(0) = -inf, a 0/0). Only at a moderate argument: every edge of a catalogue op lies
    within 2^64, and SymPy asked for the limit of exp2 at 2^1000 builds 2^(2^1000) exactly."""
    exact = [_exact_fraction(b) for b in balls]
    if any(e is None or abs(e) > 2**64 or e.denominator > 2**1100 for e in exact):
        return value
    limit = _limit(cls, tuple(exact))  # type: ignore[arg-type]
    return value if limit is None else compile_closed(limit, [])([])


# ---------------------------------------------------------------- magnitudes of derivative terms
#
# torch's backward sums the chain rule's terms, one per path through the tree. When they cancel,
# its absolute error scales with the terms, not with their sum: (y/y)' = 1/y - y/y^2 is 0 exactly,
# but never in floating point. SymPy simplifies such sums away before differentiating, so the
# derivative expression cannot show them; these jets walk the unevaluated tree instead and carry,
# for every first and second partial derivative, the sum of the absolute values of its terms.

Jet = tuple[Column, dict[int, Column], dict[tuple[int, int], Column]]  # |value|, M1[i], M2[(i, j)] (i <= j)
JetFn = Callable[[Batch], Jet]


class _Ones(list):
    """A column of ones (a symbol's own jet, the start of a product): products with it are skipped."""


def _times(x: Column, y: Column) -> Column:
    if isinstance(x, _Ones):
        return y
    return x if isinstance(y, _Ones) else [p * q for p, q in zip(x, y)]


def _scale(m: dict, c: Column) -> dict:
    return {k: _times(v, c) for k, v in m.items()}


def _acc(into: dict, m: dict) -> None:
    for k, v in m.items():
        into[k] = [x + y for x, y in zip(into[k], v)] if k in into else v


def _outer(a: dict[int, Column], b: dict[int, Column], c: Column) -> dict[tuple[int, int], Column]:
    out: dict[tuple[int, int], Column] = {}
    for i, x in a.items():
        for j, y in b.items():
            key = (i, j) if i <= j else (j, i)
            _acc(out, {key: _times(_times(c, x), y)})
    return out


def _chain(value: Column, args: Sequence[Jet], first: Sequence[Column],
           second: Sequence[Sequence[Column | None]] | None) -> Jet:
    """|f|, and the term magnitudes of f(a_1, ...) from those of its arguments and |df|, |d2f|
    (second[k][j] for j >= k; None where it is 0)."""
    m1: dict[int, Column] = {}
    m2: dict[tuple[int, int], Column] = {}
    for k, (_, a1, a2) in enumerate(args):
        _acc(m1, _scale(a1, first[k]))
        _acc(m2, _scale(a2, first[k]))
        if second is not None:
            for j, (_, b1, _) in enumerate(args):
                h = second[k][j]
                if j >= k and h is not None:
                    _acc(m2, _outer(a1, b1, h if j == k else [2 * x for x in h]))
    return value, m1, m2


@cache
def _second_partials(cls: type) -> tuple[tuple[BatchForm, ...], ...] | None:
    if not issubclass(cls, OpFunction):
        return None
    syms, body = closed_body(cls)
    n = cls.op.arity
    try:
        return tuple(tuple(closed(stored.diff(body, syms[i], syms[j]), syms) for j in range(n)) for i in range(n))
    except HarnessError:
        return None


def _values(form: Modelled) -> BatchForm:
    return lambda b: form(b)[0]


def _gather(b: Batch, groups: dict[object, list[int]], fns: Callable[[object], JetFn]) -> Jet:
    """Each group of members takes its own jet (a where() branch, the largest of a max); scattered
    back into columns (0 where a member's jet lacks a term)."""
    value = [ZERO] * b.n
    m1: dict[int, Column] = {}
    m2: dict[tuple[int, int], Column] = {}
    for key, index in groups.items():
        sub = b.subset(index) if len(index) < b.n else b
        v, a1, a2 = fns(key)(sub)
        for pos, k in enumerate(index):
            value[k] = v[pos]
        for into, part in ((m1, a1), (m2, a2)):
            for term, column in part.items():
                target = into.setdefault(term, [ZERO] * b.n)
                for pos, k in enumerate(index):
                    target[k] = column[pos]
    return value, m1, m2


@lru_cache(maxsize=EXPRESSIONS)
def compile_jets(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> JetFn:
    """The term magnitudes of an unevaluated tree's first and second partial derivatives.

    Argument values are the error model's (memoized in the batch: the tree's value has them)."""
    if expr in symbols:
        i = symbols.index(expr)
        return lambda b: (b.abs_of(b.columns[i]), {i: _Ones([ONE] * b.n)}, {})
    if expr.is_Number or expr.is_NumberSymbol or expr is sympy.zoo or expr is sympy.nan:
        constant = closed(expr, symbols)
        return lambda b: (b.abs_of(constant(b)), {}, {})
    if isinstance(expr, sympy.Piecewise):
        return _memo(_jet_piecewise(expr, symbols, fmt))
    parts = [compile_jets(arg, symbols, fmt) for arg in expr.args]
    values = [_values(compile_modelled(arg, symbols, fmt)) for arg in expr.args]
    if expr.is_Add:
        own = _values(compile_modelled(expr, symbols, fmt))

        def add(b: Batch) -> Jet:
            m1: dict = {}
            m2: dict = {}
            for p in parts:
                _, a1, a2 = p(b)
                _acc(m1, a1)
                _acc(m2, a2)
            return b.abs_of(own(b)), m1, m2
        return _memo(add)
    if expr.is_Mul:
        def mul(b: Batch) -> Jet:
            ones = _Ones([ONE] * b.n)
            acc: Jet = (ones, {}, {})
            for p in parts:
                f = p(b)
                product = _times(acc[0], f[0])
                acc = _chain(product, [acc, f], [f[0], acc[0]], [[None, ones], [None, None]])
            return acc
        return _memo(mul)
    if expr.is_Pow:
        if expr.exp.is_Integer:
            return _memo(_jet_integer_power(int(expr.exp), parts[0], values[0]))
        return _memo(_jet_power(parts, values))
    if isinstance(expr, no_grad):
        return lambda b: (b.abs_of(values[0](b)), {}, {})
    if isinstance(expr, select):
        mode = int(expr.args[3])
        branch = {True: parts[1], False: parts[2]}

        def chosen(b: Batch) -> Jet:
            groups: dict[object, list[int]] = {True: [], False: []}
            for k, d in enumerate(values[0](b)):
                pick = (d.is_exact() and d == 0) if mode == 2 else _cmp(d, strict=mode == 0)
                groups[pick is not False].append(k)
            return _gather(b, {g: i for g, i in groups.items() if i}, branch.__getitem__)
        return _memo(chosen)
    if isinstance(expr, amax_fn | amin_fn | sympy.Max | sympy.Min):
        sign = 1 if isinstance(expr, amax_fn | sympy.Max) else -1

        def extreme(b: Batch) -> Jet:
            columns = [v(b) for v in values]
            groups: dict[object, list[int]] = {}
            for k in range(b.n):
                best = max(range(len(columns)), key=lambda i: float(columns[i][k].mid()) * sign)
                groups.setdefault(best, []).append(k)
            return _gather(b, groups, parts.__getitem__)
        return _memo(extreme)
    return _memo(_jet_function(expr, parts, values))


def _jet_piecewise(expr: sympy.Piecewise, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> JetFn:
    """Each member takes the jets of its branch: the first whose condition holds or is undecided."""
    branches = [compile_jets(e, symbols, fmt) for e, _ in expr.args]
    decisions = [_relation(c, symbols) for _, c in expr.args]

    def piecewise(b: Batch) -> Jet:
        chosen = [None] * b.n
        for i, decide in enumerate(decisions):
            for k, d in enumerate(decide(b)):
                if chosen[k] is None and d is not False:
                    chosen[k] = i
        groups: dict[object, list[int]] = {}
        for k, i in enumerate(chosen):
            if i is not None:
                groups.setdefault(i, []).append(k)
        return _gather(b, groups, branches.__getitem__)

    return piecewise


def _jet_integer_power(n: int, part: JetFn, base: BatchForm) -> JetFn:
    """x**n for a constant integer n: |x^n|, |n x^(n-1)| and |n (n-1) x^(n-2)|, column by column."""
    first, second = arb(n), arb(n * (n - 1))

    def power(b: Batch) -> Jet:
        xs = base(b)
        vs = _powers(xs, n)
        db = [abs(first * v / x) if x != ZERO else abs(first * x ** (n - 1)) if n >= 1 else arb.pos_inf()
              for v, x in zip(vs, xs)]
        d2b = [abs(second * v / (x * x)) if x != ZERO else ZERO for v, x in zip(vs, xs)]
        return _chain(b.abs_of(vs), [part(b)], [db], [[d2b]])

    return power


def _jet_power(parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    base, exponent = values
    bj, ej = parts

    def power(b: Batch) -> Jet:
        variable_exponent = bool(ej(b)[1])
        value, db, d2b, de, cross, d2e = [], [], [], [], [], []
        for x, e in zip(base(b), exponent(b)):
            if e.is_exact() and e.is_integer():
                v = x ** int(e.unique_fmpz()) if e >= 0 else 1 / x ** int(-e.unique_fmpz())
            else:
                v = _power(x, e)
            value.append(abs(v))
            db.append(abs(e * v / x) if x != ZERO else abs(e * x ** (e - 1)) if e >= 1 else arb.pos_inf())
            d2b.append(abs(e * (e - 1) * v / (x * x)) if x != ZERO else ZERO)
            if variable_exponent:
                de.append(abs(v * x.log()))
                cross.append(abs(v / x) * (1 + abs(e * x.log())))
                d2e.append(abs(v * x.log() ** 2))
        if variable_exponent:
            return _chain(value, [bj(b), ej(b)], [db, de], [[d2b, cross], [None, d2e]])
        return _chain(value, [bj(b)], [db], [[d2b]])

    return power


def _jet_function(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    cls = type(expr)
    value_form, partials = closed_form(cls, len(expr.args)) if not isinstance(expr, norm2) else (None, ())
    second = _second_partials(cls)

    def usable(column: Column) -> Column:
        return [abs(x) if x.is_finite() else ZERO for x in column]  # (a nan is not finite)

    def function(b: Batch) -> Jet:
        inner = b.of([v(b) for v in values])
        args = [p(b) for p in parts]
        if isinstance(expr, norm2):
            norms = [sum((x * x for x in t), ZERO).sqrt() for t in zip(*inner.columns)]
            first = [[abs(x / n) if n != 0 else ONE for x, n in zip(column, norms)] for column in inner.columns]
            return _chain(norms, args, first, None)
        first = [usable(d(inner)) for d in partials]
        hess = [[usable(f(inner)) for f in row] for row in second] if second is not None else None
        return _chain(inner.abs_of(value_form(inner)), args[: len(first)], first, hess)

    return function


@lru_cache(maxsize=SUBTREES)
def tree_depth(expr: sympy.Expr) -> int:
    return 1 + max((tree_depth(a) for a in expr.args), default=0)
