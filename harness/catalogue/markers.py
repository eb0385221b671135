"""SymPy function classes the harness adds: catalogue ops as atomic functions, and kink markers.

Catalogue ops stay atomic in the exact tree (`softplus(x)`, not `log(1 + exp(x))`) so that their
derivatives are atomic too (`softplus'(x)`): torch computes each op's value and derivative in one
kernel, and the error model must treat them that way. The closed form lives in the catalogue and is
what the reference evaluates.

Kink markers stand where a derivative does not exist at one point (relu'(0)). Away from the kink
they are ordinary step or sign functions; at it, the reference flags the point as a kink and uses
torch's documented convention, which the marker carries as its last argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, ClassVar

import sympy

if TYPE_CHECKING:
    from harness.catalogue.spec import Op


def as_sympy(value: object) -> sympy.Basic:
    """A number or SymPy object as SymPy, exactly; text is refused (nothing here parses strings)."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise TypeError(f"not an exact number: {value!r}")
    if isinstance(value, int):
        return sympy.Integer(value)
    return sympy.Rational(value.numerator, value.denominator)


class OpFunction(sympy.Function):
    """A catalogue op (or one of its partial derivatives) as an atomic SymPy function.

    Arguments are the op's operands followed by its keyword values (exact numbers).
    """

    op: ClassVar[Op]
    orders: ClassVar[tuple[int, ...]]
    n_args: ClassVar[int]

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        index = argindex - 1
        if self.op.partials is not None and not any(self.orders):
            return self.op.partials(self.args, index)
        orders = list(self.orders) + [0] * (len(self.args) - len(self.orders))
        orders[index] += 1
        return op_function(self.op, tuple(orders))(*self.args)

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        args = ", ".join(printer._print(a) for a in self.args[: self.op.arity])
        return rf"\operatorname{{{_display_name(self.op, self.orders)}}}\left({args}\right)"


def _display_name(op: Op, orders: tuple[int, ...]) -> str:
    if not any(orders):
        return op.name
    if op.arity == 1:
        return op.name + "'" * orders[0] if orders[0] <= 3 else f"{op.name}^({orders[0]})"
    return f"{op.name}_d{''.join(str(o) for o in orders[: op.arity])}"


def op_function(op: Op, orders: tuple[int, ...] = ()) -> type[OpFunction]:
    """The SymPy class for `op`'s partial derivative of the given orders (none: the op itself)."""
    return _op_class(op, orders or (0,) * op.arity)


@cache
def _op_class(op: Op, orders: tuple[int, ...]) -> type[OpFunction]:
    """One class per (op, orders): equal expressions need the very same class."""
    name = _display_name(op, orders)
    count = op.arity + sum(1 for _, default in op.keywords if not isinstance(default, str))
    return type(name, (OpFunction,), {"op": op, "orders": orders, "nargs": count, "n_args": count})


MARKERS: dict[str, type[sympy.Function]] = {}  # the concrete marker classes by name, as they are defined


class Marker(sympy.Function):
    """A function class of the harness's own (not a catalogue op): defining one registers it in
    MARKERS, which is the cache's vocabulary and the ball evaluator's checklist
    (harness.balls.rules). A base that never stands in a tree says `abstract=True`."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            if cls.__name__ in MARKERS:
                raise TypeError(f"a second marker named {cls.__name__}")
            MARKERS[cls.__name__] = cls


class KinkFunction(Marker, abstract=True):
    """A derivative piece that is undefined at x = 0. Args: (x, torch's value there)."""

    nargs = 2

    @staticmethod
    def away(x_positive: bool) -> int:
        raise NotImplementedError


class kink_step(KinkFunction):
    """Heaviside step: 0 for x < 0, 1 for x > 0, torch's convention at 0."""

    @staticmethod
    def away(x_positive: bool) -> int:
        return 1 if x_positive else 0

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return kink_delta(self.args[0], 0) if argindex == 1 else sympy.S.Zero


class kink_sign(KinkFunction):
    """sign(x) for x != 0, torch's convention at 0."""

    @staticmethod
    def away(x_positive: bool) -> int:
        return 1 if x_positive else -1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 2 * kink_delta(self.args[0], 0) if argindex == 1 else sympy.S.Zero


class kink_delta(KinkFunction):
    """The derivative of a step: 0 for x != 0; at 0 torch's convention (0 for every op so far)."""

    @staticmethod
    def away(x_positive: bool) -> int:
        return 0

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return kink_delta(self.args[0], 0) if argindex == 1 else sympy.S.Zero


class select(Marker):
    """where(cond, a, b) with cond = `d > 0` (mode 0), `d >= 0` (mode 1) or `d == 0` (mode 2).

    Its derivative is the derivative of the chosen branch alone (the other branch is never
    multiplied by 0, so a branch that is undefined where it is not chosen stays harmless), plus a
    jump term that marks d = 0 as a kink when d depends on the variable.
    """

    nargs = 4

    def _eval_derivative(self, s: sympy.Symbol) -> sympy.Expr:
        d, a, b, mode = self.args
        branch = select(d, sympy.diff(a, s), sympy.diff(b, s), mode)
        dd = sympy.diff(d, s)
        return branch if dd == 0 else branch + jump(d, a - b) * dd


class jump(Marker):
    """0 wherever d != 0; at d = 0 a kink (torch returns 0 for the jump's derivative)."""

    nargs = 2

    def _eval_derivative(self, s: sympy.Symbol) -> sympy.Expr:
        d = self.args[0]
        dd = sympy.diff(d, s)
        return sympy.S.Zero if dd == 0 else jump(d, sympy.S.Zero) * dd


MODES = ("reverse", "forward")  # the derivative modes torch has, each with its own conventions


@dataclass(frozen=True)
class Convention:
    """torch's n-th derivative at an op's kinks, as a case pins it: at every kink of the op, or
    only at the kink `at`; in both derivative modes, or only in `mode` ('reverse' or 'forward')."""

    op: str
    order: int
    value: Fraction
    at: Fraction | None = None
    mode: str | None = None


@dataclass(frozen=True)
class Conventions:
    """What the reference uses at kinks: the case's pinned rules, and the derivative mode of the
    torch paths it is compared with (torch's conventions differ between modes: atan2 at 0)."""

    rules: tuple[Convention, ...] = ()
    mode: str = "reverse"

    def pinned(self, op: str, order: int, at: Fraction | None) -> Fraction | None:
        for rule in self.rules:
            if (rule.op == op and rule.order == order and rule.mode in (None, self.mode)
                    and (rule.at is None or rule.at == at)):
                return rule.value
        return None


class ratio(Marker):
    """num/den, and at den = 0 exactly a kink where torch returns 0 (norms and distances at 0).

    Only the first derivative is masked: its own derivative is the plain quotient rule.
    """

    nargs = 2

    def _eval_derivative(self, s: sympy.Symbol) -> sympy.Expr:
        # beyond first order torch's masked 0/0 becomes nan: plain quotients, undefined at den = 0
        num, den = self.args
        return sympy.diff(num, s) / den - num * sympy.diff(den, s) / den**2


class reverse_ratio(ratio):
    """A ratio whose 0/0 torch masks in reverse mode only; forward mode computes it: nan (atan2)."""


class no_grad(Marker):
    """A value torch computes without a gradient (the max shift inside softmax and logsumexp)."""

    nargs = 1

    def _eval_derivative(self, s: sympy.Symbol) -> sympy.Expr:
        return sympy.S.Zero


class erfc_neg(Marker):
    """erfc(-t), kept whole: SymPy rewrites erfc(-t) as 2 - erfc(t), which at t = -7071 (log_ndtr
    at x = -1e4) cancels every digit; Arb evaluates erfc(-t) directly."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        t = self.args[0]
        return 2 / sympy.sqrt(sympy.pi) * sympy.exp(-t**2)


class max_share(Marker):
    """d max(e_0, ...)/d e_i: 1 for the strict maximum, 0 below it, 1/k for k exact ties (a kink).

    Args: (i, e_0, e_1, ...). `sign` -1 makes it the share of the minimum.
    """

    def _eval_derivative(self, s: sympy.Symbol) -> sympy.Expr:
        return sympy.S.Zero


class min_share(max_share):
    """The share of the minimum (a subclass: test for it before max_share)."""


class amax_fn(Marker):
    """max(e_0, e_1, ...) with torch's even split of the gradient among ties."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return max_share(argindex - 1, *self.args)


class amin_fn(Marker):
    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return min_share(argindex - 1, *self.args)


class norm2(Marker):
    """The Euclidean norm of its arguments; its gradient at 0 is a kink where torch returns 0."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return ratio(self.args[argindex - 1], self)


class loggamma_abs(Marker):
    """log|Gamma(x)|: torch.lgamma (SymPy's loggamma is complex for negative x)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.polygamma(0, self.args[0])


class step_function(Marker, abstract=True):
    """floor, ceil, round-half-even: piecewise constant, derivative 0 away from the jumps."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero


class floor_fn(step_function):
    pass


class ceil_fn(step_function):
    pass


class round_fn(step_function):
    """Round half to even, as torch.round."""


class trunc_fn(step_function):
    pass
