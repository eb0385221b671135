"""The op catalogue: every op's torch function, exact definition, domain and kinks.

The package, bottom up (no module imports one above it):
- `markers`: the SymPy function classes the harness adds (catalogue ops as atomic functions,
  kink markers, `select` for `where`, structural helpers) and torch's derivative conventions;
- `spec`: what an entry is: `Op`, one type per kind of op (`Arithmetic`, `Elementwise`, `Where`,
  `Predicate`, `Structural`) with one calling convention, `apply(operands, keywords, evaluate)`
  for its node in the exact tree and `definition(*arguments)` for its closed form; `Kink`;
  `TorchRef`, the torch function by name, so that nothing here imports torch;
- `elementwise` and `structural`: the entries (structural ones with their exact builders);
- this module: the registry (`OPS`, `CATALOGUE`) and how a call in an expression resolves to an
  entry. harness.cache sits above it and fingerprints the whole package.

Each entry gives the op two meanings: `torch`, the real torch function under test, and `exact`,
its SymPy definition (closed form; `Piecewise` for piecewise ops, whose derivatives are taken
branch by branch). A `Kink` names a point where a derivative does not exist and what torch returns
there; `at` locates it for the reference, which then flags the point and uses torch's
convention: the closed form's branch, unless `orders` gives another value for that derivative
order. `ulps` is the accuracy torch's kernel is held to in the error model, for the value and for
each derivative order; on top of it an op is allowed what its conditioning makes unavoidable
(harness.balls), and nothing for how its kernel forms the result (tanh' = 1 - y*y losing
everything at x = 20 is a finding, not a rounding).

Adding an elementwise op whose exact definition uses SymPy functions the harness already knows:
one entry in `elementwise` (a test, tests/test_recipes.py, does this with a made-up op), a case
under cases/, and the README's catalogue line. A SymPy function the ball evaluator does not know
yet also needs its rule in harness.balls.
"""
from __future__ import annotations

from typing import Any

from harness.catalogue.elementwise import ARITHMETIC, INF, PIECEWISE, PREDICATES, SMOOTH
from harness.catalogue.spec import (
    Arithmetic,
    Condition,
    Elementwise,
    Kink,
    Op,
    Predicate,
    Structural,
    TorchRef,
    Where,
)
from harness.catalogue.structural import STRUCTURAL
from harness.errors import HarnessError
from harness.expr import Call, Num, did_you_mean

__all__ = ["Arithmetic", "Condition", "Elementwise", "Kink", "Op", "Predicate", "Structural", "TorchRef", "Where",
           "CATALOGUE", "OPS", "ELEMENTWISE", "resolve", "numeric_keywords", "lead_to_keywords", "torch_api"]

CATALOGUE: tuple[Op, ...] = ARITHMETIC + SMOOTH + PIECEWISE + PREDICATES + STRUCTURAL

OPS: dict[str, Op] = {op.name: op for op in CATALOGUE}
ELEMENTWISE: set[str] = {op.name for op in CATALOGUE if not isinstance(op, Structural)}
VARIANTS = {("gelu", "approximate", "tanh"): "gelu_tanh", ("gelu", "approximate", "none"): "gelu"}


def resolve(name: str, given: tuple[tuple[str, Any], ...]) -> tuple[Op, tuple[Any, ...]]:
    """The op a call means (string keywords pick a variant) and its keyword values, in order."""
    op = OPS[name]
    for key, value in given:
        if isinstance(value, str) and value != "inf":
            if (name, key, value) not in VARIANTS:
                choices = sorted(v for n, k, v in VARIANTS if n == name and k == key)
                raise HarnessError(f"{name}() has no {key}={value!r}" + (f" (one of {choices})" if choices else ""))
            op = OPS[VARIANTS[(name, key, value)]]
    allowed = dict(op.keywords)
    values = dict(allowed)
    for key, value in given:
        if isinstance(value, str) and value != "inf":
            continue
        if value == "inf":
            value = INF
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise HarnessError(f"{name}() has no keyword {key!r}{did_you_mean(key, list(allowed))} (keywords: {known})")
        values[key] = value
    return op, tuple(values[key] for key, _ in op.keywords if not isinstance(values[key], str))


def numeric_keywords(op: Op) -> tuple[str, ...]:
    """The names of the op's numeric keywords (the ones that reach the exact side)."""
    return tuple(name for name, default in op.keywords if not isinstance(default, str))


MAX_LEADING = 1_000  # polygamma's order: n! and a Hurwitz zeta of order n + 1 stay cheap below it


def lead_to_keywords(node: Any) -> Any:
    """polygamma(1, x) -> polygamma(x, n=1): literal leading arguments become keywords."""
    op = OPS.get(node.op)
    if op is None or not op.leading:
        return node
    lead, rest = node.args[: len(op.leading)], node.args[len(op.leading):]
    if len(lead) < len(op.leading) or not all(isinstance(a, Num) and a.value.denominator == 1 for a in lead):
        raise HarnessError(f"{op.name}() takes {', '.join(op.leading)} first, as whole-number literals")
    if not all(0 <= a.value <= MAX_LEADING for a in lead):
        raise HarnessError(f"{op.name}() takes {', '.join(op.leading)} from 0 to {MAX_LEADING}")
    return Call(node.op, rest, node.keywords + tuple(zip(op.leading, (a.value for a in lead))))


_API = {"add": "torch.add (a + b)", "sub": "torch.sub (a - b)", "mul": "torch.mul (a * b)", "div": "torch.div (a / b)",
        "neg": "torch.neg (-a)", "pow": "torch.pow (a ** b)", "matmul": "torch.matmul (a @ b)",
        "gelu_tanh": "torch.nn.functional.gelu(approximate='tanh')", "where": "torch.where",
        "gt": "torch.gt (a > b)", "ge": "torch.ge (a >= b)", "lt": "torch.lt (a < b)", "le": "torch.le (a <= b)",
        "eq": "torch.eq (a == b)", "ne": "torch.ne (a != b)"}


def torch_api(op: Op) -> str:
    """The torch function an op runs, by its public name."""
    return _API.get(op.name, f"torch.{op.ref.name}")


__all__ = ["CATALOGUE", "ELEMENTWISE", "INF", "MAX_LEADING", "OPS", "VARIANTS", "Kink", "Op", "TorchRef",
           "lead_to_keywords", "numeric_keywords", "resolve", "torch_api"]
