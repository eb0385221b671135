"""The op catalogue: every op's torch function, exact definition, domain and kinks.

Adding an op is one entry here plus cases. Each entry gives the op two meanings: `torch`, the real
torch function under test, and `exact`, its SymPy definition. `ulps` is the accuracy torch's kernel
is held to in the error model; `floor` is, for ops whose torch backward computes the derivative by
a formula that cancels (tanh' = 1 - y*y), the magnitude of the terms that cancel at each order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import sympy
import torch
import torch.nn.functional as F

from harness.functions import kink_sign, kink_step

Kind = Literal["arithmetic", "elementwise", "reduction", "linear"]


@dataclass(frozen=True)
class Kink:
    """A point where the derivative does not exist, and what torch returns there."""

    where: str
    convention: str


@dataclass(frozen=True, eq=False)
class Op:
    name: str
    torch: Callable[..., Any] = field(repr=False)
    exact: Callable[..., Any] = field(repr=False)
    domain: str
    kind: Kind = "elementwise"
    arity: int = 1
    kinks: tuple[Kink, ...] = ()
    partials: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr] | None = field(default=None, repr=False)
    ulps: float = 2.0
    floor: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr] | None = field(default=None, repr=False)
    keywords: tuple[tuple[str, Fraction], ...] = ()
    doc: str = ""

    def __hash__(self) -> int:
        return hash(self.name)


def _native(fn: Callable[..., sympy.Expr]) -> Callable[..., sympy.Expr]:
    return fn


def _sub(a: sympy.Expr, b: sympy.Expr, evaluate: bool = True) -> sympy.Expr:
    return sympy.Add(a, sympy.Mul(-1, b, evaluate=evaluate), evaluate=evaluate)


def _div(a: sympy.Expr, b: sympy.Expr, evaluate: bool = True) -> sympy.Expr:
    return sympy.Mul(a, sympy.Pow(b, -1, evaluate=evaluate), evaluate=evaluate)


def _softplus_torch(x: torch.Tensor, beta: float = 1, threshold: float = 20) -> torch.Tensor:
    return F.softplus(x, beta=beta, threshold=threshold)


def _reduce(name: str) -> Callable[..., torch.Tensor]:
    fn = getattr(torch, name)

    def call(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        return fn(x) if dim is None else fn(x, dim=dim)

    return call


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _tanh_floor(args: tuple[sympy.Expr, ...], order: int) -> sympy.Expr:
    # torch: tanh'(x) = 1 - y*y, and its derivative -2*y*(1 - y*y), from y = tanh(x)
    y = sympy.tanh(args[0])
    return 0 if order == 0 else (1 + y**2) * (2 * abs(y)) ** (order - 1)


def _sigmoid_floor(args: tuple[sympy.Expr, ...], order: int) -> sympy.Expr:
    # torch: sigmoid'(x) = y*(1 - y), and its derivative (1 - 2y)*y*(1 - y), from y = sigmoid(x)
    y = _sigmoid(args[0])
    return 0 if order == 0 else y * (1 + y) * (1 + 2 * y) ** (order - 1)


def _softplus_floor(args: tuple[sympy.Expr, ...], order: int) -> sympy.Expr:
    # torch rounds beta*x before exp (an error of u*|beta*x| in the argument), and computes the
    # second derivative as beta*s*(1 - s) from s = z/(z + 1), z = exp(beta*x)
    x, beta = args[0], args[1]
    s = _sigmoid(beta * x)
    t = 0 if beta == 1 else abs(beta * x)
    if order == 0:
        return s * t / beta
    if order == 1:
        return s * (1 - s) * t
    return beta ** (order - 1) * (s * (1 + s) * (1 + 2 * s) ** (order - 2) + s * t)


_X = "any real x"
RELU_KINK = Kink("x = 0", "derivative 0 (torch's threshold_backward passes the gradient only for x > 0)")
ABS_KINK = Kink("x = 0", "derivative 0 (torch uses sgn(0) = 0)")

CATALOGUE: tuple[Op, ...] = (
    # arithmetic: SymPy's own Add/Mul/Pow, so that sums in the tree stay sums in the error model
    Op("add", torch.add, lambda a, b, evaluate=True: sympy.Add(a, b, evaluate=evaluate), "all reals",
       kind="arithmetic", arity=2, ulps=0.5, doc="a + b"),
    Op("sub", torch.sub, _sub, "all reals", kind="arithmetic", arity=2, ulps=0.5, doc="a - b"),
    Op("mul", torch.mul, lambda a, b, evaluate=True: sympy.Mul(a, b, evaluate=evaluate), "all reals",
       kind="arithmetic", arity=2, ulps=0.5, doc="a * b"),
    Op("div", torch.div, _div, "b != 0", kind="arithmetic", arity=2, ulps=0.5, doc="a / b"),
    Op("neg", torch.neg, lambda a, evaluate=True: sympy.Mul(-1, a, evaluate=evaluate), "all reals",
       kind="arithmetic", ulps=0.0, doc="-a"),
    Op("pow", torch.pow, lambda a, b, evaluate=True: sympy.Pow(a, b, evaluate=evaluate),
       "a > 0, or an integer b (a != 0 for b < 0); the derivative at a = 0 needs b >= 1",
       kind="arithmetic", arity=2, ulps=1.0, doc="a ** b, pow(a, b)"),
    # elementwise functions: atomic in the exact tree, closed form here
    Op("exp", torch.exp, sympy.exp, _X),
    Op("log", torch.log, sympy.log, "x > 0 (log(0) = -inf in torch)"),
    Op("sqrt", torch.sqrt, sympy.sqrt, "x >= 0 (the derivative needs x > 0)", ulps=0.5),
    Op("sin", torch.sin, sympy.sin, _X),
    Op("cos", torch.cos, sympy.cos, _X),
    Op("tan", torch.tan, sympy.tan, "x != pi/2 + k*pi"),
    Op("tanh", torch.tanh, sympy.tanh, _X, floor=_tanh_floor),
    Op("sigmoid", torch.sigmoid, lambda x: 1 / (1 + sympy.exp(-x)), _X, floor=_sigmoid_floor,
       doc="1/(1 + exp(-x))"),
    Op("softplus", _softplus_torch, lambda x, beta, threshold: sympy.log(1 + sympy.exp(beta * x)) / beta,
       _X, floor=_softplus_floor, keywords=(("beta", Fraction(1)), ("threshold", Fraction(20))),
       doc="log(1 + exp(beta*x))/beta; torch returns x itself where beta*x > threshold"),
    Op("relu", torch.relu, lambda x: sympy.Max(0, x), _X, kinks=(RELU_KINK,),
       partials=lambda args, i: kink_step(args[0], 0), ulps=0.0, doc="max(0, x)"),
    Op("abs", torch.abs, sympy.Abs, _X, kinks=(ABS_KINK,),
       partials=lambda args, i: kink_sign(args[0], 0), ulps=0.0, doc="|x|"),
    # reductions and linear algebra: built on element arrays
    Op("sum", _reduce("sum"), lambda a: a, "all reals", kind="reduction", ulps=0.5,
       keywords=(("dim", Fraction(-(2**31))),), doc="sum of the elements (dim= one axis)"),
    Op("mean", _reduce("mean"), lambda a: a, "all reals", kind="reduction", ulps=0.5,
       keywords=(("dim", Fraction(-(2**31))),), doc="mean of the elements (dim= one axis)"),
    Op("matmul", torch.matmul, lambda a, b: a, "all reals", kind="linear", arity=2, ulps=0.5,
       doc="a @ b, matrix product"),
)

NO_DIM = Fraction(-(2**31))  # the `dim` keyword's default: reduce over every element

OPS: dict[str, Op] = {op.name: op for op in CATALOGUE}
ELEMENTWISE: set[str] = {op.name for op in CATALOGUE if op.kind in ("arithmetic", "elementwise")}


def keyword_values(op: Op, given: tuple[tuple[str, Fraction], ...]) -> tuple[Fraction, ...]:
    """The op's keyword values in declaration order, defaults filled in; raises on unknown ones."""
    from harness.errors import HarnessError
    from harness.expr import did_you_mean

    allowed = dict(op.keywords)
    values = dict(allowed)
    for name, value in given:
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise HarnessError(f"{op.name}() has no keyword {name!r}{did_you_mean(name, list(allowed))}"
                               f" (keywords: {known})")
        values[name] = value
    return tuple(values[name] for name, _ in op.keywords)
