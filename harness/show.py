"""`harness show`: a case's exact derivatives (pretty and LaTeX) and torch's values beside them."""

from __future__ import annotations

import sympy

from harness.cases import Case
from harness.numbers import FORMATS
from harness.reference import constant_value, fold
from harness.run import Options, check_case
from harness.symbolic import SymbolicOutput, build_output, closed

MAX_SHOWN = 6


def _lines(name: str, out: SymbolicOutput) -> list[str]:
    lines = []
    for k in range(min(out.size, MAX_SHOWN)):
        label = name if out.size == 1 or out.elementwise else f"{name}[{k}]"
        expr = out.term(k).expr
        lines += [f"{label} = {expr}", f"    = {sympy.simplify(closed(expr))}",
                  f"    LaTeX: {sympy.latex(closed(expr))}"]
        for s, d in out.gradient(k):
            lines.append(f"  d{label}/d{s} = {sympy.simplify(closed(d))}    [{d}]")
        for s, t, d in out.hessian(k):
            lines.append(f"  d2{label}/d{s}d{t} = {sympy.simplify(closed(d))}")
        if out.elementwise:
            break
    return lines


def show_case(case: Case) -> str:
    fmt = FORMATS[case.dtypes[0]]
    constants: dict = {}
    for name, tree in case.constants:
        constants[name] = constant_value(tree, fmt, constants)
    shapes = {i.name: i.shape for i in case.inputs}
    lines = [f"case {case.name} ({case.file}:{case.line})"]
    if case.doc:
        lines.append(f"  {case.doc}")
    for name, tree in case.outputs:
        lines += _lines(name, build_output(name, fold(tree, fmt, constants), shapes, {}))
    lines.append("")
    for result in check_case(case, Options(allow_targets=False)):
        lines.append(f"[{result.dtype}] {result.status}")
        for c in result.comparisons:
            w = c.worst
            shown = f"torch {w.torch!r}  exact {w.exact!r}  {w.ulps:.3g} ulps" if w else c.message
            lines.append(f"  {c.check} > {c.path} > {c.part}: {c.status}: {shown}")
    return "\n".join(lines)
