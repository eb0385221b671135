"""Complex inputs: a complex case checked as the real map of real and imaginary parts.

A complex input z stands for two real inputs, z.re and z.im; a complex output y for two real
outputs, y.re and y.im (one, y, when the output is real: abs, angle). SymPy builds the output with
z = x + i*y over real symbols and splits it (log z = log|z| + i*atan2(y, x), principal branches
as torch's), so the exact reference, derivatives, error model and every check of the real
pipeline apply unchanged.

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

import numpy as np
import sympy
import torch

from harness import cache
from harness.errors import HarnessError
from harness.expr import Call, Name, Node, Num
from harness.symbolic import SymbolicOutput, Term

IMAG_UNIT = sympy.I


@dataclass(frozen=True)
class ComplexOp:
    name: str
    arity: int
    torch: Callable[..., torch.Tensor]
    exact: Callable[..., sympy.Expr]


def _angle(a: sympy.Expr) -> sympy.Expr:
    return sympy.arg(a)


def _pow(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if b.is_Integer:
        return a**b
    return sympy.exp(b * sympy.log(a))  # the principal branch, as torch.pow


_OPS = [
    ComplexOp("add", 2, torch.add, lambda a, b: a + b),
    ComplexOp("sub", 2, torch.sub, lambda a, b: a - b),
    ComplexOp("mul", 2, torch.mul, lambda a, b: a * b),
    ComplexOp("div", 2, torch.div, lambda a, b: a / b),
    ComplexOp("neg", 1, torch.neg, lambda a: -a),
    ComplexOp("pow", 2, torch.pow, _pow),
    ComplexOp("square", 1, torch.square, lambda a: a**2),
    ComplexOp("reciprocal", 1, torch.reciprocal, lambda a: 1 / a),
    ComplexOp("exp", 1, torch.exp, sympy.exp),
    ComplexOp("log", 1, torch.log, sympy.log),
    ComplexOp("sqrt", 1, torch.sqrt, sympy.sqrt),
    ComplexOp("sin", 1, torch.sin, sympy.sin),
    ComplexOp("cos", 1, torch.cos, sympy.cos),
    ComplexOp("abs", 1, torch.abs, sympy.Abs),
    ComplexOp("angle", 1, torch.angle, _angle),
    ComplexOp("sgn", 1, torch.sgn, lambda a: a / sympy.Abs(a)),
    ComplexOp("conj", 1, torch.conj, sympy.conjugate),
    ComplexOp("real", 1, torch.real, sympy.re),
    ComplexOp("imag", 1, torch.imag, sympy.im),
]
OPS: dict[str, ComplexOp] = {op.name: op for op in _OPS}


def part_names(name: str) -> tuple[str, str]:
    return f"{name}.re", f"{name}.im"


# ---------------------------------------------------------------- exact


def _expression(node: Node, env: dict[str, sympy.Expr]) -> sympy.Expr:
    if isinstance(node, Num):
        return sympy.Rational(node.value.numerator, node.value.denominator)
    if isinstance(node, Name):
        return env[node.id]
    if isinstance(node, Call) and node.op in OPS:
        op = OPS[node.op]
        if len(node.args) != op.arity:
            raise HarnessError(f"{node.op}() takes {op.arity} argument(s), got {len(node.args)}")
        return op.exact(*(_expression(a, env) for a in node.args))
    raise HarnessError(f"{getattr(node, 'op', node)!r} is not supported on complex inputs")


@dataclass(frozen=True)
class ComplexOutput:
    """The exact output as a complex expression, and its real and imaginary parts."""

    name: str
    value: sympy.Expr
    parts: tuple[sympy.Expr, sympy.Expr]
    symbols: dict[str, tuple[sympy.Symbol, sympy.Symbol]]  # input -> (re, im) symbols

    @property
    def is_real(self) -> bool:
        return self.parts[1] == 0


def build(name: str, tree: Node, inputs: list[str]) -> ComplexOutput:
    symbols = {x: tuple(sympy.Symbol(p, real=True) for p in part_names(x)) for x in inputs}
    env = {x: re + IMAG_UNIT * im for x, (re, im) in symbols.items()}
    value = _expression(tree, env)
    re, im = split(value)
    return ComplexOutput(name, value, (re, im), symbols)  # type: ignore[arg-type]


Parts = tuple[sympy.Expr, sympy.Expr]


def split(e: sympy.Expr) -> Parts:
    """(re e, im e) as real expressions of the real symbols; principal branches (as torch's)."""
    if e == IMAG_UNIT:
        return sympy.S.Zero, sympy.S.One
    if e.is_Symbol or e.is_Number or e.is_NumberSymbol:
        return e.as_real_imag() if e.is_Number else (e, sympy.S.Zero)
    if e.is_Add:
        parts = [split(a) for a in e.args]
        return sympy.Add(*(p[0] for p in parts)), sympy.Add(*(p[1] for p in parts))
    if e.is_Mul:
        re, im = split(e.args[0])
        for factor in e.args[1:]:
            c, d = split(factor)
            re, im = re * c - im * d, re * d + im * c
        return sympy.expand(re), sympy.expand(im)
    if e.is_Pow:
        (a, b), n = split(e.base), e.exp
        if n.is_Integer:
            power: Parts = (sympy.S.One, sympy.S.Zero)
            for _ in range(abs(int(n))):
                power = (power[0] * a - power[1] * b, power[0] * b + power[1] * a)
            if n < 0:  # 1/(c + i d) = (c - i d)/(c^2 + d^2)
                size = power[0] ** 2 + power[1] ** 2
                power = (power[0] / size, -power[1] / size)
            return sympy.expand(power[0]), sympy.expand(power[1])
        if b == 0 and a.is_nonnegative:
            return a**n, sympy.S.Zero
        r, theta = sympy.sqrt(a**2 + b**2), sympy.atan2(b, a)
        return r**n * sympy.cos(n * theta), r**n * sympy.sin(n * theta)
    if len(e.args) != 1 and not isinstance(e, sympy.atan2):
        raise HarnessError(f"cannot split {e} into real and imaginary parts")
    if isinstance(e, sympy.atan2):
        return e, sympy.S.Zero  # of real parts already
    a, b = split(e.args[0])
    table: dict[type, Callable[[], Parts]] = {
        sympy.exp: lambda: (sympy.exp(a) * sympy.cos(b), sympy.exp(a) * sympy.sin(b)),
        sympy.log: lambda: (sympy.log(sympy.sqrt(a**2 + b**2)), sympy.atan2(b, a)),
        sympy.sin: lambda: (sympy.sin(a) * sympy.cosh(b), sympy.cos(a) * sympy.sinh(b)),
        sympy.cos: lambda: (sympy.cos(a) * sympy.cosh(b), -sympy.sin(a) * sympy.sinh(b)),
        sympy.Abs: lambda: (sympy.sqrt(a**2 + b**2), sympy.S.Zero),
        sympy.conjugate: lambda: (a, -b),
        sympy.re: lambda: (a, sympy.S.Zero),
        sympy.im: lambda: (b, sympy.S.Zero),
        sympy.arg: lambda: (sympy.atan2(b, a), sympy.S.Zero),
    }
    if type(e) not in table:
        raise HarnessError(f"cannot split {e} into real and imaginary parts")
    if b == 0 and type(e) not in (sympy.log, sympy.arg):  # a real function of a real argument
        return (e.func(a), sympy.S.Zero) if type(e) is not sympy.conjugate else (a, sympy.S.Zero)
    return table[type(e)]()


def real_outputs(out: ComplexOutput, shapes: dict[str, tuple[int, ...]]) -> dict[str, SymbolicOutput]:
    """The real pipeline's outputs (elementwise over the parts x.re, x.im, ...): y.re and y.im, or y
    alone when it is real."""
    symbols = {s: s.name for pair in out.symbols.values() for s in pair}
    input_shapes = {name: shapes[name] for name in symbols.values()}
    shape = tuple(np.broadcast_shapes(*input_shapes.values())) if input_shapes else ()
    names = (out.name,) if out.is_real else part_names(out.name)
    return {n: SymbolicOutput(n, shape, True, input_shapes, symbols, (Term(e, e),))  # type: ignore[arg-type]
            for n, e in zip(names, out.parts)}


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
