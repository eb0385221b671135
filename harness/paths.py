"""The torch paths each check runs, by the names the reports print, and how a run selects them.

One table (`PATHS`) names every path of every check with the families it belongs to, in the
spirit of gradcheck's `check_batched_grad`, `check_forward_ad` and `check_backward_ad`: a case,
a check, the CLI (`--paths`, `--skip-paths`) or the Python API select paths by name or by
family. The checks (harness.checks) run only the paths a selection keeps, and look every path
they run up here, so a name cannot drift from the table.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")  # torch.compile backends a case may name

FAMILIES: dict[str, str] = {
    "forward": "the plain forward call",
    "backward": "reverse mode on the tape: .backward() and torch.autograd.grad",
    "double-backward": "reverse over reverse: torch.autograd.grad with create_graph=True",
    "forward-ad": "forward mode: torch.func.jvp, forward_ad dual tensors, jacfwd, forward-over-reverse",
    "torch.func": "every torch.func transform (vmap, vjp, jvp, grad, jacrev, jacfwd, hessian)",
    "vmap": "batched over a new dimension: torch.func.vmap, and jacfwd and hessian, which vmap the function",
    "compiled": "a path run again through torch.compile",
}

COMPILED = " [torch.compile "  # the suffix a compiled path carries: "name [torch.compile BACKEND]"


@dataclass(frozen=True)
class Path:
    """One torch path: its name as reports print it ({order} filled in for `derivative`)."""

    name: str
    families: frozenset[str]


def _p(name: str, *families: str) -> Path:
    return Path(name, frozenset(families))


_GRAD2 = (_p("autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)", "double-backward"),
          _p("torch.func.jvp(torch.func.grad(v.y), w)", "torch.func", "forward-ad"))

PATHS: dict[str, tuple[Path, ...]] = {
    "value": (_p("forward", "forward"), _p("torch.func.vmap over the points", "torch.func", "vmap")),
    "grad": (_p("y.backward() -> .grad", "backward"), _p("autograd.grad(y, inputs)", "backward")),
    "vjp": (_p("y.backward(gradient=v)", "backward"), _p("autograd.grad(y, inputs, grad_outputs=v)", "backward"),
            _p("(y * v).sum().backward()", "backward"), _p("torch.func.vjp", "torch.func")),
    "jvp": (_p("torch.func.jvp", "torch.func", "forward-ad"), _p("forward_ad.make_dual", "forward-ad")),
    "jacobian": (_p("torch.func.jacrev", "torch.func"), _p("torch.func.jacfwd", "torch.func", "vmap", "forward-ad")),
    "grad2": _GRAD2,
    "hvp": _GRAD2,
    "hessian": (_p("torch.func.hessian(v.y)", "torch.func", "vmap", "forward-ad"),
                _p("autograd.grad per row (create_graph=True)", "double-backward")),
    "derivative": (_p("autograd.grad {order} times (create_graph=True)", "double-backward"),
                   _p("torch.func.grad nested {order} times", "torch.func")),
    "multi": (_p("autograd.grad([outputs], inputs)", "backward"),),
    "minimize": (_p("optimizer.step()", "backward"),),
    "wirtinger": (_p("autograd.grad(y, z, v) with v = 1 and v = i", "backward"),),
}

# the paths torch.compile runs again (forward and backward graphs; see checks._and_compiled)
COMPILABLE: dict[str, tuple[str, ...]] = {
    "value": ("forward",),
    "grad": ("y.backward() -> .grad", "autograd.grad(y, inputs)"),
    "vjp": ("y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)", "(y * v).sum().backward()"),
}


def paths_of(kind: str, order: int = 1) -> tuple[Path, ...]:
    """The eager paths of a check, names filled in (`derivative` of this order)."""
    out = []
    for path in PATHS[kind]:
        families = path.families
        if kind == "derivative" and order == 1 and "double-backward" in families:
            families = frozenset({"backward"})  # once is plain reverse mode
        out.append(Path(path.name.format(order=order), families))
    return tuple(out)


def lookup(kind: str, name: str, order: int = 1) -> Path:
    """The table's entry for a path a check runs (a compiled one carries the `compiled` family).
    A name not in the table is a bug in the checks, not user input: KeyError."""
    base, _, backend = name.partition(COMPILED)
    for path in paths_of(kind, order):
        if path.name == base:
            return Path(name, path.families | {"compiled"}) if backend else path
    raise KeyError(f"path {name!r} of check {kind!r} is not in harness.paths.PATHS")


@dataclass(frozen=True)
class Selection:
    """Which paths run: those matching `only` (all when empty) and none matching `skip`. A term is
    a path's name as printed (with or without the torch.compile suffix) or a family name."""

    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def keeps(self, path: Path) -> bool:
        return (not self.only or any(_matches(t, path) for t in self.only)) and not any(
            _matches(t, path) for t in self.skip)


def _matches(term: str, path: Path) -> bool:
    """A family, or the name as printed: with its torch.compile suffix only the compiled path (of
    that backend), without it both the eager and the compiled one."""
    t_base, t_compiled, t_backend = term.partition(COMPILED)
    p_base, p_compiled, p_backend = path.name.partition(COMPILED)
    if t_compiled:
        return bool(p_compiled) and t_base == p_base and p_backend in (t_backend, "?]")
    return term == p_base or term in path.families


def known(term: str, kinds: list[tuple[str, int]]) -> bool:
    """Whether a term names a family or a path of one of these checks (kind, order), with or
    without the torch.compile suffix."""
    base, compiled, _ = term.partition(COMPILED)
    return (term in FAMILIES and not compiled) or any(base == p.name for kind, order in kinds
                                                      for p in paths_of(kind, order))


def all_names(kinds: list[tuple[str, int]]) -> list[str]:
    return list(dict.fromkeys(p.name for kind, order in kinds for p in paths_of(kind, order)))


__all__ = ["FAMILIES", "PATHS", "Path", "Selection", "lookup", "paths_of"]
