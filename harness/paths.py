"""Torch paths, their families, and how a run selects them.

Every check's paths, by the names the reports print, are in its entry of harness.registry, each
with the families it belongs to, in the spirit of gradcheck's `check_batched_grad`,
`check_forward_ad` and `check_backward_ad`: a case, a check, the CLI (`--paths`, `--skip-paths`)
or the Python API select paths by name or by family (`Selection`). The checks (harness.checks)
run only the paths a selection keeps, and look every path they run up in the registry, so a name
cannot drift from the table.
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


__all__ = ["COMPILED", "COMPILE_BACKENDS", "FAMILIES", "Path", "Selection"]
