"""SymPy expressions compiled to functions of Arb balls: closed forms, and the error model.

`compile_closed` turns an expression into a function of ball arguments (one table of node types,
as sympy2jax does for JAX). `compile_modelled` does the same for the harness's own trees and
derivative expressions, and runs the error model beside the value: a bound on the rounding error
that a floating-point evaluation of the same tree in the case's dtype can make. The model charges
each operation its kernel's accuracy and propagates input errors through partial derivatives
(first-order running error analysis); sums charge the magnitude of the terms they add, which is
what lets a result that cancels to 0 be compared against an absolute floor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache

import flint
import sympy
from flint import arb

from harness.errors import HarnessError
from harness.functions import (
    KinkFunction,
    OpFunction,
    amax_fn,
    amin_fn,
    as_sympy,
    ceil_fn,
    closed_body,
    floor_fn,
    jump,
    loggamma_abs,
    max_share,
    min_share,
    no_grad,
    norm2,
    ratio,
    round_fn,
    select,
    trunc_fn,
)
from harness.numbers import FloatFormat, round_to_format

ClosedForm = Callable[[Sequence[arb]], arb]
ZERO = arb(0)


@contextmanager
def precision(bits: int) -> Iterator[None]:
    old = flint.ctx.prec
    flint.ctx.prec = bits
    try:
        yield
    finally:
        flint.ctx.prec = old


# ---------------------------------------------------------------- small ball functions

HUGE = arb(2) ** 20  # |exponent| beyond which exp's value is far outside every float format


def _exp(a: arb) -> arb:
    """exp, without computing astronomically large or small values digit by digit."""
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


def _polygamma(n: arb, x: arb) -> arb:
    order = int(n.unique_fmpz()) if n.is_exact() and n.is_integer() else None
    if order is None or order < 0:
        return arb.nan()
    if order == 0:
        return x.digamma()
    # Hurwitz zeta wants a positive shift: zeta(s, x) = zeta(s, x + k) + sum_{j<k} (x + j)^-s
    s, total, shift = arb(order + 1), ZERO, x
    while not shift > 0.5:
        if shift.is_exact() and shift.is_integer() and shift <= 0:
            return arb.nan()  # a pole
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


def _relation(cond: sympy.Basic, symbols: Sequence[sympy.Symbol]) -> Callable[[Sequence[arb]], bool | None]:
    """A condition of a Piecewise branch, decided on balls (None: undecided)."""
    if cond is sympy.true:
        return lambda a: True
    if cond is sympy.false:
        return lambda a: False
    if isinstance(cond, sympy.And | sympy.Or):
        parts = [_relation(c, symbols) for c in cond.args]
        joined = all if isinstance(cond, sympy.And) else any

        def both(a: Sequence[arb]) -> bool | None:
            values = [p(a) for p in parts]
            if None in values:
                return None
            return joined(values)

        return both
    diff = compile_closed(cond.lhs - cond.rhs, symbols)
    if isinstance(cond, sympy.Eq | sympy.Ne):
        equal = isinstance(cond, sympy.Eq)

        def eq(a: Sequence[arb]) -> bool | None:
            d = diff(a)
            if d > 0 or d < 0:
                return not equal
            return equal if d.is_exact() else None

        return eq
    sign = 1 if isinstance(cond, sympy.GreaterThan | sympy.StrictGreaterThan) else -1
    strict = isinstance(cond, sympy.StrictGreaterThan | sympy.StrictLessThan)
    return lambda a: _cmp(sign * diff(a), strict)


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
    trunc_fn: _trunc, loggamma_abs: _lgamma_abs, no_grad: lambda a: a,
}
_BINARY: dict[type, Callable[[arb, arb], arb]] = {
    sympy.atan2: arb.atan2, sympy.polygamma: _polygamma, sympy.besseli: _besseli,
}
_NARY: dict[type, Callable[[list[arb]], arb]] = {
    sympy.Max: lambda v: _reduce(v, arb.max), sympy.Min: lambda v: _reduce(v, arb.min),
    amax_fn: lambda v: _reduce(v, arb.max), amin_fn: lambda v: _reduce(v, arb.min),
    norm2: lambda v: sum((x * x for x in v), ZERO).sqrt(),
}


def _reduce(values: list[arb], combine: Callable[[arb, arb], arb]) -> arb:
    total = values[0]
    for v in values[1:]:
        total = combine(total, v)
    return total


def compile_closed(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> ClosedForm:
    """A SymPy expression as a function of ball arguments."""
    if expr in symbols:
        i = list(symbols).index(expr)
        return lambda a: a[i]
    if expr.is_Rational:
        p, q = int(expr.p), int(expr.q)
        return (lambda a: arb(p)) if q == 1 else (lambda a: arb(p) / q)
    if expr.is_Float:
        r = sympy.Rational(expr)
        return lambda a: arb(int(r.p)) / int(r.q)
    if expr is sympy.pi:
        return lambda a: arb.pi()
    if expr is sympy.E:
        return lambda a: arb.const_e()
    if expr is sympy.EulerGamma:
        return lambda a: arb.const_euler()
    if expr is sympy.Catalan:
        return lambda a: arb.const_catalan()
    if expr is sympy.oo or expr is sympy.S.NegativeInfinity:
        inf = arb.pos_inf() if expr is sympy.oo else arb.neg_inf()
        return lambda a: inf
    if expr is sympy.nan or expr is sympy.zoo:  # SymPy's 0/0 and 1/0: not a real number
        return lambda a: arb.nan()
    if isinstance(expr, sympy.Piecewise):
        return _closed_piecewise(expr, symbols)
    parts = [compile_closed(arg, symbols) for arg in expr.args]
    if expr.is_Add:
        return lambda a: _fold(parts, a, lambda x, y: x + y)
    if expr.is_Mul:
        return lambda a: _fold(parts, a, lambda x, y: x * y)
    if expr.is_Pow:
        return _compile_pow(expr, parts)
    return _closed_function(expr, parts)


def _closed_function(expr: sympy.Expr, parts: list[ClosedForm]) -> ClosedForm:
    cls = type(expr)
    if isinstance(expr, KinkFunction):
        inner, convention = parts
        return lambda a: _kink_value(cls, inner(a), lambda: convention(a))[0]
    if isinstance(expr, OpFunction):
        form = closed_form(cls)[0]
        return lambda a: form([p(a) for p in parts])
    if isinstance(expr, select):
        d, x, y, mode = parts
        m = int(expr.args[3])
        return lambda a: _select(d(a), m, lambda: x(a), lambda: y(a))
    if isinstance(expr, jump):
        d = parts[0]
        return lambda a: _jump(d(a))[0]
    if isinstance(expr, ratio):
        num, den = parts
        return lambda a: _ratio(num(a), den(a))[0]
    if isinstance(expr, max_share):
        i, sign = int(expr.args[0]), (-1 if isinstance(expr, min_share) else 1)
        rest = parts[1:]
        return lambda a: _share(i, [p(a) for p in rest], sign)
    if cls in _UNARY and len(parts) == 1:
        fn, (inner,) = _UNARY[cls], parts
        return lambda a: fn(inner(a))
    if cls in _BINARY:
        fn2, (first, second) = _BINARY[cls], parts
        return lambda a: fn2(first(a), second(a))
    if cls in _NARY:
        fnn = _NARY[cls]
        return lambda a: fnn([p(a) for p in parts])
    raise HarnessError(f"the reference cannot evaluate {cls.__name__} (in {expr})")


def _closed_piecewise(expr: sympy.Piecewise, symbols: Sequence[sympy.Symbol]) -> ClosedForm:
    branches = [(compile_closed(e, symbols), _relation(c, symbols)) for e, c in expr.args]

    def piecewise(a: Sequence[arb]) -> arb:
        candidates: list[arb] = []
        for value, condition in branches:
            decided = condition(a)
            if decided is True:
                candidates.append(value(a))
                break
            if decided is None:
                candidates.append(value(a))
        if not candidates:
            return arb.nan()
        return _reduce(candidates, arb.union) if len(candidates) > 1 else candidates[0]

    return piecewise


def _kink_value(cls: type[KinkFunction], x: arb, convention: Callable[[], arb]) -> tuple[arb, bool]:
    if x > 0 or x < 0:
        return arb(cls.away(bool(x > 0))), False
    if x.is_exact():
        return convention(), True
    return arb.union(arb(cls.away(True)), arb(cls.away(False))), False


def _select(d: arb, mode: int, a: Callable[[], arb], b: Callable[[], arb]) -> arb:
    if mode == 2:
        chosen = (True if d.is_exact() and d == 0 else (False if d > 0 or d < 0 else None))
    else:
        chosen = _cmp(d, strict=mode == 0)
    if chosen is None:
        return arb.union(a(), b())
    return a() if chosen else b()


def _jump(d: arb) -> tuple[arb, bool]:
    if d > 0 or d < 0:
        return ZERO, False
    return ZERO, bool(d.is_exact())


def _ratio(num: arb, den: arb) -> tuple[arb, bool]:
    if den.is_exact() and den == 0:
        return ZERO, True
    return num / den, False


def _fold(parts: list[ClosedForm], a: Sequence[arb], combine: Callable[[arb, arb], arb]) -> arb:
    total = parts[0](a)
    for p in parts[1:]:
        total = combine(total, p(a))
    return total


def _compile_pow(expr: sympy.Pow, parts: list[ClosedForm]) -> ClosedForm:
    base, exponent = parts
    e = expr.exp
    if e.is_Integer:
        n = int(e)
        return lambda a: base(a) ** n if n >= 0 else 1 / base(a) ** (-n)
    if e == sympy.S.Half:
        return lambda a: base(a).sqrt()
    if e == -sympy.S.Half:
        return lambda a: base(a).rsqrt()
    return lambda a: _power(base(a), exponent(a))


@cache
def closed_form(cls: type) -> tuple[ClosedForm, tuple[ClosedForm, ...]]:
    """The closed form of a function class and of its partial derivatives (for the error model)."""
    if issubclass(cls, OpFunction):
        syms, body = closed_body(cls)
        if cls.op.partials is not None and not any(cls.orders):
            derivatives = [cls.op.partials(syms, i) for i in range(cls.op.arity)]
        else:
            derivatives = [sympy.diff(body, s) for s in syms[: cls.op.arity]]
        partials = tuple(compile_closed(d, syms) for d in derivatives)
        return compile_closed(body, syms), partials
    s = sympy.Symbol("a0", real=True)
    body = cls(s)
    return compile_closed(body, [s]), (compile_closed(sympy.diff(body, s), [s]),)


@cache
def _floor_form(cls: type, order: int, kind: str) -> ClosedForm | None:
    """The op's error-model floor (absolute) or relative factor at this derivative order."""
    hook = getattr(cls.op, kind, None) if issubclass(cls, OpFunction) else None
    if hook is None:
        return None
    syms = sympy.symbols(f"a0:{cls.n_args}", real=True)
    value = as_sympy(hook(syms, order))
    return None if value == 0 else compile_closed(value, syms)


@cache
def _kink_locators(cls: type) -> tuple[tuple[ClosedForm, bool, object], ...]:
    """For a one-input op: where each kink is, whether it repeats, and the Kink itself."""
    if not issubclass(cls, OpFunction) or cls.op.arity != 1:
        return ()
    syms = sympy.symbols(f"a0:{cls.n_args}", real=True)
    out = []
    for kink in cls.op.kinks:
        if kink.at is not None:
            out.append((compile_closed(syms[0] - kink.at(*syms[1:]), syms), kink.lattice, kink))
    return tuple(out)


@cache
def _limit(cls: type, args: tuple[Fraction, ...]) -> sympy.Expr | None:
    """The limit of an op's closed form at an exact point where the form is 0/0 (sinc at 0)."""
    syms, body = closed_body(cls)
    body = body.subs({s: sympy.Rational(a.numerator, a.denominator) for s, a in zip(syms[1:], args[1:])})
    point = sympy.Rational(args[0].numerator, args[0].denominator)
    try:
        value = sympy.limit(body, syms[0], point, dir="+-")
    except (NotImplementedError, ValueError, TypeError):
        return None
    return value if value.is_real and value.is_finite else None


def _exact_fraction(b: arb) -> Fraction | None:
    if not b.is_exact() or not b.is_finite():
        return None
    man, exp = (int(x) for x in b.mid().man_exp()) if b != 0 else (0, 0)
    return Fraction(man) * Fraction(2) ** exp


# ---------------------------------------------------------------- the error model


@dataclass
class State:
    """What one evaluation learns besides values: whether it met a kink."""

    u: arb
    fmt: FloatFormat
    kink: bool = False
    conventions: dict[str, dict[int, Fraction]] = field(default_factory=dict)


Modelled = Callable[[Sequence[arb], State], tuple[arb, arb]]


@cache
def compile_modelled(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> Modelled:
    """Value and error-model bound of a harness tree or derivative expression."""
    if expr in symbols:
        i = symbols.index(expr)
        return lambda a, s: (a[i], ZERO)
    if expr is sympy.nan or expr is sympy.zoo or expr is sympy.oo or expr is sympy.S.NegativeInfinity:
        value = compile_closed(expr, symbols)
        return lambda a, s: (value(a), ZERO)
    if expr.is_Number or expr.is_NumberSymbol:
        value = compile_closed(expr, symbols)
        exact = expr.is_Rational and _representable(Fraction(int(expr.p), int(expr.q)), fmt)
        return (lambda a, s: (value(a), ZERO)) if exact else (lambda a, s: _rounded(value(a), s))
    if isinstance(expr, sympy.Piecewise):
        return _modelled_piecewise(expr, symbols, fmt)
    parts = [compile_modelled(arg, symbols, fmt) for arg in expr.args]
    if expr.is_Add:
        return lambda a, s: _add([p(a, s) for p in parts], s)
    if expr.is_Mul:
        roundings = max(0, sum(1 for f in expr.args if not _is_power_of_two(f)) - 1)
        return lambda a, s: _mul([p(a, s) for p in parts], roundings, s)
    if expr.is_Pow:
        return _modelled_pow(expr, parts)
    special = _modelled_special(expr, parts)
    return special if special is not None else _modelled_function(expr, parts, fmt)


def _representable(q: Fraction, fmt: FloatFormat) -> bool:
    return round_to_format(q, fmt) == q


def _is_power_of_two(x: sympy.Expr) -> bool:
    if not x.is_Rational or x == 0:
        return False
    p, q = abs(int(x.p)), int(x.q)
    return p & (p - 1) == 0 and q & (q - 1) == 0


def _rounded(v: arb, s: State) -> tuple[arb, arb]:
    return v, s.u * abs(v)


def _add(terms: list[tuple[arb, arb]], s: State) -> tuple[arb, arb]:
    value, bound, size = ZERO, ZERO, ZERO
    for v, e in terms:
        value, bound, size = value + v, bound + e, size + abs(v)
    return value, bound + (len(terms) - 1) * s.u * size


def _mul(factors: list[tuple[arb, arb]], roundings: int, s: State) -> tuple[arb, arb]:
    value = arb(1)
    for v, _ in factors:
        value = value * v
    bound = roundings * s.u * abs(value)
    for i, (_, e) in enumerate(factors):
        if e != 0:
            others = arb(1)
            for j, (v, _) in enumerate(factors):
                if j != i:
                    others = others * abs(v)
            bound = bound + e * others
    return value, bound


def _modelled_pow(expr: sympy.Pow, parts: list[Modelled]) -> Modelled:
    base, exponent = parts
    e = expr.exp
    if e.is_Integer:
        n = int(e)
        roundings = 0 if n in (0, 1) else (1 if n in (2, -1) else 2)

        def integer_power(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            b, eb = base(a, s)
            v = b**n if n >= 0 else 1 / b ** (-n)
            bound = roundings * s.u * abs(v)
            if eb != 0:
                bound = bound + abs(n) * abs(b ** (n - 1) if n >= 1 else 1 / b ** (1 - n)) * eb
            return v, bound

        return integer_power

    def real_power(a: Sequence[arb], s: State) -> tuple[arb, arb]:
        (b, eb), (x, ex) = base(a, s), exponent(a, s)
        v = b.sqrt() if e == sympy.S.Half else (b.rsqrt() if e == -sympy.S.Half else _power(b, x))
        bound = 2 * s.u * abs(v)
        if eb != 0:
            bound = bound + abs(x * v / b) * eb
        if ex != 0:
            bound = bound + abs(v * b.log()) * ex
        return v, bound

    return real_power


def _modelled_piecewise(expr: sympy.Piecewise, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> Modelled:
    branches = [(compile_modelled(e, symbols, fmt), _relation(c, symbols)) for e, c in expr.args]

    def piecewise(a: Sequence[arb], s: State) -> tuple[arb, arb]:
        chosen: list[tuple[arb, arb]] = []
        for value, condition in branches:
            decided = condition(a)
            if decided is True:
                chosen.append(value(a, s))
                break
            if decided is None:
                chosen.append(value(a, s))
        if not chosen:
            return arb.nan(), ZERO
        if len(chosen) == 1:
            return chosen[0]
        return _reduce([v for v, _ in chosen], arb.union), _reduce([e for _, e in chosen], arb.max)

    return piecewise


def _modelled_special(expr: sympy.Expr, parts: list[Modelled]) -> Modelled | None:
    """The harness's own marker functions: kinks, where, ratios, shares, stop-gradients."""
    cls = type(expr)
    if isinstance(expr, KinkFunction):
        inner, convention = parts

        def kink(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            x, ex = inner(a, s)
            value, hit = _kink_value(cls, x, lambda: convention(a, s)[0])
            s.kink = s.kink or hit
            if not hit and ex != 0 and abs(x) <= 2 * ex:
                # torch's rounded x may sit on the other side of the kink: allow the jump
                s.kink = True
                jump = abs(arb(cls.away(True)) - arb(cls.away(False)))
                return value, arb.max(jump, abs(value - convention(a, s)[0]))
            return value, ZERO

        return kink
    if isinstance(expr, select):
        d, x, y, _ = parts
        mode = int(expr.args[3])
        return lambda a, s: _select_modelled(d(a, s)[0], mode, lambda: x(a, s), lambda: y(a, s))
    if isinstance(expr, jump):
        d = parts[0]

        def jumped(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            value, hit = _jump(d(a, s)[0])
            s.kink = s.kink or hit
            return value, ZERO

        return jumped
    if isinstance(expr, ratio):
        num, den = parts

        def quotient(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            (n, en), (dv, ed) = num(a, s), den(a, s)
            value, hit = _ratio(n, dv)
            s.kink = s.kink or hit
            if hit:
                return value, ZERO
            return value, s.u * abs(value) + en / abs(dv) + abs(value / dv) * ed

        return quotient
    if isinstance(expr, no_grad):
        return parts[0]
    if isinstance(expr, max_share):
        i, sign = int(expr.args[0]), (-1 if isinstance(expr, min_share) else 1)
        rest = parts[1:]

        def share(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            values = [p(a, s)[0] for p in rest]
            value = _share(i, values, sign)
            ties = sum(1 for v in values if (v - values[i]).is_exact() and v == values[i])
            s.kink = s.kink or (ties > 1 and value != 0)
            return value, ZERO

        return share
    if isinstance(expr, amax_fn | amin_fn | sympy.Max | sympy.Min):
        pick = arb.max if isinstance(expr, amax_fn | sympy.Max) else arb.min  # amin_fn is no amax_fn

        def extreme(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            terms = [p(a, s) for p in parts]
            return _reduce([v for v, _ in terms], pick), _reduce([e for _, e in terms], arb.max)

        return extreme
    if isinstance(expr, norm2):

        def length(a: Sequence[arb], s: State) -> tuple[arb, arb]:
            terms = [p(a, s) for p in parts]
            value = sum((v * v for v, _ in terms), ZERO).sqrt()
            bound = (len(terms) + 1) * s.u * value
            if value != 0:
                bound = bound + sum((abs(v / value) * e for v, e in terms if e != 0), ZERO)
            return value, bound

        return length
    return None


def _select_modelled(d: arb, mode: int, a: Callable[[], tuple[arb, arb]],
                     b: Callable[[], tuple[arb, arb]]) -> tuple[arb, arb]:
    if mode == 2:
        chosen = True if d.is_exact() and d == 0 else (False if d > 0 or d < 0 else None)
    else:
        chosen = _cmp(d, strict=mode == 0)
    if chosen is None:
        (va, ea), (vb, eb) = a(), b()
        return arb.union(va, vb), arb.max(ea, eb)
    return a() if chosen else b()


def _modelled_function(expr: sympy.Function, parts: list[Modelled], fmt: FloatFormat) -> Modelled:
    cls = type(expr)
    value_form, partials = closed_form(cls)
    is_op = issubclass(cls, OpFunction)
    ulps = cls.op.accuracy(fmt.precision) if is_op else 2.0
    order = sum(cls.orders) if is_op else 0
    floor = _floor_form(cls, order, "floor")
    relative = _floor_form(cls, order, "relative")
    kinks = _kink_locators(cls)

    def function(a: Sequence[arb], s: State) -> tuple[arb, arb]:
        args = [p(a, s) for p in parts]
        balls = [v for v, _ in args]
        v = _kinked(cls, order, kinks, balls, s) if kinks else None
        if v is None:
            v = value_form(balls)
        if is_op and cls.op.arity == 1 and not finite(v):
            v = _removable(cls, balls, v)
        size = abs(v) if relative is None else abs(v) * (1 + abs(relative(balls)))
        if floor is not None:
            size = size + abs(floor(balls))
        bound = 2 * ulps * s.u * size
        for d, (_, e) in zip(partials, args):
            if e != 0:
                bound = bound + abs(d(balls)) * e
        return v, bound

    return function


def _kinked(cls: type, order: int, kinks: tuple, balls: list[arb], s: State) -> arb | None:
    """At a kink of a one-input op: flag it, and return torch's convention if it overrides."""
    for locate, lattice, kink in kinks:
        delta = locate(balls)
        if not delta.is_exact():
            continue
        at = delta.is_integer() if lattice else delta == 0
        if not at or order == 0:
            continue
        s.kink = True
        pinned = s.conventions.get(cls.op.name, {}).get(order)
        if pinned is not None:
            return arb(pinned.numerator) / pinned.denominator
        override = kink.override(order)
        if override is not None:
            return compile_closed(as_sympy(override), [])([])
    return None


def _removable(cls: type, balls: list[arb], value: arb) -> arb:
    exact = [_exact_fraction(b) for b in balls]
    if any(e is None for e in exact):
        return value
    limit = _limit(cls, tuple(exact))  # type: ignore[arg-type]
    return value if limit is None else compile_closed(limit, [])([])


def finite(b: arb) -> bool:
    return b.is_finite() and not b.is_nan()




# ---------------------------------------------------------------- magnitudes of derivative terms
#
# torch's backward sums the chain rule's terms, one per path through the tree. When they cancel,
# its absolute error scales with the terms, not with their sum: (y/y)' = 1/y - y/y^2 is 0 exactly,
# but never in floating point. SymPy simplifies such sums away before differentiating, so the
# derivative expression cannot show them; these jets walk the unevaluated tree instead and carry,
# for every first and second partial derivative, the sum of the absolute values of its terms.

Jet = tuple[arb, dict[int, arb], dict[tuple[int, int], arb]]  # |value|, M1[i], M2[(i, j)] (i <= j)
JetFn = Callable[[Sequence[arb]], tuple[arb, dict[int, arb], dict[tuple[int, int], arb]]]


def _scale(m: dict, c: arb) -> dict:
    return {k: c * v for k, v in m.items()}


def _acc(into: dict, m: dict) -> None:
    for k, v in m.items():
        into[k] = into[k] + v if k in into else v


def _outer(a: dict[int, arb], b: dict[int, arb], c: arb) -> dict[tuple[int, int], arb]:
    out: dict[tuple[int, int], arb] = {}
    for i, x in a.items():
        for j, y in b.items():
            key = (i, j) if i <= j else (j, i)
            out[key] = out.get(key, ZERO) + c * x * y
    return out


def _chain(value: arb, args: list[tuple[arb, dict, dict]], first: list[arb], second: list[list[arb]] | None) -> tuple:
    """|f|, and the term magnitudes of f(a_1, ...) from those of its arguments and |df|, |d2f|."""
    m1: dict[int, arb] = {}
    m2: dict[tuple[int, int], arb] = {}
    for k, (_, a1, a2) in enumerate(args):
        _acc(m1, _scale(a1, first[k]))
        _acc(m2, _scale(a2, first[k]))
        if second is not None:
            for j, (_, b1, _) in enumerate(args):
                if j >= k:
                    _acc(m2, _outer(a1, b1, second[k][j] * (1 if j == k else 2)))
    return value, m1, m2


@cache
def _second_partials(cls: type) -> tuple[tuple[ClosedForm, ...], ...] | None:
    if not issubclass(cls, OpFunction):
        return None
    syms, body = closed_body(cls)
    n = cls.op.arity
    try:
        return tuple(tuple(compile_closed(sympy.diff(body, syms[i], syms[j]), syms) for j in range(n))
                     for i in range(n))
    except HarnessError:
        return None


@cache
def compile_jets(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> JetFn:
    """The term magnitudes of an unevaluated tree's first and second partial derivatives."""
    if expr in symbols:
        i = symbols.index(expr)
        return lambda a: (abs(a[i]), {i: arb(1)}, {})
    if expr.is_Number or expr.is_NumberSymbol or expr is sympy.zoo or expr is sympy.nan:
        value = compile_closed(expr, symbols)
        return lambda a: (abs(value(a)), {}, {})
    parts = [compile_jets(arg, symbols) for arg in expr.args]
    values = [compile_closed(arg, symbols) for arg in expr.args]
    if expr.is_Add:
        def add(a: Sequence[arb]) -> tuple:
            m1: dict = {}
            m2: dict = {}
            total = ZERO
            for p, v in zip(parts, values):
                _, a1, a2 = p(a)
                total = total + v(a)
                _acc(m1, a1)
                _acc(m2, a2)
            return abs(total), m1, m2
        return add
    if expr.is_Mul:
        def mul(a: Sequence[arb]) -> tuple:
            acc = (arb(1), {}, {})
            for p in parts:
                b = p(a)
                acc = _chain(acc[0] * b[0], [acc, b], [b[0], acc[0]], [[ZERO, arb(1)], [arb(1), ZERO]])
            return acc
        return mul
    if expr.is_Pow:
        base, exponent = values
        bj, ej = parts

        def power(a: Sequence[arb]) -> tuple:
            b, e = base(a), exponent(a)
            v = _power(b, e) if not (e.is_exact() and e.is_integer()) else (
                b ** int(e.unique_fmpz()) if e >= 0 else 1 / b ** int(-e.unique_fmpz()))
            db = abs(e * v / b) if b != 0 else abs(e * b ** (e - 1)) if e >= 1 else arb.pos_inf()
            d2b = abs(e * (e - 1) * v / (b * b)) if b != 0 else ZERO
            if ej(a)[1]:
                de = abs(v * b.log())
                return _chain(abs(v), [bj(a), ej(a)], [db, de], [[d2b, abs(v / b) * (1 + abs(e * b.log()))],
                                                                [ZERO, abs(v * b.log() ** 2)]])
            return _chain(abs(v), [bj(a)], [db], [[d2b]])
        return power
    if isinstance(expr, no_grad):
        return lambda a: (abs(values[0](a)), {}, {})
    if isinstance(expr, select):
        mode, xj, yj = int(expr.args[3]), parts[1], parts[2]

        def chosen(a: Sequence[arb]) -> tuple:
            d = values[0](a)
            pick = (d.is_exact() and d == 0) if mode == 2 else _cmp(d, strict=mode == 0)
            return yj(a) if pick is False else xj(a)
        return chosen
    if isinstance(expr, amax_fn | amin_fn | sympy.Max | sympy.Min):
        pick_max = isinstance(expr, amax_fn | sympy.Max)

        def extreme(a: Sequence[arb]) -> tuple:
            vals = [v(a) for v in values]
            best = max(range(len(vals)), key=lambda i: float(vals[i].mid()) * (1 if pick_max else -1))
            return parts[best](a)
        return extreme
    return _jet_function(expr, parts, values)


def _jet_function(expr: sympy.Expr, parts: list[JetFn], values: list[ClosedForm]) -> JetFn:
    cls = type(expr)
    value_form, partials = closed_form(cls) if not isinstance(expr, norm2) else (None, ())
    second = _second_partials(cls)

    def function(a: Sequence[arb]) -> tuple:
        balls = [v(a) for v in values]
        args = [p(a) for p in parts]
        if isinstance(expr, norm2):
            n = sum((b * b for b in balls), ZERO).sqrt()
            first = [abs(b / n) if n != 0 else arb(1) for b in balls]
            return _chain(n, args, first, None)
        first = [abs(d(balls)) for d in partials]
        hess = [[abs(f(balls)) for f in row] for row in second] if second is not None else None
        first = [f if finite(f) else ZERO for f in first]
        if hess is not None:
            hess = [[h if finite(h) else ZERO for h in row] for row in hess]
        return _chain(abs(value_form(balls)), args[: len(first)], first, hess)

    return function


@cache
def tree_depth(expr: sympy.Expr) -> int:
    return 1 + max((tree_depth(a) for a in expr.args), default=0)
