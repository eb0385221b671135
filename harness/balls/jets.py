"""Magnitudes of derivative terms: the first and second partial derivatives of an unevaluated tree,
as the sums torch's repeated backward adds (for the bound of a derivative past order 2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache

import sympy
from flint import arb

from harness import cache as stored
from harness.balls import upward
from harness.balls.batch import EXPRESSIONS, ONE, SUBTREES, ZERO, Batch, Column, _cmp, _memo, _power
from harness.balls.closed import BatchForm, _powers, _relation, closed, closed_form
from harness.balls.model import Modelled, compile_modelled
from harness.balls.rules import jet_rule, lookup
from harness.balls.upward import Bound
from harness.catalogue.markers import (
    OpFunction,
    amax_fn,
    amin_fn,
    no_grad,
    norm2,
    select,
)
from harness.errors import HarnessError
from harness.numbers import FloatFormat
from harness.symbolic import closed_body

# ---------------------------------------------------------------- magnitudes of derivative terms
#
# torch's backward sums the chain rule's terms, one per path through the tree. When they cancel,
# its absolute error scales with the terms, not with their sum: (y/y)' = 1/y - y/y^2 is 0 exactly,
# but never in floating point. SymPy simplifies such sums away before differentiating, so the
# derivative expression cannot show them; these jets walk the unevaluated tree instead and carry,
# for every first and second partial derivative, the sum of the absolute values of its terms.

Jet = tuple[Bound, dict[int, Bound], dict[tuple[int, int], Bound]]  # |value|, M1[i], M2[(i, j)] (i <= j)
JetFn = Callable[[Batch], Jet]

# The magnitudes are logarithms of upper bounds (harness.balls.upward), as the error model's bounds.


def _scale(m: dict, c: Bound) -> dict:
    return {k: upward.mul(v, c) for k, v in m.items()}


def _acc(into: dict, m: dict) -> None:
    for k, v in m.items():
        into[k] = upward.add(into[k], v) if k in into else v


def _outer(a: dict[int, Bound], b: dict[int, Bound], c: Bound) -> dict[tuple[int, int], Bound]:
    out: dict[tuple[int, int], Bound] = {}
    for i, x in a.items():
        for j, y in b.items():
            key = (i, j) if i <= j else (j, i)
            _acc(out, {key: upward.mul(upward.mul(c, x), y)})
    return out


def _chain(value: Bound, args: Sequence[Jet], first: Sequence[Bound],
           second: Sequence[Sequence[Bound | None]] | None) -> Jet:
    """|f|, and the term magnitudes of f(a_1, ...) from those of its arguments and |df|, |d2f|
    (second[k][j] for j >= k; None where it is 0)."""
    m1: dict[int, Bound] = {}
    m2: dict[tuple[int, int], Bound] = {}
    for k, (_, a1, a2) in enumerate(args):
        _acc(m1, _scale(a1, first[k]))
        _acc(m2, _scale(a2, first[k]))
        if second is not None:
            for j, (_, b1, _) in enumerate(args):
                h = second[k][j]
                if j >= k and h is not None:
                    _acc(m2, _outer(a1, b1, h if j == k else upward.scale(2, h)))
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
    value = upward.zeros(b.n)
    m1: dict[int, Bound] = {}
    m2: dict[tuple[int, int], Bound] = {}
    for key, index in groups.items():
        sub = b.subset(index) if len(index) < b.n else b
        v, a1, a2 = fns(key)(sub)
        value[index] = v
        for into, part in ((m1, a1), (m2, a2)):
            for term, column in part.items():
                into.setdefault(term, upward.zeros(b.n))[index] = column
    return value, m1, m2


@lru_cache(maxsize=EXPRESSIONS)
def compile_jets(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> JetFn:
    """The term magnitudes of an unevaluated tree's first and second partial derivatives.

    Argument values are the error model's (memoized in the batch: the tree's value has them)."""
    if expr in symbols:
        i = symbols.index(expr)
        return lambda b: (b.mag(b.columns[i]), {i: upward.ones(b.n)}, {})
    if expr.is_Number or expr.is_NumberSymbol or expr is sympy.zoo or expr is sympy.nan:
        constant = closed(expr, symbols)
        return lambda b: (b.mag(constant(b)), {}, {})
    if isinstance(expr, sympy.Piecewise):
        return _memo(_jet_piecewise(expr, symbols, fmt))
    parts = [compile_jets(arg, symbols, fmt) for arg in expr.args]
    values = [_values(compile_modelled(arg, symbols, fmt)) for arg in expr.args]
    if expr.is_Add:
        return _memo(_jet_add(parts, _values(compile_modelled(expr, symbols, fmt))))
    if expr.is_Mul:
        return _memo(_jet_mul(parts))
    if expr.is_Pow:
        if expr.exp.is_Integer:
            return _memo(_jet_integer_power(int(expr.exp), parts[0], values[0]))
        return _memo(_jet_power(parts, values))
    rule = lookup(type(expr), "jet")
    return _memo(rule(expr, parts, values) if rule is not None else _jet_function(expr, parts, values))


def _jet_add(parts: list[JetFn], own: BatchForm) -> JetFn:
    def add(b: Batch) -> Jet:
        m1: dict = {}
        m2: dict = {}
        for p in parts:
            _, a1, a2 = p(b)
            _acc(m1, a1)
            _acc(m2, a2)
        return b.mag(own(b)), m1, m2

    return add


def _jet_mul(parts: list[JetFn]) -> JetFn:
    def mul(b: Batch) -> Jet:
        ones = upward.ones(b.n)
        acc: Jet = (ones, {}, {})
        for p in parts:
            f = p(b)
            product = upward.mul(acc[0], f[0])
            acc = _chain(product, [acc, f], [f[0], acc[0]], [[None, ones], [None, None]])
        return acc

    return mul


@jet_rule(no_grad)
def _jet_no_grad(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    return lambda b: (b.mag(values[0](b)), {}, {})  # a constant to differentiation


@jet_rule(select)
def _jet_select(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    """Each member takes its branch's jets (both where the decision is uncertain: the first)."""
    mode = int(expr.args[3])
    branch = {True: parts[1], False: parts[2]}

    def chosen(b: Batch) -> Jet:
        groups: dict[object, list[int]] = {True: [], False: []}
        for k, d in enumerate(values[0](b)):
            pick = (d.is_exact() and d == 0) if mode == 2 else _cmp(d, strict=mode == 0)
            groups[pick is not False].append(k)
        return _gather(b, {g: i for g, i in groups.items() if i}, branch.__getitem__)

    return chosen


@jet_rule(amax_fn, amin_fn, sympy.Max, sympy.Min)
def _jet_extreme(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    """A maximum (minimum) takes the jets of its largest (smallest) argument, member by member."""
    sign = 1 if isinstance(expr, amax_fn | sympy.Max) else -1

    def extreme(b: Batch) -> Jet:
        columns = [v(b) for v in values]
        groups: dict[object, list[int]] = {}
        for k in range(b.n):
            best = max(range(len(columns)), key=lambda i: float(columns[i][k].mid()) * sign)
            groups.setdefault(best, []).append(k)
        return _gather(b, groups, parts.__getitem__)

    return extreme


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
        return _chain(b.mag(vs), [part(b)], [upward.magnitudes(db)], [[upward.magnitudes(d2b)]])

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
        m = upward.magnitudes
        if variable_exponent:
            return _chain(m(value), [bj(b), ej(b)], [m(db), m(de)], [[m(d2b), m(cross)], [None, m(d2e)]])
        return _chain(m(value), [bj(b)], [m(db)], [[m(d2b)]])

    return power


@jet_rule(norm2)
def _jet_norm2(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    """|x_i / |x||, 1 where |x| is 0 (torch's 0 there; 1 bounds every direction's slope)."""

    def length(b: Batch) -> Jet:
        columns = [v(b) for v in values]
        norms = [sum((x * x for x in t), ZERO).sqrt() for t in zip(*columns)]
        first = [upward.magnitudes([x / n if n != 0 else ONE for x, n in zip(column, norms)]) for column in columns]
        return _chain(upward.magnitudes(norms), [p(b) for p in parts], first, None)

    return length


def _jet_function(expr: sympy.Expr, parts: list[JetFn], values: list[BatchForm]) -> JetFn:
    cls = type(expr)
    value_form, partials = closed_form(cls, len(expr.args))
    second = _second_partials(cls)

    def usable(column: Column) -> Bound:
        """|column| where finite, 0 elsewhere (a nan is not finite)."""
        m = upward.magnitudes(column)
        m[m == upward.INF] = -upward.INF
        return m

    def function(b: Batch) -> Jet:
        inner = b.of([v(b) for v in values])
        args = [p(b) for p in parts]
        first = [usable(d(inner)) for d in partials]
        hess = [[usable(f(inner)) for f in row] for row in second] if second is not None else None
        return _chain(inner.mag(value_form(inner)), args[: len(first)], first, hess)

    return function


@lru_cache(maxsize=SUBTREES)
def tree_depth(expr: sympy.Expr) -> int:
    return 1 + max((tree_depth(a) for a in expr.args), default=0)

