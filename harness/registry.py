"""The checks: one entry per check, from which everything else about checks is derived.

An entry says what a case file may write (the check's name and options, with each option's JSON
Schema), which torch paths it compares and which of them torch.compile runs again, the derivative
order its default tolerance is for, whether fuzzing draws it, whether the HTML page plots it over
the input, and the function in `harness.checks` that runs it. The loader (harness.cases), the
shipped JSON Schema (a test holds `harness/schema/case.schema.json` to `check_schema()`), the
fuzzer (harness.strategies), the CLI's path table and the runner all read this table; nothing else
lists checks. Adding a check: an entry here, its function in harness.checks, a case, a README row.

No torch and no SymPy here: the loader and `harness ops --paths` import this without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.paths import COMPILED, FAMILIES, Path
from harness.replay import DEFAULTS, OPTIMIZERS

MAX_DERIVATIVE_ORDER = 8


@dataclass(frozen=True)
class Option:
    """An option a check takes in a case file, `{vjp: {v: random}}`, and its value's JSON Schema."""

    name: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Check:
    """One check: see the module's docstring."""

    name: str
    run: str  # the function of harness.checks that runs it: (Prepared, dtype index, CheckSpec) -> [Comparison]
    paths: tuple[Path, ...]
    order: int  # the derivative order of its default tolerance (`derivative`: its `order:` option)
    options: tuple[Option, ...] = ()  # beyond tolerance, xfail and paths, which every check takes
    compiled: tuple[str, ...] = ()  # the paths torch.compile runs again (checks._and_compiled)
    fuzz: frozenset[str] = frozenset()  # "real", "complex": the fuzzer draws it for these cases
    by_input: bool = False  # its values plotted over the input (no random vector in them): HTML page
    random: tuple[str, ...] = ()  # vector options that are random when not given (else ones)

    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in COMMON + self.options)

    def paths_at(self, order: int = 1) -> tuple[Path, ...]:
        """The eager paths, names filled in (`derivative` of this order: once is plain reverse mode)."""
        out = []
        for path in self.paths:
            families = path.families
            if self.name == "derivative" and order == 1 and "double-backward" in families:
                families = frozenset({"backward"})
            out.append(Path(path.name.format(order=order), families))
        return tuple(out)


def _p(name: str, *families: str) -> Path:
    assert set(families) <= set(FAMILIES), families
    return Path(name, frozenset(families))


_REF = "#/$defs/"
VECTOR = {"$ref": _REF + "vector"}
COMMON = (Option("tolerance", {"$ref": _REF + "tolerance"}), Option("xfail", {"$ref": _REF + "xfail"}),
          Option("paths", {"$ref": _REF + "paths"}))
_V, _TANGENT = Option("v", VECTOR), Option("tangent", VECTOR)
_GRAD2 = (_p("autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)", "double-backward"),
          _p("torch.func.jvp(torch.func.grad(v.y), w)", "torch.func", "forward-ad"))
_HYPER = {name: {"type": "boolean" if isinstance(value, bool) else "number"}
          for defaults in DEFAULTS.values() for name, value in defaults.items()}

CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("value", "check_value",
          (_p("forward", "forward"), _p("torch.func.vmap over the points", "torch.func", "vmap")), order=0,
          compiled=("forward",), fuzz=frozenset({"real", "complex"}), by_input=True),
    Check("grad", "check_grad",
          (_p("y.backward() -> .grad", "backward"), _p("autograd.grad(y, inputs)", "backward")), order=1,
          compiled=("y.backward() -> .grad", "autograd.grad(y, inputs)"), fuzz=frozenset({"real"}), by_input=True),
    Check("vjp", "check_vjp", (_p("y.backward(gradient=v)", "backward"),
                               _p("autograd.grad(y, inputs, grad_outputs=v)", "backward"),
                               _p("(y * v).sum().backward()", "backward"), _p("torch.func.vjp", "torch.func")),
          order=1, options=(_V,), random=("v",), fuzz=frozenset({"real", "complex"}),
          compiled=("y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)", "(y * v).sum().backward()")),
    Check("jvp", "check_jvp",
          (_p("torch.func.jvp", "torch.func", "forward-ad"), _p("forward_ad.make_dual", "forward-ad")), order=1,
          options=(_TANGENT,), random=("tangent",), fuzz=frozenset({"real"})),
    Check("jacobian", "check_jacobian", (_p("torch.func.jacrev", "torch.func"),
                                         _p("torch.func.jacfwd", "torch.func", "vmap", "forward-ad")),
          order=1, fuzz=frozenset({"real"})),
    Check("grad2", "check_grad2", _GRAD2, order=2, options=(_V, _TANGENT), fuzz=frozenset({"real"})),
    Check("hvp", "check_grad2", _GRAD2, order=2, options=(_V, _TANGENT)),
    Check("hessian", "check_hessian", (_p("torch.func.hessian(v.y)", "torch.func", "vmap", "forward-ad"),
                                       _p("autograd.grad per row (create_graph=True)", "double-backward")),
          order=2, options=(_V,), fuzz=frozenset({"real"})),
    Check("derivative", "check_derivative", (_p("autograd.grad {order} times (create_graph=True)", "double-backward"),
                                             _p("torch.func.grad nested {order} times", "torch.func")),
          order=1, by_input=True, options=(
              Option("order", {"type": "integer", "minimum": 1, "maximum": MAX_DERIVATIVE_ORDER,
                               "description": "derivative: the order n"}, required=True),
              Option("input", {"type": "string", "description": "derivative: one input (default: each input)"}))),
    Check("multi", "check_multi", (_p("autograd.grad([outputs], inputs)", "backward"),), order=1),
    Check("minimize", "check_minimize", (_p("optimizer.step()", "backward"),), order=1, options=(
        Option("optimizer", {"enum": list(OPTIMIZERS)}),
        Option("steps", {"type": "integer", "minimum": 1, "maximum": 10_000}),
        *(Option(name, schema) for name, schema in _HYPER.items()))),
    Check("wirtinger", "check_wirtinger", (_p("autograd.grad(y, z, v) with v = 1 and v = i", "backward"),),
          order=1, fuzz=frozenset({"complex"})),
)}


def fuzzed(kind: str) -> tuple[str, ...]:
    """The checks the fuzzer draws for real ("real") or complex ("complex") cases, in table order."""
    return tuple(name for name, c in CHECKS.items() if kind in c.fuzz)


def paths_of(kind: str, order: int = 1) -> tuple[Path, ...]:
    """The eager paths of a check, names filled in (`derivative` of this order)."""
    return CHECKS[kind].paths_at(order)


def lookup(kind: str, name: str, order: int = 1) -> Path:
    """The table's entry for a path a check runs (a compiled one carries the `compiled` family).
    A name not in the table is a bug in the checks, not user input: KeyError."""
    base, _, backend = name.partition(COMPILED)
    for path in paths_of(kind, order):
        if path.name == base:
            return Path(name, path.families | {"compiled"}) if backend else path
    raise KeyError(f"path {name!r} of check {kind!r} is not in harness.registry.CHECKS")


def known(term: str, kinds: list[tuple[str, int]]) -> bool:
    """Whether a term names a family or a path of one of these checks (kind, order), with or
    without the torch.compile suffix."""
    base, compiled, _ = term.partition(COMPILED)
    return (term in FAMILIES and not compiled) or any(base == p.name for kind, order in kinds
                                                      for p in paths_of(kind, order))


def all_names(kinds: list[tuple[str, int]]) -> list[str]:
    return list(dict.fromkeys(p.name for kind, order in kinds for p in paths_of(kind, order)))


def every_kind() -> list[tuple[str, int]]:
    """Every check with the orders its path names take: (kind, order) pairs."""
    return [(kind, 1) for kind in CHECKS] + [("derivative", n) for n in range(2, MAX_DERIVATIVE_ORDER + 1)]


def check_schema() -> dict[str, Any]:
    """The JSON Schema of one entry of `checks:`: a name, or a one-key mapping of a name to its
    options (each check's own, nothing else)."""
    one_of: list[dict[str, Any]] = []
    for c in CHECKS.values():
        options = {o.name: o.schema for o in COMMON + c.options}
        body: dict[str, Any] = {"type": "object", "properties": options, "additionalProperties": False}
        required = [o.name for o in c.options if o.required]
        if required:
            body["required"] = required
        else:
            body = {"oneOf": [body, {"type": "null"}]}
        one_of.append({"type": "object", "properties": {c.name: body}, "required": [c.name],
                       "additionalProperties": False})
    names = [c.name for c in CHECKS.values() if not any(o.required for o in c.options)]
    return {"oneOf": [{"enum": names}, *one_of]}


__all__ = ["CHECKS", "MAX_DERIVATIVE_ORDER", "Check", "Option", "all_names", "check_schema", "fuzzed", "known",
           "lookup", "paths_of"]


if __name__ == "__main__":  # python -m harness.registry: the "check" definition of case.schema.json
    import json

    print(json.dumps(check_schema(), indent=2))
