"""Closed forms: a SymPy expression compiled to a function of a batch of balls (ball values only),
one rule per node type (SymPy's functions in tables, the harness's markers by their
rows in harness.balls.rules)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import cache, lru_cache

import sympy
from flint import arb

from harness import cache as stored
from harness.balls.batch import (
    EXPRESSIONS,
    ZERO,
    Batch,
    Column,
    Decision,
    _besseli,
    _cmp,
    _cosh,
    _exp,
    _lgamma_abs,
    _memo,
    _polygamma,
    _power,
    _prod,
    _round_half_even,
    _share,
    _sinh,
    _sum,
    _trunc,
)
from harness.balls.rules import closed_rule, lookup, register
from harness.catalogue.markers import (
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
    ratio,
    reverse_ratio,
    round_fn,
    select,
    trunc_fn,
)
from harness.errors import HarnessError
from harness.symbolic import closed_body

# ---------------------------------------------------------------- closed forms, ball only


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


_UNARY: dict[type, Callable[[arb], arb]] = {
    sympy.exp: _exp, sympy.log: arb.log, sympy.sin: arb.sin, sympy.cos: arb.cos, sympy.tan: arb.tan,
    sympy.tanh: arb.tanh, sympy.sinh: _sinh, sympy.cosh: _cosh, sympy.asin: arb.asin,
    sympy.acos: arb.acos, sympy.atan: arb.atan, sympy.asinh: arb.asinh, sympy.acosh: arb.acosh,
    sympy.atanh: arb.atanh, sympy.sec: lambda a: 1 / a.cos(), sympy.csc: lambda a: 1 / a.sin(),
    sympy.cot: lambda a: 1 / a.tan(), sympy.sech: lambda a: 1 / a.cosh(), sympy.csch: lambda a: 1 / a.sinh(),
    sympy.coth: lambda a: 1 / a.tanh(), sympy.Abs: abs, sympy.sign: arb.sgn, sympy.erf: arb.erf,
    sympy.erfc: arb.erfc, sympy.erfinv: arb.erfinv, sympy.gamma: arb.gamma, sympy.floor: arb.floor,
    sympy.ceiling: arb.ceil,
}
_BINARY: dict[type, Callable[[arb, arb], arb]] = {
    sympy.atan2: arb.atan2, sympy.polygamma: _polygamma, sympy.besseli: _besseli,
}
_NARY: dict[type, Callable[[list[arb]], arb]] = {
    sympy.Max: lambda v: _reduce(v, arb.max), sympy.Min: lambda v: _reduce(v, arb.min),
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


@closed_rule(KinkFunction)
def _closed_kink(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    cls, (inner, convention) = type(expr), parts
    return lambda b: [_kink_value(cls, x, lambda k=k: convention(b)[k])[0] for k, x in enumerate(inner(b))]


@closed_rule(OpFunction)
def _closed_op(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    form = closed_form(type(expr))[0]
    return lambda b: form(b.of([p(b) for p in parts]))


@closed_rule(select)
def _closed_select(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    d, x, y, _ = parts
    m = int(expr.args[3])
    return lambda b: _select(b, d(b), m, x, y)


@closed_rule(jump)
def _closed_jump(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    d = parts[0]
    return lambda b: [_jump(v)[0] for v in d(b)]


@closed_rule(ratio)
def _closed_ratio(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    num, den = parts
    return lambda b: [_ratio(p, q, _masked(expr, b))[0] for p, q in zip(num(b), den(b))]


@closed_rule(max_share)
def _closed_share(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    i, sign = int(expr.args[0]), (-1 if isinstance(expr, min_share) else 1)
    rest = parts[1:]
    return lambda b: [_share(i, list(t), sign) for t in zip(*(p(b) for p in rest))]


def _elementwise(fn: Callable[[arb], arb]) -> Callable[[sympy.Expr, list[BatchForm]], BatchForm]:
    def rule(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
        (inner,) = parts
        return lambda b: [fn(x) for x in inner(b)]

    return rule


def _reduction(fn: Callable[[list[arb]], arb]) -> Callable[[sympy.Expr, list[BatchForm]], BatchForm]:
    def rule(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
        return lambda b: [fn(list(t)) for t in zip(*(p(b) for p in parts))]

    return rule


# The closed forms of the harness's markers that are one Arb function of their arguments (the others
# are the rules above); SymPy's own functions are in the tables _UNARY, _BINARY and _NARY.
for _cls, _fn in ((floor_fn, arb.floor), (ceil_fn, arb.ceil), (round_fn, _round_half_even), (trunc_fn, _trunc),
                  (loggamma_abs, _lgamma_abs), (no_grad, lambda a: a), (erfc_neg, lambda a: (-a).erfc())):
    register(_cls, "closed", _elementwise(_fn))
register(amax_fn, "closed", _reduction(lambda v: _reduce(v, arb.max)))
register(amin_fn, "closed", _reduction(lambda v: _reduce(v, arb.min)))
register(norm2, "closed", _reduction(lambda v: sum((x * x for x in v), ZERO).sqrt()))


def _closed_function(expr: sympy.Expr, parts: list[BatchForm]) -> BatchForm:
    cls = type(expr)
    rule = lookup(cls, "closed")
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
        return _elementwise(_UNARY[cls])(expr, parts)
    if cls in _BINARY:
        fn2, (first, second) = _BINARY[cls], parts
        return lambda b: [fn2(x, y) for x, y in zip(first(b), second(b))]
    if cls in _NARY:
        return _reduction(_NARY[cls])(expr, parts)
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


