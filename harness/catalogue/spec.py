"""What a catalogue entry is: an op's torch function (by name), its exact definition, domain,
kinks, accuracy and critical points. The entries are in harness.catalogue.elementwise and
harness.catalogue.structural; harness.catalogue holds the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal

import sympy

from harness.numbers import FloatFormat

Kind = Literal["arithmetic", "elementwise", "structural", "predicate"]


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
    name: str
    ref: TorchRef = field(repr=False)
    exact: Callable[..., Any] = field(repr=False)
    domain: str
    kind: Kind = "elementwise"
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
