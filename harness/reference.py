"""Exact evaluation at the exact binary inputs, with certified error bounds (Arb balls).

Every exact scalar is evaluated in ball arithmetic (python-flint's Arb): a midpoint with a proven
radius. A quantity is certified when its radius is far below the tolerance it will be held to; the
point is re-evaluated at doubled precision until every quantity is, or the precision cap is reached.

Alongside each value runs the error model: a bound on the rounding error a floating-point
evaluation of the same tree (in the case's dtype) can make. It is what lets a derivative that
is exactly 0 from cancelling terms of size 1e8 be compared against an absolute floor instead of
4 ulps of 0. The model charges each operation its kernel's accuracy and propagates input errors
through the partial derivatives (first-order running error analysis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import flint
import numpy as np
import sympy
from flint import arb

from harness.balls import ZERO, State, compile_closed, compile_jets, compile_modelled, finite, precision, tree_depth
from harness.errors import HarnessError
from harness.expr import Call, Const, Index, Name, Node, Num, Seq
from harness.functions import as_sympy
from harness.numbers import FloatFormat, round_to_format
from harness.ops import resolve
from harness.symbolic import SymbolicOutput, Variable

MAX_PRECISION = 8192
CERTIFY_BITS = 12  # radius must be 2**-12 of the tolerance scale


def start_precision(fmt: FloatFormat) -> int:
    return 2 * fmt.precision + 20


# ---------------------------------------------------------------- exact scalars and their sums


@dataclass(frozen=True)
class Exact:
    """One exact scalar: a certified ball, the error-model bound, and where it stands."""

    ball: arb
    bound: arb
    kink: bool = False
    undefined: bool = False


def combine(terms: Sequence[tuple[arb, Exact]], s_u: arb) -> Exact:
    """sum(w * x): how torch accumulates a VJP, JVP or Hessian-vector product."""
    terms = [(w, x) for w, x in terms if w != 0]
    if not terms:
        return Exact(ZERO, ZERO)
    value, bound, size = ZERO, ZERO, ZERO
    for w, x in terms:
        p = w * x.ball
        value, size = value + p, size + abs(p)
        bound = bound + abs(w) * x.bound
    bound = bound + len(terms) * s_u * size
    return Exact(value, bound, any(x.kink for _, x in terms), any(x.undefined for _, x in terms))


def is_finite(b: arb) -> bool:
    return finite(b)


def certified(x: Exact, fmt: FloatFormat) -> bool:
    """The ball is narrow enough: its radius is far below an ulp of its value (or of the smallest
    subnormal, for values that are 0)."""
    if x.undefined:
        return True
    if not is_finite(x.ball):
        return False
    rad = float(x.ball.rad())
    scale = max(float(abs(x.ball).upper()) * 2.0 ** (1 - fmt.precision), fmt.smallest_subnormal)
    return rad <= scale * 2.0**-CERTIFY_BITS


# ---------------------------------------------------------------- one point


class PointReference:
    """The exact values and derivatives of every output at one point, at one precision."""

    def __init__(self, outputs: dict[str, SymbolicOutput], values: dict[str, np.ndarray],
                 fmt: FloatFormat, bits: int, final: bool,
                 conventions: dict[str, dict[int, Fraction]] | None = None) -> None:
        self.outputs, self.fmt, self.bits, self.final = outputs, fmt, bits, final
        self.conventions = conventions or {}
        self.u = arb(2) ** -fmt.precision
        with precision(bits):  # exact binary inputs, or balls (an exact optimizer replay)
            self.inputs = {n: [q if isinstance(q, arb) else arb(float(q)) for q in v.ravel()]
                           for n, v in values.items()}
        self._values: dict[str, list[Exact]] = {}
        self._firsts: dict[str, list[list[tuple[Variable, Exact]]]] = {}
        self._seconds: dict[str, list[list[tuple[Variable, Variable, Exact]]]] = {}

    def _evaluate(self, out: SymbolicOutput, k: int, expr: sympy.Expr) -> Exact:
        binding = out.binding(k)
        symbols = tuple(binding)
        fn = compile_modelled(expr, symbols, self.fmt)
        state = State(self.u, self.fmt, conventions=self.conventions)
        with precision(self.bits):
            args = [self.inputs[name][i] for name, i in binding.values()]
            v, e = fn(args, state)
        undefined = not is_finite(v) and self.final
        return Exact(v, e, state.kink, undefined)

    def values(self, name: str) -> list[Exact]:
        if name not in self._values:
            out = self.outputs[name]
            self._values[name] = [self._evaluate(out, k, out.term(k).tree) for k in range(out.size)]
        return self._values[name]

    def firsts(self, name: str) -> list[list[tuple[Variable, Exact]]]:
        """For each output element, its nonzero first partials by input element."""
        if name not in self._firsts:
            out, rows = self.outputs[name], []
            for k, value in enumerate(self.values(name)):
                binding = out.binding(k)
                index = {s: i for i, s in enumerate(binding)}
                m1, _, factor = self._jets(out, k)
                row = [(binding[s], self._floored(self._poison(self._evaluate(out, k, d), value),
                                                  m1.get(index[s]), factor))
                       for s, d in out.gradient(k)]
                present = {s for s, _ in out.gradient(k)}
                symbols = list(binding)
                row += [(binding[symbols[i]], self._floored(Exact(ZERO, ZERO), m, factor))
                        for i, m in m1.items() if symbols[i] not in present and m != 0]
                rows.append(row)
            self._firsts[name] = rows
        return self._firsts[name]

    def seconds(self, name: str) -> list[list[tuple[Variable, Variable, Exact]]]:
        """For each output element, its nonzero second partials (upper triangle)."""
        if name not in self._seconds:
            out, rows = self.outputs[name], []
            for k, value in enumerate(self.values(name)):
                binding = out.binding(k)
                index = {s: i for i, s in enumerate(binding)}
                _, m2, factor = self._jets(out, k)
                row = [(binding[s], binding[t],
                        self._floored(self._poison(self._evaluate(out, k, d), value),
                                      m2.get(tuple(sorted((index[s], index[t])))), factor))
                       for s, t, d in out.hessian(k)]
                present = {tuple(sorted((index[s], index[t]))) for s, t, _ in out.hessian(k)}
                symbols = list(binding)
                row += [(binding[symbols[i]], binding[symbols[j]], self._floored(Exact(ZERO, ZERO), m, factor))
                        for (i, j), m in m2.items() if (i, j) not in present and m != 0]
                rows.append(row)
            self._seconds[name] = rows
        return self._seconds[name]

    def _jets(self, out: SymbolicOutput, k: int) -> tuple[dict, dict, arb]:
        """Term magnitudes of element k's partials, from torch's (unevaluated) tree."""
        binding = out.binding(k)
        tree = out.term(k).tree
        fn = compile_jets(tree, tuple(binding))
        with precision(self.bits):
            args = [self.inputs[name][i] for name, i in binding.values()]
            try:
                _, m1, m2 = fn(args)
            except (HarnessError, ValueError, ZeroDivisionError):
                return {}, {}, ZERO
        return m1, m2, 2 * (tree_depth(tree) + 2) * self.u

    @staticmethod
    def _floored(x: Exact, magnitude: arb | None, factor: arb) -> Exact:
        """The error bound can be no smaller than the terms torch's chain rule adds, times u."""
        if magnitude is None or not finite(magnitude):
            return x
        floor = factor * magnitude
        return Exact(x.ball, arb.max(x.bound, floor) if finite(x.bound) else x.bound, x.kink, x.undefined)

    @staticmethod
    def _poison(derivative: Exact, value: Exact) -> Exact:
        """A derivative where the function itself is undefined is undefined (0*expr pitfall)."""
        if value.undefined and not derivative.undefined:
            return Exact(derivative.ball, derivative.bound, derivative.kink, True)
        return derivative


def evaluate_certified(compute: Callable[[PointReference], list[Exact]],
                       make: Callable[[int, bool], PointReference], fmt: FloatFormat) -> tuple[list[Exact], bool]:
    """Run `compute` at rising precision until every result is certified. Returns (results, ok)."""
    bits = start_precision(fmt)
    while True:
        final = bits * 2 > MAX_PRECISION
        with precision(bits):  # sums and products of the exact values (VJPs, Hessians) at this precision too
            results = compute(make(bits, final))
        if all(certified(x, fmt) for x in results):
            return results, True
        if final:
            return [x if is_finite(x.ball) else Exact(x.ball, x.bound, x.kink, True) for x in results], False
        bits *= 2


# ---------------------------------------------------------------- literals and constants


def fold(node: Node, fmt: FloatFormat, constants: dict[str, Fraction]) -> Node:
    """Replace every constant subtree by its exact value rounded to `fmt`, as torch receives it."""
    if isinstance(node, Num | Const) or (isinstance(node, Call) and not _has_names(node, constants)):
        return Num(constant_value(node, fmt))
    if isinstance(node, Name):
        return Num(constant_value(Num(constants[node.id]), fmt)) if node.id in constants else node
    if isinstance(node, Index):
        return Index(fold(node.value, fmt, constants), node.items)
    if isinstance(node, Seq):
        return Seq(tuple(fold(a, fmt, constants) for a in node.items))
    return Call(node.op, tuple(fold(a, fmt, constants) for a in node.args), node.keywords)


def _has_names(node: Node, constants: dict[str, Fraction]) -> bool:
    if isinstance(node, Name):
        return node.id not in constants
    if isinstance(node, Call):
        op, _ = resolve(node.op, node.keywords)
        return any(_has_names(a, constants) for a in node.args) or op.kind in ("structural", "predicate")
    return isinstance(node, Index | Seq)


def constant_value(node: Node, fmt: FloatFormat, constants: dict[str, Fraction] | None = None) -> Fraction:
    """The exact value of a constant expression, rounded to `fmt`."""
    with sympy.evaluate(False):  # SymPy would turn log(-1) into I*pi
        expr = _constant_expr(node, constants or {})
    form = compile_closed(expr, [])
    bits = 256
    while bits <= MAX_PRECISION:
        with precision(bits):
            ball = form([])
            if not is_finite(ball):
                raise HarnessError(f"constant {expr} is not a finite real number")
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
        kws = [sympy.Rational(k.numerator, k.denominator) if isinstance(k, Fraction) else as_sympy(k)
               for k in keywords]
        return op.exact(*args) if op.kind == "arithmetic" else op.exact(*args, *kws)
    raise HarnessError("indexing is not allowed in a constant")


def to_float_pair(x: Exact) -> tuple[float, float]:
    """The ball's midpoint as hi + lo, two float64s (hi nearest, lo the remainder)."""
    mid = x.ball.mid()
    hi = float(mid)
    if not math.isfinite(hi):
        return hi, 0.0
    with precision(max(flint.ctx.prec, 4096)):
        lo = float(mid - hi)
    return hi, lo
