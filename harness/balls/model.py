"""The error model: an expression compiled to its ball values and, beside them, a bound on the
rounding error a floating-point evaluation of the same tree in the case's dtype can make (first-order
running error analysis; the harness's markers by their rows in
harness.balls.rules).

The values are Arb balls; the bounds are float64 arrays rounded upward (harness.balls.upward): they
are only ever used as a tolerance, and a float per member costs a fraction of a ball per member."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy
from flint import arb

from harness.balls import upward
from harness.balls.batch import (
    EXPRESSIONS,
    ZERO,
    Batch,
    Column,
    _kinks,
    _memo,
    _power,
    _prod,
    _share,
    _sum,
)
from harness.balls.closed import (
    _branches,
    _choice,
    _exact_fraction,
    _jump,
    _kink_locators,
    _kink_value,
    _limit,
    _masked,
    _powers,
    _ratio,
    _reduce,
    _relation,
    _split,
    closed,
    closed_form,
    compile_closed,
    finite,
)
from harness.balls.rules import lookup, model_rule
from harness.balls.upward import Bound
from harness.catalogue.markers import (
    KinkFunction,
    OpFunction,
    amax_fn,
    amin_fn,
    as_sympy,
    jump,
    max_share,
    min_share,
    no_grad,
    norm2,
    op_function,
    ratio,
    select,
)
from harness.numbers import FloatFormat, round_to_format

# ---------------------------------------------------------------- the error model

Kinks = list[bool] | None  # which members met a kink (None: none did)
ModelResult = tuple[Column, Bound, Kinks]  # values, error-model bounds, kinks
Modelled = Callable[[Batch], ModelResult]


@lru_cache(maxsize=EXPRESSIONS)
def compile_modelled(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat,
                     forward: frozenset[sympy.Expr] | None = None) -> Modelled:
    """Value and error-model bound of a harness tree or derivative expression, over a batch.

    A rounding to a subnormal is charged its absolute error (`underflow`) where torch evaluates
    the node as written: everywhere in a function's own tree (forward None), and in a derivative
    expression only at the subexpressions of the function it differentiates (`forward`: what the
    forward pass computes and the backward reuses, x / 0.62 in sqrt'(x / 0.62)). The other terms are
    our derivative formula's, which torch's backward need not form (2 exp(x)^2 / exp(x)^3)."""
    if forward is not None and expr in forward:
        return compile_modelled(expr, symbols, fmt)
    if expr in symbols:
        i = symbols.index(expr)
        return lambda b: (b.columns[i], upward.zeros(b.n), None)
    if expr in (sympy.nan, sympy.zoo, sympy.oo, sympy.S.NegativeInfinity):
        infinite = closed(expr, symbols)
        return lambda b: (infinite(b), upward.zeros(b.n), None)
    under = forward is None or _reuses_forward(expr, forward)  # see underflow
    if expr.is_Number or expr.is_NumberSymbol:
        value = closed(expr, symbols)
        if expr.is_Rational and _representable(Fraction(int(expr.p), int(expr.q)), fmt):
            return lambda b: (value(b), upward.zeros(b.n), None)
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
    return v, underflow(upward.scale(b.unit, b.mag(v)), v, b, under), None


def underflow(bound: Bound, values: Column, b: Batch, roundings: float) -> Bound:  # roundings 0: none
    """Add each rounding's absolute error where the result may be subnormal: fl(x op y) =
    (x op y)(1 + d) + e, |e| <= half the smallest subnormal, and e = 0 unless the result is below the
    normal range. x / 0.62 at x = 2e-311 errs by 7e-14 of itself, and sqrt passes half of it on.
    An exact 0 with no error coming in stays exact (0 * y, x - x of exact inputs). A result past
    the range is inf in torch, rightly: from there on no finite bound holds (exp(104) in float32
    inside log(1 + exp(...))). The float magnitudes pick the members to look at; the balls decide.
    The charge is rounded up to a float (for float64 a multiple of 2^-1074, as 2^-1075 is none)."""
    if b.fmt is None:
        return bound
    mags = b.mag(values)
    if b.n == 1:  # (the same, without numpy's overhead on one member)
        return _underflow_one(bound, values[0], mags.item(), b, roundings)
    near_edge = np.flatnonzero(mags > b.log_largest)
    if near_edge.size:
        bound = bound.copy()
        for k in near_edge.tolist():
            if abs(values[k]) > b.edge:
                bound[k] = upward.INF
    if not roundings:
        return bound
    # below the normal range, or straddling it: every ball narrower than half its midpoint that
    # reaches below the smallest normal lies under 3x it (a wider one is not certified anyway)
    small = np.flatnonzero(mags < b.fmt.emin + 2)
    charged = [k for k in small.tolist()
               if not abs(values[k]) >= b.normal and (bound[k] > -upward.INF or not values[k].is_zero())]
    if charged:
        bound = bound.copy()
        bound[charged] = upward.add(bound[charged], upward.log(b.subnormal_charge(roundings)))
    return bound


def _underflow_one(bound: Bound, value: arb, mag: float, b: Batch, roundings: float) -> Bound:
    e = bound.item()
    if mag > b.log_largest and abs(value) > b.edge:
        return np.array([upward.INF])
    if not roundings or not mag < b.fmt.emin + 2:  # (see underflow)
        return bound
    if not abs(value) >= b.normal and (e > -upward.INF or not value.is_zero()):
        return upward.add(bound, upward.log(b.subnormal_charge(roundings)))
    return bound


def _add(terms: list[ModelResult], b: Batch, shared: Shared, under: bool) -> ModelResult:
    value = shared(b, terms) or _sum([t[0] for t in terms])
    size = upward.add(*[b.mag(t[0]) for t in terms])
    bound = upward.add(upward.add(*[t[1] for t in terms]), upward.scale((len(terms) - 1) * b.unit, size))
    return value, underflow(bound, value, b, under * (len(terms) - 1)), _kinks([t[2] for t in terms])


def _mul(factors: list[ModelResult], roundings: int, b: Batch, shared: Shared, under: bool) -> ModelResult:
    value = shared(b, factors) or _prod([f[0] for f in factors])
    bound = upward.scale(roundings * b.unit, b.mag(value)) if roundings else upward.zeros(b.n)
    carrying = [i for i, f in enumerate(factors) if upward.nonzero(f[1]).any()]
    if carrying:  # each factor's error times the magnitudes of the others
        sizes = [b.mag(f[0]) for f in factors]
        for i, others in zip(carrying, all_but(sizes, carrying)):
            e = factors[i][1]
            bound = np.where(upward.nonzero(e), upward.add(bound, upward.mul(e, others)), bound)
    return value, underflow(bound, value, b, under * roundings), _kinks([f[2] for f in factors])


def all_but(sizes: list[Bound], wanted: list[int]) -> list[Bound]:
    """For each wanted i, the product of every column but the i-th (from prefix and suffix
    products: linear in the number of factors, not quadratic)."""
    k = len(sizes)
    if k == 1:
        return [upward.ones(len(sizes[0]))]
    prefix: list[Bound | None] = [None] * k  # product of sizes[:i]
    for i in range(1, max(wanted) + 1):
        prefix[i] = sizes[0] if i == 1 else upward.mul(prefix[i - 1], sizes[i - 1])
    suffix: list[Bound | None] = [None] * k  # product of sizes[i + 1:]
    for i in range(k - 2, min(wanted) - 1, -1):
        suffix[i] = sizes[k - 1] if i == k - 2 else upward.mul(sizes[i + 1], suffix[i + 1])
    out = []
    for i in wanted:
        before, after = prefix[i], suffix[i]
        out.append(after if before is None else before if after is None else upward.mul(before, after))
    return out


def _modelled_pow(expr: sympy.Pow, parts: list[Modelled], shared: Shared, under: bool) -> Modelled:
    if expr.exp.is_Integer:
        return _integer_power(int(expr.exp), parts, shared, under)
    return _real_power(expr.exp, parts, shared, under)


def _integer_power(n: int, parts: list[Modelled], shared: Shared, under: bool) -> Modelled:
    """x**n for a constant integer n: torch's x*x, 1/x or pow, and the input's error times |n x^(n-1)|."""
    base, exponent = parts
    roundings = 0 if n in (0, 1) else (1 if n in (2, -1) else 2)

    def integer_power(b: Batch) -> ModelResult:
        x, ex, kinks = found = base(b)
        values = shared(b, [found, exponent(b)]) or _powers(x, n)
        bound = upward.scale(roundings * b.unit, b.mag(values)) if roundings else upward.zeros(b.n)
        index = np.flatnonzero(upward.nonzero(ex))
        if index.size:  # the input's error times |n x^(n-1)|
            xs = [x[k] for k in index.tolist()]
            slopes = _powers(xs, n - 1) if n >= 1 else [1 / p for p in _powers(xs, 1 - n)]
            carried = upward.scale(abs(n), upward.mul(upward.magnitudes(slopes), ex[index]))
            bound[index] = upward.add(bound[index], carried)
        return values, underflow(bound, values, b, under * roundings), kinks

    return integer_power


def _real_power(e: sympy.Expr, parts: list[Modelled], shared: Shared, under: bool) -> Modelled:
    """x**y otherwise (sqrt and rsqrt for y = +-1/2): two roundings, and both inputs' errors."""
    base, exponent = parts

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
        bound = upward.scale(2 * b.unit, b.mag(values))
        for errors, slope in ((ex, lambda k: y[k] * values[k] / x[k]), (ey, lambda k: values[k] * x[k].log())):
            index = np.flatnonzero(upward.nonzero(errors))
            if index.size:
                carried = upward.mul(upward.magnitudes([slope(k) for k in index.tolist()]), errors[index])
                bound[index] = upward.add(bound[index], carried)
        return values, underflow(bound, values, b, under * 2), _kinks([kx, ky])

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
        out_v, out_e, out_k = [], upward.zeros(b.n), []
        for k, cs in enumerate(found):
            if not cs:
                out_v.append(arb.nan())
                out_k.append(False)
                continue
            out_v.append(_reduce([c[0] for c in cs], arb.union))
            out_e[k] = max(c[1] for c in cs)
            out_k.append(any(c[2] for c in cs))
        return out_v, out_e, out_k if any(out_k) else None

    return piecewise


@model_rule(KinkFunction)
def _model_kink(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    cls = type(expr)
    inner, convention = parts
    jump_size = abs(arb(cls.away(True)) - arb(cls.away(False)))

    def kink(b: Batch) -> ModelResult:
        x, ex, kx = inner(b)
        values, bounds, kinks = [], upward.zeros(b.n), list(kx) if kx is not None else [False] * b.n
        for k in range(b.n):
            value, hit = _kink_value(cls, x[k], lambda k=k: convention(b)[0][k])
            kinks[k] = kinks[k] or hit
            if not hit and ex[k] > -upward.INF and abs(x[k]) <= 2 * upward.to_float(ex[k]):
                # torch's rounded x may sit on the other side of the kink: allow the jump
                kinks[k] = True
                bounds[k] = upward.magnitudes([arb.max(jump_size, abs(value - convention(b)[0][k]))])[0]
            values.append(value)
        return values, bounds, kinks

    return kink


@model_rule(select)
def _model_select(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    d, x, y, _ = parts
    mode = int(expr.args[3])

    def chosen(b: Batch) -> ModelResult:
        dv, _, dk = d(b)
        picks = [_choice(v, mode) for v in dv]
        ra, rb = _split(b, picks, lambda s: _flagged(x(s), s.n), lambda s: _flagged(y(s), s.n))
        out = [(arb.union(p[0], q[0]), max(p[1], q[1]), p[2] or q[2]) if p is not None and q is not None
               else (p or q) for p, q in zip(ra, rb)]
        values, bounds, kinks = _unzip(out)
        return values, bounds, _kinks([dk, kinks])

    return chosen


@model_rule(jump)
def _model_jump(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    d = parts[0]

    def jumped(b: Batch) -> ModelResult:
        dv, _, dk = d(b)
        hits = [_jump(v)[1] for v in dv]
        return [ZERO] * b.n, upward.zeros(b.n), _kinks([dk, hits if any(hits) else None])

    return jumped


@model_rule(ratio)
def _model_ratio(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    num, den = parts

    def quotient(b: Batch) -> ModelResult:
        (n, en, kn), (dv, ed, kd) = num(b), den(b)
        values, hits, masked = [], [], _masked(expr, b)
        for k in range(b.n):
            value, hit = _ratio(n[k], dv[k], masked)
            values.append(value)
            hits.append(hit)
        # u |n/d| + e_n / |d| + |n/d| / |d| e_d, with |d| from below
        below = upward.lower_magnitudes(dv)
        size = b.mag(values)
        bounds = upward.add(upward.scale(b.unit, size), upward.div(en, below), upward.mul(upward.div(size, below), ed))
        bounds[np.array(hits, dtype=bool)] = -upward.INF
        return values, underflow(bounds, values, b, under), _kinks([kn, kd, hits if any(hits) else None])

    return quotient


@model_rule(no_grad)
def _model_no_grad(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    return parts[0]


@model_rule(max_share)
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
        return values, upward.zeros(b.n), _kinks([*(r[2] for r in results), hits if any(hits) else None])

    return share


@model_rule(amax_fn, amin_fn, sympy.Max, sympy.Min)
def _model_extreme(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    pick = arb.max if isinstance(expr, amax_fn | sympy.Max) else arb.min  # amin_fn is no amax_fn

    def extreme(b: Batch) -> ModelResult:
        terms = [p(b) for p in parts]
        values = [_reduce(list(t), pick) for t in zip(*(t[0] for t in terms))]
        return values, upward.maximum([t[1] for t in terms]), _kinks([t[2] for t in terms])

    return extreme


@model_rule(norm2)
def _model_norm2(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled:
    def length(b: Batch) -> ModelResult:
        terms = [p(b) for p in parts]
        values = [sum((v * v for v in t), arb(0)).sqrt() for t in zip(*(t[0] for t in terms))]
        size = b.mag(values)
        bounds = upward.scale((len(terms) + 1) * b.unit, size)
        below = upward.lower_magnitudes(values)
        for v, e, _ in terms:  # |v / |x|| e, where |x| is not 0
            carrying = upward.nonzero(e) & upward.nonzero(below)
            carried = np.where(carrying, upward.mul(upward.div(b.mag(v), below), e), -upward.INF)
            bounds = upward.add(bounds, carried)
        return values, underflow(bounds, values, b, under * (len(terms) + 1)), _kinks([t[2] for t in terms])

    return length


def _modelled_special(expr: sympy.Expr, parts: list[Modelled], under: bool) -> Modelled | None:
    """The harness's own marker functions (and Max, Min), by their rules; None for anything else."""
    rule = lookup(type(expr), "model")
    return rule(expr, parts, under) if rule is not None else None


def _flagged(result: ModelResult, n: int) -> tuple:
    v, e, k = result
    return v, e, k if k is not None else [False] * n


def _unzip(rows: list) -> ModelResult:
    values, bounds, kinks = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    return values, np.array(bounds, dtype=np.float64), kinks if any(kinks) else None


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
            values = [v if finite(v) else _removable(cls, value_form, inner, k, v) for k, v in enumerate(values)]
        # the op's own result: a few ulps, plus the errors its operands bring (|df/da|*e). How
        # torch's kernel forms the result earns nothing: sigmoid'(40) = 0 from y*(1 - y) is a loss,
        # not a rounding. (What a half-ulp change of the inputs makes unavoidable is charged once,
        # on the whole expression: reference.PointReference._conditioning.)
        bound = upward.scale(2 * ulps * b.unit, b.mag(values))
        for d, (_, e, _) in zip(partials, args):
            index = np.flatnonzero(upward.nonzero(e))
            if index.size:
                slopes = d(inner.subset(index.tolist()) if index.size < b.n else inner)
                bound[index] = upward.add(bound[index], upward.mul(upward.magnitudes(slopes), e[index]))
        return values, underflow(bound, values, b, under * 2 * ulps), flags

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


def _removable(cls: type, value_form: Callable[[Batch], Column], inner: Batch, k: int, value: arb) -> arb:
    """A one-input op's value where its closed form is not finite at an exact argument: the limit
    there (log(0) = -inf, a 0/0). Only at a moderate argument: every edge of a catalogue op lies
    within 2^64, and SymPy asked for the limit of exp2 at 2^1000 builds 2^(2^1000) exactly. And
    only where the form is finite just beside the argument, on one side or the other: outside the
    op's domain on both sides (log at -3) there is no limit, and SymPy takes 50 ms to say so."""
    balls = [c[k] for c in inner.columns]
    exact = [_exact_fraction(b) for b in balls]
    if any(e is None or abs(e) > 2**64 or e.denominator > 2**1100 for e in exact):
        return value
    step = arb(max(abs(float(exact[0])), 1.0)) * arb(2) ** -40
    beside = Batch([[balls[0] - step, balls[0] + step], *([b, b] for b in balls[1:])], 2, inner.u, inner.fmt,
                   inner.conventions)
    if not any(map(finite, value_form(beside))):
        return value
    limit = _limit(cls, tuple(exact))  # type: ignore[arg-type]
    return value if limit is None else compile_closed(limit, [])([])


