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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import flint
import numpy as np
import sympy
from flint import arb

from harness.errors import HarnessError
from harness.expr import Call, Const, Index, Name, Node, Num
from harness.functions import KinkFunction, OpFunction, closed_body
from harness.numbers import FloatFormat, round_to_format
from harness.ops import OPS, keyword_values
from harness.symbolic import SymbolicOutput, Variable

MAX_PRECISION = 8192
CERTIFY_BITS = 12  # radius must be 2**-12 of the tolerance scale


@contextmanager
def precision(bits: int) -> Iterator[None]:
    old = flint.ctx.prec
    flint.ctx.prec = bits
    try:
        yield
    finally:
        flint.ctx.prec = old


def start_precision(fmt: FloatFormat) -> int:
    return 2 * fmt.precision + 20


# ---------------------------------------------------------------- closed forms, ball only

ClosedForm = Callable[[Sequence[arb]], arb]


_UNARY: dict[type, Callable[[arb], arb]] = {
    sympy.exp: arb.exp, sympy.log: arb.log, sympy.sin: arb.sin, sympy.cos: arb.cos, sympy.tan: arb.tan,
    sympy.tanh: arb.tanh, sympy.sinh: arb.sinh, sympy.cosh: arb.cosh, sympy.asin: arb.asin,
    sympy.acos: arb.acos, sympy.atan: arb.atan, sympy.asinh: arb.asinh, sympy.acosh: arb.acosh,
    sympy.atanh: arb.atanh, sympy.sec: lambda a: 1 / a.cos(), sympy.csc: lambda a: 1 / a.sin(),
    sympy.cot: lambda a: 1 / a.tan(), sympy.sech: lambda a: 1 / a.cosh(), sympy.csch: lambda a: 1 / a.sinh(),
    sympy.coth: lambda a: 1 / a.tanh(), sympy.Abs: abs, sympy.sign: arb.sgn, sympy.erf: arb.erf,
    sympy.erfc: arb.erfc,
}


def compile_closed(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> ClosedForm:
    """A SymPy expression as a function of ball arguments (one table of node types)."""
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
    parts = [compile_closed(arg, symbols) for arg in expr.args]
    if expr.is_Add:
        return lambda a: _fold(parts, a, lambda x, y: x + y)
    if expr.is_Mul:
        return lambda a: _fold(parts, a, lambda x, y: x * y)
    if expr.is_Pow:
        return _compile_pow(expr, parts)
    if isinstance(expr, KinkFunction):
        return _closed_kink(type(expr), parts)
    if isinstance(expr, sympy.Max | sympy.Min):
        pick = arb.max if isinstance(expr, sympy.Max) else arb.min
        return lambda a: _fold(parts, a, lambda x, y: pick(x, y))
    fn = _UNARY.get(type(expr))
    if fn is None:
        raise HarnessError(f"the reference cannot evaluate {type(expr).__name__} (in {expr})")
    (inner,) = parts
    return lambda a: fn(inner(a))


def _closed_kink(cls: type[KinkFunction], parts: list[ClosedForm]) -> ClosedForm:
    inner, convention = parts

    def kink(a: Sequence[arb]) -> arb:
        x = inner(a)
        if x > 0 or x < 0:
            return arb(cls.away(bool(x > 0)))
        return convention(a) if x.is_exact() else arb.union(arb(cls.away(True)), arb(cls.away(False)))

    return kink


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
    return lambda a: base(a) ** exponent(a)


@cache
def closed_form(cls: type) -> tuple[ClosedForm, tuple[ClosedForm, ...]]:
    """The closed form of a function class and of its partial derivatives."""
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
def _floor_form(cls: type, order: int) -> ClosedForm | None:
    if not issubclass(cls, OpFunction) or cls.op.floor is None:
        return None
    syms = sympy.symbols(f"a0:{cls.op.arity + len(cls.op.keywords)}", real=True)
    floor = cls.op.floor(syms, order)
    return None if floor == 0 else compile_closed(floor, syms)


# ---------------------------------------------------------------- the error model


@dataclass
class _State:
    u: arb
    fmt: FloatFormat
    kink: bool = False


Modelled = Callable[[Sequence[arb], _State], tuple[arb, arb]]
ZERO = arb(0)


def compile_modelled(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], fmt: FloatFormat) -> Modelled:
    """Value and error-model bound of a harness tree or derivative expression."""
    if expr in symbols:
        i = list(symbols).index(expr)
        return lambda a, s: (a[i], ZERO)
    if expr.is_Number or expr is sympy.pi or expr is sympy.E:
        value = compile_closed(expr, symbols)
        exact = expr.is_Rational and _representable(Fraction(int(expr.p), int(expr.q)), fmt)
        return (lambda a, s: (value(a), ZERO)) if exact else (lambda a, s: _rounded(value(a), s))
    parts = [compile_modelled(arg, symbols, fmt) for arg in expr.args]
    if expr.is_Add:
        return lambda a, s: _add([p(a, s) for p in parts], s)
    if expr.is_Mul:
        roundings = max(0, sum(1 for f in expr.args if not _is_power_of_two(f)) - 1)
        return lambda a, s: _mul([p(a, s) for p in parts], roundings, s)
    if expr.is_Pow:
        return _modelled_pow(expr, parts)
    if isinstance(expr, KinkFunction):
        return _modelled_kink(type(expr), parts)
    return _modelled_function(expr, parts)


def _representable(q: Fraction, fmt: FloatFormat) -> bool:
    return round_to_format(q, fmt) == q


def _is_power_of_two(x: sympy.Expr) -> bool:
    if not x.is_Rational or x == 0:
        return False
    p, q = abs(int(x.p)), int(x.q)
    return p & (p - 1) == 0 and q & (q - 1) == 0


def _rounded(v: arb, s: _State) -> tuple[arb, arb]:
    return v, s.u * abs(v)


def _add(terms: list[tuple[arb, arb]], s: _State) -> tuple[arb, arb]:
    value, bound, size = ZERO, ZERO, ZERO
    for v, e in terms:
        value, bound, size = value + v, bound + e, size + abs(v)
    return value, bound + (len(terms) - 1) * s.u * size


def _mul(factors: list[tuple[arb, arb]], roundings: int, s: _State) -> tuple[arb, arb]:
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

        def integer_power(a: Sequence[arb], s: _State) -> tuple[arb, arb]:
            b, eb = base(a, s)
            v = b**n if n >= 0 else 1 / b**(-n)
            bound = roundings * s.u * abs(v)
            if eb != 0:
                bound = bound + abs(n) * abs(b ** (n - 1) if n >= 1 else 1 / b ** (1 - n)) * eb
            return v, bound

        return integer_power

    def real_power(a: Sequence[arb], s: _State) -> tuple[arb, arb]:
        (b, eb), (x, ex) = base(a, s), exponent(a, s)
        v = b.sqrt() if e == sympy.S.Half else (b.rsqrt() if e == -sympy.S.Half else b**x)
        bound = 2 * s.u * abs(v)
        if eb != 0:
            bound = bound + abs(x * v / b) * eb
        if ex != 0:
            bound = bound + abs(v * b.log()) * ex
        return v, bound

    return real_power


def _modelled_kink(cls: type[KinkFunction], parts: list[Modelled]) -> Modelled:
    inner, convention = parts

    def kink(a: Sequence[arb], s: _State) -> tuple[arb, arb]:
        x, _ = inner(a, s)
        c, _ = convention(a, s)
        if x > 0:
            return arb(cls.away(True)), ZERO
        if x < 0:
            return arb(cls.away(False)), ZERO
        if x.is_exact():  # exactly at the kink
            s.kink = True
            return c, ZERO
        return arb.union(arb.union(arb(cls.away(True)), arb(cls.away(False))), c), ZERO

    return kink


def _modelled_function(expr: sympy.Function, parts: list[Modelled]) -> Modelled:
    cls = type(expr)
    value_form, partials = closed_form(cls)
    ulps = cls.op.ulps if issubclass(cls, OpFunction) else 2.0
    floor = _floor_form(cls, sum(cls.orders) if issubclass(cls, OpFunction) else 0)

    def function(a: Sequence[arb], s: _State) -> tuple[arb, arb]:
        args = [p(a, s) for p in parts]
        balls = [v for v, _ in args]
        v = value_form(balls)
        size = abs(v) if floor is None else abs(v) + abs(floor(balls))
        bound = 2 * ulps * s.u * size
        for d, (_, e) in zip(partials, args):
            if e != 0:
                bound = bound + abs(d(balls)) * e
        return v, bound

    return function


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
    return b.is_finite() and not b.is_nan()


def certified(x: Exact, fmt: FloatFormat) -> bool:
    if x.undefined:
        return True
    if not is_finite(x.ball):
        return False
    scale = max(float(abs(x.ball).upper()) * 2.0 ** (1 - fmt.precision), float(x.bound.upper()),
                fmt.smallest_subnormal)
    return float(x.ball.rad()) <= scale * 2.0**-CERTIFY_BITS


# ---------------------------------------------------------------- one point


class PointReference:
    """The exact values and derivatives of every output at one point, at one precision."""

    def __init__(self, outputs: dict[str, SymbolicOutput], values: dict[str, np.ndarray],
                 fmt: FloatFormat, bits: int, final: bool) -> None:
        self.outputs, self.fmt, self.bits, self.final = outputs, fmt, bits, final
        self.u = arb(2) ** -fmt.precision
        with precision(bits):
            self.inputs = {n: [arb(float(q)) for q in v.ravel()] for n, v in values.items()}
        self._values: dict[str, list[Exact]] = {}
        self._firsts: dict[str, list[list[tuple[Variable, Exact]]]] = {}
        self._seconds: dict[str, list[list[tuple[Variable, Variable, Exact]]]] = {}

    def _evaluate(self, out: SymbolicOutput, k: int, expr: sympy.Expr) -> Exact:
        binding = out.binding(k)
        symbols = tuple(binding)
        fn = _modelled(expr, symbols, self.fmt)
        state = _State(self.u, self.fmt)
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
                rows.append([(binding[s], self._poison(self._evaluate(out, k, d), value))
                             for s, d in out.gradient(k)])
            self._firsts[name] = rows
        return self._firsts[name]

    def seconds(self, name: str) -> list[list[tuple[Variable, Variable, Exact]]]:
        """For each output element, its nonzero second partials (upper triangle)."""
        if name not in self._seconds:
            out, rows = self.outputs[name], []
            for k, value in enumerate(self.values(name)):
                binding = out.binding(k)
                rows.append([(binding[s], binding[t], self._poison(self._evaluate(out, k, d), value))
                             for s, t, d in out.hessian(k)])
            self._seconds[name] = rows
        return self._seconds[name]

    @staticmethod
    def _poison(derivative: Exact, value: Exact) -> Exact:
        """A derivative where the function itself is undefined is undefined (0*expr pitfall)."""
        if value.undefined and not derivative.undefined:
            return Exact(derivative.ball, derivative.bound, derivative.kink, True)
        return derivative


@cache
def _modelled_cached(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> Modelled:
    return compile_modelled(expr, symbols, fmt)


def _modelled(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fmt: FloatFormat) -> Modelled:
    return _modelled_cached(expr, symbols, fmt)


def evaluate_certified(compute: Callable[[PointReference], list[Exact]],
                       make: Callable[[int, bool], PointReference], fmt: FloatFormat) -> tuple[list[Exact], bool]:
    """Run `compute` at rising precision until every result is certified. Returns (results, ok)."""
    bits = start_precision(fmt)
    while True:
        final = bits * 2 > MAX_PRECISION
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
    return Call(node.op, tuple(fold(a, fmt, constants) for a in node.args), node.keywords)


def _has_names(node: Node, constants: dict[str, Fraction]) -> bool:
    if isinstance(node, Name):
        return node.id not in constants
    if isinstance(node, Call):
        return any(_has_names(a, constants) for a in node.args) or OPS[node.op].kind in ("reduction", "linear")
    return isinstance(node, Index)


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
        op = OPS[node.op]
        if len(node.args) != op.arity:
            raise HarnessError(f"{op.name}() takes {op.arity} argument(s), got {len(node.args)}")
        args = [_constant_expr(a, constants) for a in node.args]
        kws = [sympy.Rational(k.numerator, k.denominator) for k in keyword_values(op, node.keywords)]
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
