"""Complex inputs: a complex case checked as the real map of real and imaginary parts.

A complex input z stands for two real inputs, z.re and z.im; a complex output y for two real
outputs, y.re and y.im (one, y, when the output is real: abs, angle). The parts are built op by op
as real SymPy expressions of the parts' symbols (log w = log|w| + i*atan2(im w, re w): principal
branches, as torch's), following torch's types: abs, angle, real and imag give real tensors, and
on real tensors log, sqrt and non-integer powers are the real functions (nan below 0, not
complex). So the exact reference, derivatives, error model and every check of the real pipeline
apply unchanged.

The torch side runs the complex expression on complex tensors: f(z.re, z.im) = (real(y),
imag(y)) with z = torch.complex(z.re, z.im). Autograd through that map is exactly torch's
documented convention for complex inputs: backward with cotangent v returns
v * conj(dy/dz) + conj(v) * dy/dz-bar, which for y = u + i*w and v = a + i*b is
(a*u_x + b*w_x) + i*(a*u_y + b*w_y): the real map's VJP. The `wirtinger` check calls backward on
the complex tensors themselves (v = 1 and v = i) and recovers dy/dz and dy/dz-bar from them, to
compare with the exact Wirtinger derivatives:

    dy/dz     = ((u_x + w_y) + i*(w_x - u_y)) / 2
    dy/dz-bar = ((u_x - w_y) + i*(w_x + u_y)) / 2

and `holomorphy` reports whether Cauchy-Riemann holds (dy/dz-bar = 0) symbolically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

from harness import cache
from harness.errors import HarnessError
from harness.expr import Call, Name, Node, Num
from harness.symbolic import SymbolicOutput, Term, broadcast

IMAG_UNIT = sympy.I


Parts = tuple[sympy.Expr, sympy.Expr]  # (real part, imaginary part), real expressions


def _mul(w: Parts, v: Parts) -> Parts:
    (a, b), (c, d) = w, v
    return a * c - b * d, a * d + b * c


def _div(w: Parts, v: Parts) -> Parts:
    (a, b), (c, d) = w, v
    size = c**2 + d**2
    return (a * c + b * d) / size, (b * c - a * d) / size


def _modulus(w: Parts) -> sympy.Expr:
    return sympy.sqrt(w[0] ** 2 + w[1] ** 2)


def _exp(w: Parts) -> Parts:
    a, b = w
    return sympy.exp(a) * sympy.cos(b), sympy.exp(a) * sympy.sin(b)


def _log(w: Parts) -> Parts:  # the principal branch: the argument in (-pi, pi]
    return sympy.log(_modulus(w)), sympy.atan2(w[1], w[0])


def _sqrt(w: Parts) -> Parts:
    r, theta = _modulus(w), sympy.atan2(w[1], w[0])
    return sympy.sqrt(r) * sympy.cos(theta / 2), sympy.sqrt(r) * sympy.sin(theta / 2)


def _integer(v: Parts) -> int | None:
    """The exponent as an integer, when it is one (a literal: torch gets a Python int)."""
    return int(v[0]) if v[0].is_Integer and v[1] == 0 else None


def _pow(w: Parts, v: Parts) -> Parts:
    n = _integer(v)
    if n is not None:  # an integer power: products
        power: Parts = (sympy.S.One, sympy.S.Zero)
        for _ in range(abs(n)):
            power = _mul(power, w)
        return _div((sympy.S.One, sympy.S.Zero), power) if n < 0 else power
    return _exp(_mul(v, _log(w)))  # the principal branch, as torch.pow


@dataclass(frozen=True)
class ComplexOp:
    """An op on complex tensors: torch's function, and its real and imaginary parts from its
    arguments' (the principal branch where there is a choice)."""

    name: str
    arity: int
    torch: Callable[..., torch.Tensor]
    parts: Callable[..., Parts]


_OPS = [
    ComplexOp("add", 2, torch.add, lambda w, v: (w[0] + v[0], w[1] + v[1])),
    ComplexOp("sub", 2, torch.sub, lambda w, v: (w[0] - v[0], w[1] - v[1])),
    ComplexOp("mul", 2, torch.mul, _mul),
    ComplexOp("div", 2, torch.div, _div),
    ComplexOp("neg", 1, torch.neg, lambda w: (-w[0], -w[1])),
    ComplexOp("pow", 2, torch.pow, _pow),
    ComplexOp("square", 1, torch.square, lambda w: _mul(w, w)),
    ComplexOp("reciprocal", 1, torch.reciprocal, lambda w: _div((sympy.S.One, sympy.S.Zero), w)),
    ComplexOp("exp", 1, torch.exp, _exp),
    ComplexOp("log", 1, torch.log, _log),
    ComplexOp("sqrt", 1, torch.sqrt, _sqrt),
    ComplexOp("sin", 1, torch.sin, lambda w: (sympy.sin(w[0]) * sympy.cosh(w[1]), sympy.cos(w[0]) * sympy.sinh(w[1]))),
    ComplexOp("cos", 1, torch.cos, lambda w: (sympy.cos(w[0]) * sympy.cosh(w[1]), -sympy.sin(w[0]) * sympy.sinh(w[1]))),
    ComplexOp("abs", 1, torch.abs, lambda w: (_modulus(w), sympy.S.Zero)),
    ComplexOp("angle", 1, torch.angle, lambda w: (sympy.atan2(w[1], w[0]), sympy.S.Zero)),
    ComplexOp("sgn", 1, torch.sgn, lambda w: (w[0] / _modulus(w), w[1] / _modulus(w))),
    ComplexOp("conj", 1, torch.conj_physical, lambda w: (w[0], -w[1])),  # a lazy conj view breaks vmap
    ComplexOp("real", 1, torch.real, lambda w: (w[0], sympy.S.Zero)),
    ComplexOp("imag", 1, torch.imag, lambda w: (w[1], sympy.S.Zero)),
]
OPS: dict[str, ComplexOp] = {op.name: op for op in _OPS}
REAL_RESULTS = {"abs", "angle", "real", "imag"}  # torch returns a real tensor


def part_names(name: str) -> tuple[str, str]:
    return f"{name}.re", f"{name}.im"


# ---------------------------------------------------------------- exact

# A subexpression is a complex tensor in torch, a real one (abs, angle, real, imag, and what is
# computed from real ones alone), or a Python number. On a real tensor torch applies the real
# functions: log and sqrt of a negative number are nan, not complex; so are non-integer powers.
COMPLEX, REAL, NUMBER = "complex", "real", "number"


def _real_semantics(name: str, args: list[Parts]) -> Parts | None:
    r = args[0][0]
    if name == "log":
        return sympy.Piecewise((sympy.log(r), r > 0), (sympy.nan, True)), sympy.S.Zero
    if name == "sqrt":
        return sympy.Piecewise((sympy.sqrt(r), r >= 0), (sympy.nan, True)), sympy.S.Zero
    if name == "pow" and _integer(args[1]) is None:
        return sympy.Piecewise((r ** args[1][0], r >= 0), (sympy.nan, True)), sympy.S.Zero
    return None


def _build(node: Node, env: dict[str, Parts]) -> tuple[Parts, str]:
    if isinstance(node, Num):
        return (sympy.Rational(node.value.numerator, node.value.denominator), sympy.S.Zero), NUMBER
    if isinstance(node, Name):
        return env[node.id], COMPLEX
    if not isinstance(node, Call) or node.op not in OPS:
        raise HarnessError(f"{getattr(node, 'op', node)!r} is not supported on complex inputs")
    op = OPS[node.op]
    if len(node.args) != op.arity:
        raise HarnessError(f"{node.op}() takes {op.arity} argument(s), got {len(node.args)}")
    built = [_build(a, env) for a in node.args]
    args, kinds = [b[0] for b in built], {b[1] for b in built}
    # a Python number takes the other operand's type; numbers alone become complex tensors here
    kind = REAL if node.op in REAL_RESULTS or kinds in ({REAL}, {REAL, NUMBER}) else COMPLEX
    if kind == REAL and node.op not in REAL_RESULTS:
        real = _real_semantics(node.op, args)
        if real is not None:
            return real, REAL
    return op.parts(*args), kind


@dataclass(frozen=True)
class ComplexOutput:
    """One output: its real and imaginary parts over the inputs' real and imaginary symbols, and the
    same parts unevaluated (the terms torch computes, for the error model: z/z is 1 to SymPy, but
    (x*x + y*y)/(x*x + y*y) in floating point)."""

    name: str
    parts: tuple[sympy.Expr, sympy.Expr]
    symbols: dict[str, tuple[sympy.Symbol, sympy.Symbol]]  # input -> (re, im) symbols
    real: bool  # torch returns a real tensor
    trees: tuple[sympy.Expr, sympy.Expr] | None = None

    @property
    def value(self) -> sympy.Expr:
        return self.parts[0] + IMAG_UNIT * self.parts[1]

    @property
    def is_real(self) -> bool:
        return self.real or self.parts[1] == 0


def build(name: str, tree: Node, inputs: list[str]) -> ComplexOutput:
    symbols = {x: tuple(sympy.Symbol(p, real=True) for p in part_names(x)) for x in inputs}
    env = {x: pair for x, pair in symbols.items()}
    (re, im), kind = _build(tree, env)  # type: ignore[arg-type]
    with sympy.evaluate(False):
        trees, _ = _build(tree, env)  # type: ignore[arg-type]
    return ComplexOutput(name, (re, im), symbols, kind == REAL, trees)  # type: ignore[arg-type]


def real_outputs(out: ComplexOutput, shapes: dict[str, tuple[int, ...]]) -> dict[str, SymbolicOutput]:
    """The real pipeline's outputs (elementwise over the parts x.re, x.im, ...): y.re and y.im, or y
    alone when it is real."""
    symbols = {s: s.name for pair in out.symbols.values() for s in pair}
    input_shapes = {name: shapes[name] for name in symbols.values()}
    shape = broadcast(input_shapes, out.name)
    names = (out.name,) if out.is_real else part_names(out.name)
    trees = out.trees or out.parts
    return {n: SymbolicOutput(n, shape, True, input_shapes, symbols, (Term(t, e),))  # type: ignore[arg-type]
            for n, t, e in zip(names, trees, out.parts)}


def wirtinger(out: ComplexOutput, x: str) -> tuple[sympy.Expr, sympy.Expr]:
    """dy/dz and dy/dz-bar for input x, from the real parts' partial derivatives."""
    (re_s, im_s), (u, w) = out.symbols[x], out.parts
    ux, uy, wx, wy = (cache.diff(f, s) for f in (u, w) for s in (re_s, im_s))
    return ((ux + wy) + IMAG_UNIT * (wx - uy)) / 2, ((ux - wy) + IMAG_UNIT * (wx + uy)) / 2


def holomorphy(out: ComplexOutput) -> str:
    """Whether Cauchy-Riemann holds for every input: dy/dz-bar = 0 identically."""
    verdicts = []
    for x in out.symbols:
        _, dzbar = wirtinger(out, x)
        residual = cache.simplify(dzbar)
        verdicts.append(f"d/d{x}-bar = 0" if residual == 0 else f"d/d{x}-bar = {residual}")
    holomorphic = all(v.endswith("= 0") for v in verdicts)
    head = "holomorphic (Cauchy-Riemann holds)" if holomorphic else "not holomorphic"
    return f"{head}: {'; '.join(verdicts)}"


# ---------------------------------------------------------------- torch


def complex_function(tree: Node, inputs: list[str]) -> Callable[..., torch.Tensor]:
    """f(x, y, ...) on complex tensors -> the output, complex (or real: abs, angle)."""

    def run(node: Node, env: dict[str, torch.Tensor]) -> torch.Tensor | float:
        if isinstance(node, Num):
            return float(node.value)
        if isinstance(node, Name):
            return env[node.id]
        assert isinstance(node, Call)
        args = [run(a, env) for a in node.args]
        if not any(isinstance(a, torch.Tensor) for a in args):  # a constant: a tensor of the inputs' dtype
            args[0] = torch.tensor(args[0], dtype=next(iter(env.values())).dtype)
        return OPS[node.op].torch(*args)

    def function(*zs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(run(tree, dict(zip(inputs, zs))))

    return function


def real_map(functions: dict[str, Callable[..., torch.Tensor]], inputs: list[str], real_output: dict[str, bool]):
    """f(x.re, x.im, ...) -> the outputs' real and imaginary parts, computed on complex tensors by
    `functions` (one per output, of the complex inputs)."""

    def function(*parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        zs = [torch.complex(parts[2 * i], parts[2 * i + 1]) for i in range(len(inputs))]
        out: list[torch.Tensor] = []
        for name, f in functions.items():
            y = f(*zs)
            if real_output[name]:
                out.append(y.real if y.is_complex() else y)
            else:
                out += [torch.real(y), torch.imag(y)] if y.is_complex() else [y, torch.zeros_like(y)]
        return tuple(out)

    return function
