"""Exact evaluation at the exact binary inputs, with certified error bounds (Arb balls).

Every exact scalar is evaluated in ball arithmetic (python-flint's Arb): a midpoint with a proven
radius. A quantity is certified when its radius is far below the tolerance it will be held to; the
point is re-evaluated at doubled precision until every quantity is, or the precision cap is reached.

Alongside each value runs the error model: a bound on the rounding error a floating-point
evaluation of the same tree (in the case's dtype) can make. It is what lets a derivative that
is exactly 0 from cancelling terms of size 1e8 be compared against an absolute floor instead of
4 ulps of 0. The model charges each operation its kernel's accuracy (and, where the result may be
subnormal, half the smallest subnormal) and propagates input errors through the partial
derivatives (first-order running error analysis). The bounds are floats rounded upward
(harness.balls.upward); only the values are balls.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import NamedTuple

import flint
import numpy as np
import sympy
from flint import arb

from harness.balls import (
    EXPRESSIONS,
    ZERO,
    Batch,
    JetFn,
    closed,
    compile_closed,
    compile_jets,
    compile_modelled,
    defined,
    finite,
    precision,
    tree_depth,
    upward,
)
from harness.balls.upward import fadd, fmul, of
from harness.cache import diff as stored_diff
from harness.catalogue import Predicate, Structural, resolve
from harness.catalogue.markers import Conventions, as_sympy
from harness.errors import HarnessError
from harness.expr import Call, Const, Index, Name, Node, Num, Seq, transform
from harness.numbers import FloatFormat, round_to_format
from harness.symbolic import SymbolicOutput, Variable, expand_ops

MAX_PRECISION = 8192
CERTIFY_BITS = 12  # radius must be 2**-12 of the tolerance scale


def start_precision(fmt: FloatFormat) -> int:
    """The first working precision: 32 bits beyond the format's, room for 20 bits of cancellation
    over the 12 a certificate asks for. Most values certify there; the rest go on up the ladder."""
    return fmt.precision + 32


# ---------------------------------------------------------------- exact scalars and their sums


class Exact(NamedTuple):
    """One exact scalar: a certified ball, the error-model bound (a float rounded upward; inf: no
    finite bound), and where it stands."""

    ball: arb
    bound: float
    kink: bool = False
    undefined: bool = False


ZERO_EXACT = Exact(ZERO, 0.0)
NAN = arb.nan()
_new = tuple.__new__  # an Exact from its fields, without NamedTuple's Python-level __new__


def scale(w: arb, x: Exact, s_u: arb) -> Exact:
    """w * x, as `combine` with one term (the common case of elementwise outputs)."""
    if w == 0:
        return ZERO_EXACT
    p = w * x.ball
    return Exact(p, fadd(fmul(of(w), x.bound), fmul(float(s_u), of(p))), x.kink, x.undefined)


def scale_column(weights: Sequence[arb], column: Sequence[Exact | None], s_u: arb,
                 missing: Exact | None = ZERO_EXACT) -> list:
    """`scale` member by member (`missing` where the column has no entry)."""
    out: list[Exact | None] = []
    u = float(s_u)
    for w, x in zip(weights, column):
        if x is None:
            out.append(missing)
            continue
        if w.is_zero():
            out.append(ZERO_EXACT)
            continue
        p = w * x.ball
        out.append(_new(Exact, (p, fadd(fmul(of(w), x.bound), fmul(u, of(p))), x.kink, x.undefined)))
    return out


def combine(terms: Sequence[tuple[arb, Exact]], s_u: arb) -> Exact:
    """sum(w * x): how torch accumulates a VJP, JVP or Hessian-vector product."""
    if len(terms) == 1:  # the common case, quickly (the same arithmetic as below)
        return scale(*terms[0], s_u)
    terms = [(w, x) for w, x in terms if w != 0]
    if not terms:
        return ZERO_EXACT
    value, bound, size = ZERO, 0.0, 0.0
    for w, x in terms:
        p = w * x.ball
        value, size = value + p, fadd(size, of(p))
        bound = fadd(bound, fmul(of(w), x.bound))
    bound = fadd(bound, fmul(len(terms) * float(s_u), size))
    return Exact(value, bound, any(x.kink for _, x in terms), any(x.undefined for _, x in terms))


@dataclass(frozen=True, eq=False)
class Floats:
    """Exact values as float64 arrays: the midpoint as hi + lo (hi nearest, lo the remainder), the
    radius, an upper bound on the magnitude, the error-model bound, and which balls are finite."""

    hi: np.ndarray
    lo: np.ndarray
    rad: np.ndarray
    magnitude: np.ndarray
    bound: np.ndarray
    finite: np.ndarray
    undefined: np.ndarray
    kink: np.ndarray
    infinite: np.ndarray  # the exact value is +-inf (a pole, a limit at a domain edge): torch must give it

    def certified(self, fmt: FloatFormat) -> np.ndarray:
        """Which balls are narrow enough: radius far below an ulp of the value (or of the smallest
        subnormal, for values that are 0). Undefined values need no certificate."""
        with np.errstate(over="ignore", invalid="ignore"):
            scale = np.maximum(self.magnitude * 2.0 ** (1 - fmt.precision), fmt.smallest_subnormal)
            narrow = self.rad <= scale * 2.0**-CERTIFY_BITS
        return self.undefined | (self.finite & narrow) | self.infinite


def as_floats(exacts: Sequence[Exact]) -> Floats:
    balls = [x.ball for x in exacts]
    hi = [float(b) for b in balls]  # the midpoint, to nearest
    with precision(max(flint.ctx.prec, 4096)):  # mid - hi exactly
        lo = [float(b - h) if -math.inf < h < math.inf else 0.0 for b, h in zip(balls, hi)]
    rad = np.array([float(b.rad()) for b in balls], dtype=np.float64)
    bound = np.array([x.bound for x in exacts], dtype=np.float64)
    finites = np.array([b.is_finite() for b in balls], dtype=bool)  # (a nan ball is not finite)
    undefined = np.array([x.undefined for x in exacts], dtype=bool)
    kink = np.array([x.kink for x in exacts], dtype=bool)
    h = np.array(hi, dtype=np.float64)
    return Floats(h, np.array(lo, dtype=np.float64), rad, np.abs(h) + rad, bound, finites, undefined, kink,
                  _infinite(h, rad, finites, undefined))


def _infinite(hi: np.ndarray, rad: np.ndarray, finite: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """Exact infinities: balls of radius 0 at +-inf (a nan ball is neither; nor is a wide one)."""
    return ~finite & ~undefined & np.isinf(hi) & (rad == 0)


def concat(parts: Sequence[Floats]) -> Floats:
    return Floats(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Floats)))


def zero_floats(n: int) -> Floats:
    z, no = np.zeros(n), np.zeros(n, dtype=bool)
    return Floats(z, z, z, z, z, np.ones(n, dtype=bool), no, no, no)


_SPLIT = 134217729.0  # 2**27 + 1: Dekker's splitting constant
_RANGE = 2.0**450  # factors in [2**-450, 2**450]: every partial product below is a normal double


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a * b = p + e exactly (Dekker), for factors in range."""
    p = a * b
    c, d = _SPLIT * a, _SPLIT * b
    ah, bh = c - (c - a), d - (d - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _in_range(a: np.ndarray) -> np.ndarray:
    m = np.abs(a)
    return (m == 0) | ((m >= 1 / _RANGE) & (m <= _RANGE))


def scaled_floats(column: Sequence[Exact | None], weights: Sequence[np.ndarray], s_u: arb) -> Floats:
    """`scale_column` by each weight vector in turn, as floats: an elementwise VJP (w * dy/dx) or
    Hessian-vector product (w * d2y * t) without a ball per product. The column is converted once;
    each product w * (hi + lo) is formed exactly (hi' + lo' = w*hi + w*lo, Dekker's product) but for
    two roundings, which the radius covers with the input's radius times |w|. Members out of that
    range (huge, tiny, not finite) go through the balls; a weight of 0 or a missing entry makes an
    exact 0 (like `scale`)."""
    f = as_floats([x if x is not None else ZERO_EXACT for x in column])
    hi, lo, rad, bound = f.hi, f.lo, f.rad, f.bound
    zero = np.array([x is None for x in column], dtype=bool)
    slow = ~(np.isfinite(hi) & np.isfinite(lo) & np.isfinite(rad) & np.isfinite(bound))
    u = float(s_u)
    with np.errstate(all="ignore"):
        for w in weights:
            w = np.asarray(w, dtype=np.float64).ravel()
            zero |= w == 0
            p, e = _two_product(w, hi)
            q = w * lo
            s = e + q  # |s| <= 2**-51 |p|: the sum below is exact (Fast2Sum)
            h2 = p + s
            l2 = (p - h2) + s
            slow |= ~(np.isfinite(w) & _in_range(w) & _in_range(hi)) | ((q != 0) & (np.abs(q) < 2.0**-1000))
            # q and s each rounded once (2**-53 of each); lo's own rounding (2**-106 of hi) too
            r2 = (np.abs(w) * rad * (1 + 2.0**-51) + (np.abs(q) + np.abs(s)) * 2.0**-52
                  + np.abs(h2) * 2.0**-104) * (1 + 2.0**-50)
            b2 = (np.abs(w) * bound + u * (np.abs(h2) + r2)) * (1 + 2.0**-50)
            hi, lo, rad, bound = h2, l2, r2, b2
    finite, undefined, kink = f.finite.copy(), f.undefined.copy(), f.kink.copy()
    for array in (hi, lo, rad, bound):
        array[zero] = 0.0
    finite[zero], undefined[zero], kink[zero] = True, False, False
    redo = np.flatnonzero(slow & ~zero)
    if redo.size:
        g = _scaled_in_balls(column, weights, s_u, redo)
        for name, array in (("hi", hi), ("lo", lo), ("rad", rad), ("bound", bound), ("finite", finite),
                            ("undefined", undefined), ("kink", kink)):
            array[redo] = getattr(g, name)
    return Floats(hi, lo, rad, np.abs(hi) + rad, bound, finite, undefined, kink, _infinite(hi, rad, finite, undefined))


def _scaled_in_balls(column: Sequence[Exact | None], weights: Sequence[np.ndarray], s_u: arb,
                     members: np.ndarray) -> Floats:
    """`scaled_floats` of the members out of the floats' range, through the balls (`scale_column`)."""
    flat = [np.asarray(w, dtype=np.float64).ravel() for w in weights]
    exacts = []
    for k in members.tolist():
        x = column[k]
        for w in flat:
            x = scale_column([arb(float(w[k]))], [x], s_u)[0]
        exacts.append(x)
    return as_floats(exacts)


# ---------------------------------------------------------------- one point


class PointReference:
    """The exact values and derivatives of every output at one point, at one precision.

    An elementwise output is one expression at every element: its elements are evaluated as one
    batch (values, derivatives and term magnitudes sharing their subexpressions). Other outputs
    have one expression per element, each a batch of one.
    """

    def __init__(self, outputs: dict[str, SymbolicOutput], values: dict[str, np.ndarray],
                 fmt: FloatFormat, bits: int, final: bool,
                 conventions: Conventions | None = None, atomic: bool = False, far: int = 0,
                 sided: bool = False, stagger: bool = False, flip: bool = False, allowances: bool = True) -> None:
        self.outputs, self.fmt, self.bits, self.final = outputs, fmt, bits, final
        # allowances False: the balls and the error model only, without the conditioning and the
        # term magnitudes that widen a tolerance (an optimizer's exact replay needs exact gradients)
        self.allowances = allowances
        self.conventions = conventions or Conventions()
        # atomic: the torch side is a user's callable (a target), whose formula is unknown; every
        # value and derivative is then allowed only what the exact function's conditioning makes
        # unavoidable, however the expression is spelled (see _conditioning)
        self.atomic = atomic
        self.u = arb(2) ** -fmt.precision
        with precision(bits):  # exact binary inputs, or balls (an exact optimizer replay)
            specials = itertools.count()  # with stagger, each infinity or zero at its own rate
            self.inputs = {n: [q if isinstance(q, arb) else _input_ball(float(q), far, sided, stagger, flip, specials)
                               for q in v.ravel()] for n, v in values.items()}
        self._groups: dict[str, list[Group]] = {}
        self._previous: PointReference | None = None  # see reuse
        self._values: dict[str, list[Exact]] = {}
        self._firsts: dict[str, list[list[tuple[Variable, Exact]]]] = {}
        self._seconds: dict[str, list[list[tuple[Variable, Variable, Exact]]]] = {}

    def reuse(self, previous: PointReference) -> None:
        """Take from `previous` (the same reference at a lower precision, asked the same questions)
        every member whose results there were all finite balls, and compute only the others here.

        For the last precision, which decides what has had no finite ball at two precisions (a pole,
        a point outside the domain): those members alone are worth its cost. A member that was finite
        there is the same Exact here but for a narrower ball (undefined only where not finite, in
        either mode)."""
        self._previous = previous

    def _split(self, name: str, group: Group) -> tuple[Group, Group, list[int]] | None:
        """(the group at the previous precision, the sub-group of members to compute again, their
        positions), or None: the whole group is computed here (no previous precision to take from,
        or a sub-group itself). Made for every group of the output at once, on first asking."""
        if not group.whole or self._previous is None or name not in self._previous._groups:
            return None
        if group.split is None:
            values = self._previous._values.get(name)
            for mine, before in zip(self._groups[name], self._previous._groups[name]):
                again = [p for p, k in enumerate(mine.members)
                         if (values is not None and not values[k].ball.is_finite()) or _not_finite_at(before, p)]
                sub = Group([mine.members[p] for p in again], mine.symbols, mine.batch.subset(again),
                            {s: [v[p] for p in again] for s, v in mine.variables.items()}, whole=False)
                mine.split = (before, sub, again)
        return group.split

    def groups(self, name: str) -> list[Group]:
        """The output's elements in batches that share one expression."""
        if name not in self._groups:
            out = self.outputs[name]
            if out.elementwise:
                members = list(range(out.size))
                symbols = tuple(out.symbols)
                columns = out.sources(self.inputs)
                sources = [columns[s] for s in symbols]
                self._groups[name] = [Group(members, symbols, self._batch(sources, out.size), out.variables())]
            else:
                symbols = tuple(out.symbols)
                args = [[self.inputs[n][i]] for n, i in out.symbols.values()]  # type: ignore[misc]
                variables = {s: [v] for s, v in out.symbols.items()}  # type: ignore[misc]
                self._groups[name] = [Group([k], symbols, self._batch(args, 1), variables)
                                      for k in range(out.size)]
        return self._groups[name]

    def _batch(self, columns: list[list[arb]], n: int) -> Batch:
        return Batch(columns, n, self.u, self.fmt, self.conventions)

    def _evaluate(self, group: Group, expr: sympy.Expr) -> list[Exact]:
        fn = compile_modelled(expr, group.symbols, self.fmt)
        with precision(self.bits):
            values, bounds, kinks = fn(group.batch)
            bounds = self._with_conditioning(group, expr, bounds, kinks)
        undefined = [not defined(v) for v in values] if self.final else [False] * len(values)
        flags = [bool(k) for k in kinks] if kinks else [False] * len(values)
        return list(map(Exact._make, zip(values, upward.to_floats(bounds).tolist(), flags, undefined)))

    def values(self, name: str) -> list[Exact]:
        if name not in self._values:
            out, result = self.outputs[name], [Exact(ZERO, ZERO)] * self.outputs[name].size
            previous = self._previous._values.get(name) if self._previous is not None else None
            for group in self.groups(name):
                split = self._split(name, group) if previous is not None else None
                if split is None:
                    found = self._evaluate(group, out.term(group.members[0]).tree)
                else:
                    _, sub, again = split
                    found = [previous[k] for k in group.members]
                    for p, x in zip(again, self._evaluate(sub, out.term(sub.members[0]).tree) if again else ()):
                        found[p] = x
                for k, x in zip(group.members, found):
                    result[k] = x
            self._values[name] = result
        return self._values[name]

    def firsts(self, name: str) -> list[list[tuple[Variable, Exact]]]:
        """For each output element, its nonzero first partials by input element."""
        if name not in self._firsts:
            rows: list[list[tuple[Variable, Exact]]] = [[] for _ in range(self.outputs[name].size)]
            for group in self.groups(name):
                for s, column in self._first_columns(name, group).items():
                    for k, x, variable in zip(group.members, column, group.variables[s]):
                        if x is not None:
                            rows[k].append((variable, x))
            self._firsts[name] = rows
        return self._firsts[name]

    def seconds(self, name: str) -> list[list[tuple[Variable, Variable, Exact]]]:
        """For each output element, its nonzero second partials (upper triangle)."""
        if name not in self._seconds:
            rows: list[list[tuple[Variable, Variable, Exact]]] = [[] for _ in range(self.outputs[name].size)]
            for group in self.groups(name):
                for (s, t), column in self._second_columns(name, group).items():
                    for k, x, a, b in zip(group.members, column, group.variables[s], group.variables[t]):
                        if x is not None:
                            rows[k].append((a, b, x))
            self._seconds[name] = rows
        return self._seconds[name]

    def first_columns(self, name: str) -> dict[sympy.Symbol, list[Exact | None]]:
        """An elementwise output's first partials as columns over its elements, by symbol (None
        where a partial that is 0 has no terms either)."""
        (group,) = self.groups(name)
        return self._first_columns(name, group)

    def second_columns(self, name: str) -> dict[tuple[sympy.Symbol, sympy.Symbol], list[Exact | None]]:
        (group,) = self.groups(name)
        return self._second_columns(name, group)

    def nth_column(self, name: str, symbol: sympy.Symbol | None, order: int) -> list[Exact]:
        """d^n y_i / ds^n at every element of an elementwise output (0 where y does not use s). Orders
        1 and 2 are the columns the other checks use (floored by the chain rule's term magnitudes);
        higher ones are held to their own error model."""
        (group,) = self.groups(name)
        if order == 1:
            column = self._first_columns(name, group).get(symbol)  # type: ignore[arg-type]
        elif order == 2:
            column = self._second_columns(name, group).get((symbol, symbol))  # type: ignore[arg-type]
        else:
            key = (order, name, symbol)
            split = self._split(name, group)
            if key not in group.columns and split is not None and key in split[0].columns:
                before, sub, again = split
                mine = self._higher(name, sub, symbol, order) if again else None
                group.columns[key] = _spliced_column(before.columns[key], mine, again, len(group.members))
            if key not in group.columns:
                group.columns[key] = self._higher(name, group, symbol, order)
            column = group.columns[key]
        if column is None:
            return [ZERO_EXACT] * len(group.members)
        return [x if x is not None else ZERO_EXACT for x in column]

    def _higher(self, name: str, group: Group, symbol: sympy.Symbol | None, order: int) -> list[Exact] | None:
        """A derivative of order 3 or more. torch has no kernel for, say, the fourth derivative of erf:
        it differentiates erf's backward formula again and again, and the terms that makes can cancel
        (-8y^3 + 12y). So the bound is also taken from the derivative of the written-out closed
        forms, whose sums charge the magnitude of the terms they add."""
        expr = self.outputs[name].term(group.members[0]).expr
        d = stored_diff(expr, *[symbol] * order) if symbol is not None else sympy.S.Zero
        if d == 0:
            return None
        values = self.values(name)
        atomic = self._derivative(name, group, d, values, None, 0.0)
        if self.atomic:  # a target: no formula to write out
            return atomic
        written_out = stored_diff(expand_ops(expr), *[symbol] * order)
        try:
            terms = self._derivative(name, group, written_out, values, None, 0.0)
        except HarnessError:  # a closed form the reference cannot evaluate: the atomic bound alone
            return atomic
        return [Exact(a.ball, max(a.bound, t.bound) if math.isfinite(a.bound) and math.isfinite(t.bound) else a.bound,
                      a.kink, a.undefined) for a, t in zip(atomic, terms)]

    def _first_columns(self, name: str, group: Group) -> dict[sympy.Symbol, list[Exact | None]]:
        return {s: column for (s,), column in self._columns(name, group, 1).items()}

    def _second_columns(self, name: str, group: Group) -> dict[tuple[sympy.Symbol, sympy.Symbol], list[Exact | None]]:
        return self._columns(name, group, 2)  # type: ignore[return-value]

    def _columns(self, name: str, group: Group, order: int) -> dict[tuple[sympy.Symbol, ...], list[Exact | None]]:
        """The group's partial derivatives of one order, by symbols, each floored by the magnitudes
        of its terms; terms that cancel to an exact 0 still give a floor."""
        key = (order, name)
        split = self._split(name, group)
        if key not in group.columns and split is not None and key in split[0].columns:
            before, sub, again = split
            mine = self._columns(name, sub, order) if again else {}
            group.columns[key] = _spliced(before.columns[key], mine, again, len(group.members))
        if key not in group.columns:
            values = self.values(name)
            m1, m2, factor = self._jets(name, group)
            out, first = self.outputs[name], group.members[0]
            partials = [((s,), d) for s, d in out.gradient(first)] if order == 1 else \
                [((s, t), d) for s, t, d in out.hessian(first)]
            magnitudes = {(i,): m for i, m in m1.items()} if order == 1 else m2
            index = {s: i for i, s in enumerate(group.symbols)}
            columns: dict = {symbols: self._derivative(name, group, d, values,
                                                       magnitudes.get(tuple(sorted(index[s] for s in symbols))), factor)
                             for symbols, d in partials}
            for at, column in magnitudes.items():
                symbols = tuple(group.symbols[i] for i in at)
                if symbols not in columns:
                    floor = upward.to_floats(_floored(upward.zeros(len(column)), column, factor)).tolist()
                    present = upward.nonzero(column).tolist()
                    columns[symbols] = [Exact(ZERO, f) if m else None for m, f in zip(present, floor)]
            self._poison_zeros(group, values, columns, order)
            group.columns[key] = columns
        return group.columns[key]

    def _poison_zeros(self, group: Group, values: list[Exact], columns: dict, order: int) -> None:
        """A partial that is 0 as an expression (y / (x - x) in x) is still undefined where the
        function is: such members get an undefined 0 (not certified below the last precision), in
        place of nothing or of the floor of the terms that cancelled."""
        broken = [not values[k].ball.is_finite() for k in group.members]
        if not any(broken):
            return
        poisoned = Exact(ZERO, 0.0, False, True) if self.final else Exact(arb.nan(), 0.0)
        pairs = [(s,) for s in group.symbols] if order == 1 else \
            [(s, t) for i, s in enumerate(group.symbols) for t in group.symbols[i:]]
        for symbols in pairs:
            column = columns.setdefault(symbols, [None] * len(group.members))
            for pos, bad in enumerate(broken):
                entry = column[pos]
                if bad and (entry is None or (entry.ball.is_finite() and not entry.undefined)):
                    column[pos] = poisoned

    def _jets(self, name: str, group: Group) -> tuple[dict, dict, float]:
        """Term magnitudes of the group's partials (columns), from torch's (unevaluated) tree (none
        for a target: its tree is not what torch runs)."""
        key = (name, group.members[0])
        if self.atomic or not self.allowances:
            return {}, {}, 0.0
        if key not in group.jets:
            tree = self.outputs[name].term(group.members[0]).tree
            fn = compile_jets(tree, group.symbols, self.fmt)
            factor = 2 * (tree_depth(tree) + 2) * self.fmt.unit_roundoff  # (exact)
            with precision(self.bits):
                try:
                    _, m1, m2 = fn(group.batch)
                except (HarnessError, ValueError, ZeroDivisionError):  # member by member, then
                    m1, m2 = _member_jets(fn, group.batch)
            group.jets[key] = (m1, m2, factor)
        return group.jets[key]


    def _derivative(self, name: str, group: Group, expr: sympy.Expr, values: list[Exact],
                    magnitudes: np.ndarray | None, factor: float) -> list[Exact]:
        """A partial derivative at each member: undefined where the function is (the 0*expr pitfall),
        its bound floored by the magnitudes of the terms torch's chain rule adds. Where the function
        is not finite yet below the last precision, the derivative is not certified either (a nan
        ball), so the point goes on to the precision that decides whether it is defined."""
        fn = compile_modelled(expr, group.symbols, self.fmt, self._forward(name, group))
        with precision(self.bits):
            found, bounds, kinks = fn(group.batch)
            bounds = self._with_conditioning(group, expr, bounds, kinks)
            mine = [values[k] for k in group.members]
            if self.final:
                undefined = [x.undefined or not defined(v) for v, x in zip(found, mine)]
            else:
                found = [v if x.ball.is_finite() else NAN for v, x in zip(found, mine)]
                undefined = [x.undefined for x in mine]
            if magnitudes is not None:
                bounds = _floored(bounds, magnitudes, factor)
        flags = [bool(k) for k in kinks] if kinks else [False] * len(found)
        return list(map(Exact._make, zip(found, upward.to_floats(bounds).tolist(), flags, undefined)))

    def _with_conditioning(self, group: Group, expr: sympy.Expr, bounds: np.ndarray,
                           kinks: Sequence[bool] | None) -> np.ndarray:
        """The error model's bound plus what the function's conditioning makes unavoidable; for a
        target (atomic), the conditioning alone: its formula is not the expression's."""
        if not self.allowances:
            return bounds
        conditioning = self._conditioning(group, expr, kinks)
        if self.atomic:
            return conditioning
        return upward.add(bounds, conditioning)

    def _conditioning(self, group: Group, expr: sympy.Expr, kinks: Sequence[bool] | None) -> np.ndarray:
        """What a half-ulp change of each input moves the exact function by, sum |df/dx| u |x|,
        once for the whole expression (each op's kernel may round its argument on the way,
        x*log2(e) in exp, beta*x in softplus: no more than such a change of the inputs).

        df/dx is a central difference in Arb at this precision with a step of |x| 2^-(bits/2): an
        estimate for an allowance (not a reference value), costing two evaluations of the closed
        form per input instead of a symbolic derivative. No term at a kink (the kink machinery
        speaks there) or where the difference is not finite (a pole within the step)."""
        batch, n = group.batch, group.batch.n
        if not group.symbols or expr.is_Number:
            return upward.zeros(n)
        form = closed(expr, group.symbols)
        total = upward.zeros(n)
        for i, column in enumerate(batch.columns):
            stepped = self._steps(group, i)
            if stepped is None:
                continue
            h, plus, minus = stepped
            above, below = form(plus), form(minus)
            members, slopes = [], []
            for k in range(n):
                if h[k] == ZERO or (kinks and kinks[k]):
                    continue
                slope = (above[k] - below[k]) / (2 * h[k])
                if slope.is_finite():
                    members.append(k)
                    slopes.append(slope * column[k])  # the product in balls: 1/x times x at x = 1e-310
            if members:
                moved = upward.scale(self.fmt.unit_roundoff, upward.magnitudes(slopes))
                total[members] = upward.add(total[members], moved)
        return total

    def _steps(self, group: Group, i: int) -> tuple[list[arb], Batch, Batch] | None:
        """The steps of the i-th input and the batches a step above and below it, once per group:
        the value and each derivative are differenced over the same batches, so their shared
        subexpressions are evaluated once there too (None: every step is 0)."""
        if i not in group.steps:
            batch, column = group.batch, group.batch.columns[i]
            step = arb(2) ** -(self.bits // 2)
            h = [abs(x) * step for x in column]
            if all(d == ZERO for d in h):
                group.steps[i] = None
            else:
                def shifted(sign: int) -> Batch:
                    moved = [x + d for x, d in zip(column, h)] if sign > 0 else [x - d for x, d in zip(column, h)]
                    return batch.of([*batch.columns[:i], moved, *batch.columns[i + 1:]])
                group.steps[i] = (h, shifted(1), shifted(-1))
        return group.steps[i]

    def _forward(self, name: str, group: Group) -> frozenset[sympy.Expr]:
        """The subexpressions of the function a group's derivatives differentiate (see compile_modelled)."""
        return _subexpressions(self.outputs[name].term(group.members[0]).expr)


@dataclass(eq=False)
class Group:
    """Output elements that share one expression, their batch of input balls, and which input
    element each symbol stands for at each member."""

    members: list[int]
    symbols: tuple[sympy.Symbol, ...]
    batch: Batch
    variables: dict[sympy.Symbol, list[Variable]]
    jets: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)  # PointReference._steps
    whole: bool = True  # False: a sub-group of members computed again (PointReference.reuse)
    split: tuple | None = None  # PointReference._split's answer, once


def _not_finite_at(group: Group, p: int) -> bool:
    """Whether any result the group computed for its p-th member is not a finite ball."""
    for found in group.columns.values():
        for column in (found.values() if isinstance(found, dict) else (found,)):
            if column is not None and column[p] is not None and not column[p].ball.is_finite():
                return True
    return False


def _spliced_column(before: list | None, mine: list | None, again: list[int], n: int) -> list | None:
    """A column of the previous precision (n members) with the members computed again put in."""
    if before is None and mine is None:
        return None
    out = list(before) if before is not None else [None] * n
    for pos, p in enumerate(again):
        out[p] = mine[pos] if mine is not None else None
    return out


def _spliced(before: dict, mine: dict, again: list[int], n: int) -> dict:
    """Columns by symbols, the previous precision's with the members computed again put in (a
    column that only one of the two has: None for the members that lack it)."""
    return {symbols: _spliced_column(before.get(symbols), mine.get(symbols), again, n)
            for symbols in dict.fromkeys([*before, *mine])}


def _input_ball(q: float, far: int, sided: bool, stagger: bool, flip: bool, specials: Iterator[int]) -> arb:
    """An input's exact value; an infinite one as +-2**far, past the format's range, and with
    `sided` a signed zero as +-2**-far, below it: the reference then approaches the limit
    (checks._limits compares such values). With `stagger` the j-th such input moves 2**(8j) times
    faster, so a limit that depends on the direction of approach (x - y at inf) disagrees; with
    `flip` a zero approaches from the other side."""
    sign = -1 if math.copysign(1.0, q) < 0 else 1
    if flip and q == 0:
        sign = -sign
    special = math.isinf(q) or (q == 0 and sided)
    if not special or not far:
        return arb(q)
    exponent = far + (8 * (next(specials) % 64) if stagger else 0)
    return arb(2) ** (exponent if math.isinf(q) else -exponent) * sign


@functools.lru_cache(maxsize=EXPRESSIONS)
def _subexpressions(expr: sympy.Expr) -> frozenset[sympy.Expr]:
    """One set per expression (the same object each time: compile_modelled's cache key)."""
    return frozenset(sympy.preorder_traversal(expr))


def _floored(bound: np.ndarray, magnitude: np.ndarray, factor: float) -> np.ndarray:
    """Error bounds no smaller than the terms torch's chain rule adds (their magnitude) times u
    (where both are finite: an infinite magnitude is no term torch adds)."""
    usable = upward.bounded(bound) & upward.bounded(magnitude)
    return np.where(usable, np.maximum(bound, upward.scale(factor, magnitude)), bound)


def _member_jets(fn: JetFn, batch: Batch) -> tuple[dict, dict]:
    """Jets one member at a time: a member whose jets fail has none (0 magnitudes)."""
    m1: dict = {}
    m2: dict = {}
    for k in range(batch.n):
        try:
            _, a1, a2 = fn(batch.subset([k]))
        except (HarnessError, ValueError, ZeroDivisionError):
            continue
        for into, part in ((m1, a1), (m2, a2)):
            for term, column in part.items():
                into.setdefault(term, upward.zeros(batch.n))[k] = column[0]
    return m1, m2


def evaluate_certified(compute: Callable[[PointReference], Sequence[Exact] | Floats],
                       make: Callable[[int, bool], PointReference],
                       fmt: FloatFormat, reuse: bool = True) -> tuple[Sequence[Exact] | Floats, Floats, bool]:
    """Run `compute` at rising precision until every result is certified. `compute` gives balls, or
    floats made from them (elementwise VJPs: `scaled_floats`). Where the last precision is reached
    because what is left has no finite ball at two precisions in a row, it computes only the members
    without one (`PointReference.reuse`; `reuse=False`: every member again there).

    Returns (results, their floats, ok)."""
    bits = start_precision(fmt)
    stuck = None  # the elements without any finite ball at the last precision
    previous: PointReference | None = None  # where the last precision is reached by a jump
    while True:
        final = bits >= MAX_PRECISION
        reference = make(bits, final)
        if previous is not None and reuse:
            reference.reuse(previous)
        with precision(bits):  # sums and products of the exact values (VJPs, Hessians) at this precision too
            results = compute(reference)
            floats = results if isinstance(results, Floats) else as_floats(results)
        certified = floats.certified(fmt)
        if certified.all():
            return results, floats, True
        # what has no finite ball at two precisions in a row (a pole, outside the domain) does not
        # change with a few more bits: go straight to the last precision, which decides it
        nowhere = ~certified & ~floats.finite
        if stuck is not None and not final and (~certified <= (nowhere & stuck)).all():
            bits, previous = MAX_PRECISION, reference  # only the members without a finite ball again
            continue
        stuck = nowhere
        if final:  # what is not a finite ball even now is undefined (the floats are not made again)
            undefined = floats.undefined | ~(floats.finite | floats.infinite)
            floats = replace(floats, undefined=undefined)
            if isinstance(results, Floats):
                return floats, floats, False
            results = [x if defined(x.ball) else Exact(x.ball, x.bound, x.kink, True) for x in results]
            return results, floats, False
        bits = min(2 * bits, MAX_PRECISION)


# ---------------------------------------------------------------- literals and constants


def fold(node: Node, fmt: FloatFormat, constants: dict[str, Fraction]) -> Node:
    """Replace every constant subtree by its exact value rounded to `fmt`, as torch receives it."""

    def constant(n: Node) -> Node | None:
        if isinstance(n, Num | Const) or (isinstance(n, Call) and not _has_names(n, constants)):
            return Num(constant_value(n, fmt))
        if isinstance(n, Name) and n.id in constants:
            return Num(constant_value(Num(constants[n.id]), fmt))
        return None

    return transform(node, constant, lambda k, v: _keyword(k, v, fmt))


EXACT_KEYWORDS = ("dim", "p", "ord", "n")  # indices and orders torch takes as Python numbers


def _keyword(name: str, value: Fraction | str, fmt: FloatFormat) -> Fraction | str:
    """A numeric keyword as torch applies it: rounded to the tensor's dtype (clamp(x, min=0.11) in
    float32 clamps at float32(0.11)); indices and norm orders stay exact."""
    if isinstance(value, str) or name in EXACT_KEYWORDS:
        return value
    rounded = round_to_format(value, fmt)
    return rounded if isinstance(rounded, Fraction) else value  # past the range: as written


def _has_names(node: Node, constants: dict[str, Fraction]) -> bool:
    if isinstance(node, Name):
        return node.id not in constants
    if isinstance(node, Call):
        op, _ = resolve(node.op, node.keywords)
        return any(_has_names(a, constants) for a in node.args) or isinstance(op, Structural | Predicate)
    return isinstance(node, Index | Seq)


def constant_value(node: Node, fmt: FloatFormat, constants: dict[str, Fraction] | None = None) -> Fraction:
    """The exact value of a constant expression, rounded to `fmt`."""
    if isinstance(node, Num):  # a number needs no evaluation, only rounding
        rounded = round_to_format(node.value, fmt)
        if isinstance(rounded, float):
            raise HarnessError(f"constant {sympy.Rational(node.value.numerator, node.value.denominator)}"
                               f" overflows {fmt.name}")
        return rounded
    with sympy.evaluate(False):  # SymPy would turn log(-1) into I*pi
        expr = _constant_expr(node, constants or {})
    form = compile_closed(expr, [])
    bits = 256
    while bits <= MAX_PRECISION:
        with precision(bits):
            ball = form([])
            if not finite(ball):
                raise HarnessError(f"constant {expr} is not a finite real number")
            if abs(ball) > arb(2) ** (fmt.emax + 1):  # before any exact conversion: 2^(2^30) is 128 MB
                raise HarnessError(f"constant {expr} overflows {fmt.name}")
            if abs(ball) < arb(2) ** (fmt.emin - fmt.precision):  # below half the smallest subnormal
                return Fraction(0)
            lo, hi = (round_to_format(_fraction(b), fmt) for b in (ball.lower(), ball.upper()))
        if lo == hi:
            if isinstance(lo, float):
                raise HarnessError(f"constant {expr} overflows {fmt.name}")
            return lo
        bits *= 4
    raise HarnessError(f"cannot round constant {expr} to {fmt.name}")


def _fraction(b: arb) -> Fraction:
    man, exp = (int(x) for x in b.mid().man_exp())
    return Fraction(man) * Fraction(2) ** exp


def _constant_expr(node: Node, constants: dict[str, Fraction]) -> sympy.Expr:
    if isinstance(node, Num):
        return sympy.Rational(node.value.numerator, node.value.denominator)
    if isinstance(node, Const):
        return sympy.pi if node.name == "pi" else sympy.E
    if isinstance(node, Name):
        if node.id not in constants:
            raise HarnessError(f"{node.id!r} is not a constant")
        v = constants[node.id]
        return sympy.Rational(v.numerator, v.denominator)
    if isinstance(node, Call):
        op, keywords = resolve(node.op, node.keywords)
        if len(node.args) != op.arity:
            raise HarnessError(f"{op.name}() takes {op.arity} argument(s), got {len(node.args)}")
        args = [_constant_expr(a, constants) for a in node.args]
        return op.definition(*args, *(as_sympy(k) for k in keywords))
    raise HarnessError("indexing is not allowed in a constant")
