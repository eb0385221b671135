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

from functools import cache
from typing import TYPE_CHECKING, ClassVar

import sympy

if TYPE_CHECKING:
    from harness.ops import Op


class OpFunction(sympy.Function):
    """A catalogue op (or one of its partial derivatives) as an atomic SymPy function.

    Arguments are the op's operands followed by its keyword values (exact numbers).
    """

    op: ClassVar[Op]
    orders: ClassVar[tuple[int, ...]]

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


@cache
def op_function(op: Op, orders: tuple[int, ...] = ()) -> type[OpFunction]:
    """The SymPy class for `op`'s partial derivative of the given orders (none: the op itself)."""
    orders = orders or (0,) * op.arity
    name = _display_name(op, orders)
    return type(name, (OpFunction,), {"op": op, "orders": orders, "nargs": op.arity + len(op.keywords)})


@cache
def closed_body(cls: type[OpFunction]) -> tuple[tuple[sympy.Symbol, ...], sympy.Expr]:
    """The catalogue's closed form of an atomic op (or its partial derivative), over symbols a0, a1..."""
    syms = sympy.symbols(f"a0:{cls.op.arity + len(cls.op.keywords)}", real=True)
    body = cls.op.exact(*syms)
    for i, order in enumerate(cls.orders):
        if order:
            body = sympy.diff(body, syms[i], order)
    return syms, body


class KinkFunction(sympy.Function):
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
