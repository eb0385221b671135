"""What a catalogue entry is: an op's torch function (by name), its exact definition, domain,
kinks, accuracy and critical points. The entries are in harness.catalogue.elementwise and
harness.catalogue.structural; harness.catalogue holds the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar

import sympy

from harness.catalogue.markers import as_sympy, op_function, select
from harness.errors import HarnessError
from harness.numbers import FloatFormat


@dataclass(frozen=True)
class Kink:
    """A point where a derivative does not exist, and what torch returns there.

    `at(*keywords)` gives the point (for one-input ops); `lattice` repeats it at every integer
    offset; `orders[n]` is torch's n-th derivative there when the closed form's branch is not it.
    """

    where: str
    convention: str
    at: Callable[..., sympy.Expr] | None = None
    lattice: bool = False
    orders: tuple[tuple[int, sympy.Expr], ...] = ()

    def override(self, order: int) -> sympy.Expr | None:
        for n, value in self.orders:
            if n == order or (n < 0 and order >= -n):  # -2: every order from 2 on
                return value
        return None


Adapter = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class TorchRef:
    """The torch function under test, by its public name under `torch` ("special.i0e",
    "nn.functional.silu"), and how the harness calls it (`adapt` wraps the function: keywords passed
    only when given, a reduction's optional dim). Naming it rather than holding it keeps torch out of
    the catalogue's import: `harness ops` and the loader never import torch; `function()` does, once."""

    name: str
    adapt: Adapter | None = field(default=None, compare=False)

    def function(self) -> Callable[..., Any]:
        target: Any = import_module("torch")
        for part in self.name.split("."):
            target = getattr(target, part)
        return self.adapt(target) if self.adapt is not None else target


@dataclass(frozen=True, eq=False)
class Op:
    """A catalogue entry. Each kind of op is its own type (`Arithmetic`, `Elementwise`, `Where`,
    `Predicate`, `Structural`) with one calling convention, `apply(operands, keywords, evaluate)`:
    the op's node in the exact tree over the operands (SymPy expressions; for structural ops, arrays
    of them) and its numeric keyword values, in order. `definition(*arguments)` is its closed form
    in SymPy's own functions over scalar operands then keyword values (what the reference evaluates
    for an atomic op, and what `harness ops` prints); `exact` is the entry's own builder of it."""

    kind: ClassVar[str]  # the name `harness ops` and the docs use for the type
    name: str
    ref: TorchRef = field(repr=False)
    exact: Callable[..., Any] = field(repr=False)
    domain: str
    arity: int = 1
    kinks: tuple[Kink, ...] = ()
    partials: Callable[[tuple[sympy.Expr, ...], int], sympy.Expr] | None = field(default=None, repr=False)
    ulps: float | tuple[float, float] = 2.0  # one number, or (float32, float64)
    keywords: tuple[tuple[str, Any], ...] = ()
    leading: tuple[str, ...] = ()  # literal positional arguments before the tensors: polygamma(n, x)
    doc: str = ""
    outside: str = "nan or +-inf"
    # where torch is most likely wrong, by format: overflow and underflow thresholds of the value
    # and its derivatives, where a result rounds to its asymptote (sigmoid to 1), kernel branch
    # switches; sampled inputs get these (and fixed kinks) by default (harness.prepare, `edges:`)
    critical: Callable[[FloatFormat], tuple[float, ...]] = field(default=lambda fmt: (), repr=False)

    @functools.cached_property
    def torch(self) -> Callable[..., Any]:
        """The torch function itself (torch is imported at the first use of any op's)."""
        return self.ref.function()

    def accuracy(self, precision: int) -> float:
        """The ulps torch's kernel is held to, in the format of this precision."""
        if isinstance(self.ulps, tuple):
            return self.ulps[0] if precision <= 24 else self.ulps[1]
        return self.ulps

    def __hash__(self) -> int:
        return hash(self.name)

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        raise NotImplementedError

    def definition(self, *arguments: sympy.Expr) -> sympy.Expr:
        return self.exact(*arguments)


@dataclass(frozen=True, eq=False)
class Arithmetic(Op):
    """+, -, *, /, unary minus and **: SymPy's own arithmetic, built with or without evaluation."""

    kind: ClassVar[str] = "arithmetic"

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        return self.exact(*operands, evaluate=evaluate)

    def definition(self, *arguments: sympy.Expr) -> sympy.Expr:
        # unevaluated all the way down: SymPy 1.14's Add(2, Pow(1/10, 2, evaluate=False)) loops
        # forever inside evaluate(False), eating memory (2 + square(0.1), found by drawing cases)
        return self.exact(*arguments, evaluate=False)


@dataclass(frozen=True, eq=False)
class Elementwise(Op):
    """A function of scalars applied element by element; atomic in the exact tree (`softplus(x)`,
    harness.catalogue.markers), `exact` its closed form over operands then keyword values."""

    kind: ClassVar[str] = "elementwise"

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        return op_function(self)(*operands, *(as_sympy(k) for k in keywords), evaluate=evaluate)


@dataclass(frozen=True)
class Condition:
    """The condition of a `where`: a comparison of two expressions."""

    predicate: Predicate
    left: Any
    right: Any


# a comparison's SymPy selection mode (harness.catalogue.markers.select), whether it compares
# right - left, and whether it picks its branches the other way round
_COMPARISONS = {"gt": (0, False, False), "lt": (0, True, False), "ge": (1, False, False),
                "le": (1, True, False), "eq": (2, False, False), "ne": (2, False, True)}


@dataclass(frozen=True, eq=False)
class Predicate(Op):
    """A comparison: only the condition of a `where` (it has no value of its own in the exact tree)."""

    kind: ClassVar[str] = "predicate"

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        raise HarnessError(f"a comparison ({self.doc}) is only allowed as the condition of where(...)")

    def definition(self, *arguments: sympy.Expr) -> sympy.Expr:
        raise TypeError(f"{self.name} is a comparison, with no closed form of its own")

    def choose(self, left: Any, right: Any, a: Any, b: Any, evaluate: bool) -> sympy.Expr:
        """a where the comparison holds, else b, as the harness's `select` marker."""
        mode, flip, swap = _COMPARISONS[self.name]
        first, second = (right, left) if flip else (left, right)
        d = sympy.Add(first, sympy.Mul(-1, second, evaluate=evaluate), evaluate=evaluate)
        return select(d, b, a, mode) if swap else select(d, a, b, mode)


@dataclass(frozen=True, eq=False)
class Where(Elementwise):
    """where(condition, a, b): its first operand is a `Condition`, not a value."""

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        condition, a, b = operands
        if not isinstance(condition, Condition):
            raise HarnessError("where(...) needs a comparison as its condition, as where(x > 0, a, b)")
        return condition.predicate.choose(condition.left, condition.right, a, b, evaluate)

    def definition(self, *arguments: sympy.Expr) -> sympy.Expr:
        raise TypeError("where has no closed form of its own: its condition is a comparison")


@dataclass(frozen=True, eq=False)
class Structural(Op):
    """An op over whole tensors (reductions, products, shapes): `exact(operands, keywords,
    evaluate)` builds the output's array of expressions from the operands' arrays."""

    kind: ClassVar[str] = "structural"

    def apply(self, operands: Sequence[Any], keywords: Sequence[Any] = (), evaluate: bool = True) -> Any:
        return self.exact(list(operands), tuple(keywords), evaluate)

    def definition(self, *arguments: sympy.Expr) -> sympy.Expr:
        raise TypeError(f"{self.name} works on whole tensors, with no closed form over scalars")



def T(name: str, adapt: Adapter | None = None) -> TorchRef:  # noqa: N802 (reads as the torch it names)
    return TorchRef(name, adapt)


def kw(name: str, *names: str) -> TorchRef:
    """A torch function called with the catalogue's keywords (None: leave torch's default)."""

    def adapt(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **keywords: Any) -> Any:
            return fn(*args, **{k: v for k, v in keywords.items() if k in names and v is not None})

        return call

    return TorchRef(name, adapt)


def kw_with(name: str, adapt: Adapter, *names: str) -> TorchRef:
    """As kw, for a function the harness calls through its own adapter first."""
    inner = kw(name, *names).adapt
    assert inner is not None
    return TorchRef(name, lambda fn: inner(adapt(fn)))
