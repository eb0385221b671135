"""`harness show`: a case's exact derivatives (pretty and LaTeX) and torch's values beside them."""

from __future__ import annotations

import sympy

from harness import complex as cx
from harness.cases import Case
from harness.errors import CaseTimeout, HarnessError
from harness.limits import time_limit
from harness.prepare import Options, Prepared, prepare
from harness.results import CaseResult
from harness.run import check_case, runs
from harness.symbolic import SymbolicOutput, closed

MAX_SHOWN = 6
SIMPLIFY_SECONDS = 5.0


def _simplified(expr: sympy.Expr) -> sympy.Expr | str:
    """sympy.simplify, given SIMPLIFY_SECONDS: it has no bound of its own (minutes on a large
    derivative); past them the expression is shown as it is."""
    try:
        with time_limit(SIMPLIFY_SECONDS):
            return sympy.simplify(expr)
    except CaseTimeout:
        return f"{expr}  (not simplified: over {SIMPLIFY_SECONDS:g} s)"


def _lines(name: str, out: SymbolicOutput) -> list[str]:
    lines = []
    for k in range(min(out.size, MAX_SHOWN)):
        label = name if out.size == 1 or out.elementwise else f"{name}[{k}]"
        expr = out.term(k).expr
        lines.append(f"{label} = {expr}")  # as the run compares it: the catalogue's ops atomic
        written = _simplified(closed(expr))
        if str(written) != str(expr):
            lines.append(f"    = {written}    (the ops' closed forms, simplified)")
        lines.append(f"    LaTeX: {sympy.latex(closed(expr))}")
        for s, d in out.gradient(k):
            shown = _simplified(closed(d))
            atomic = f"    [as the ops' derivatives: {d}]" if str(d) != str(shown) else ""
            lines.append(f"  d{label}/d{s} = {shown}{atomic}")
        for s, t, d in out.hessian(k):
            by = f"d{s}2" if s == t else f"d{s}d{t}"
            lines.append(f"  d2{label}/{by} = {_simplified(closed(d))}")
        if out.elementwise:
            break
    return lines


def show_case(case: Case, options: Options = Options()) -> str:
    return show(case, options)[0]


def show(case: Case, options: Options = Options()) -> tuple[str, tuple[str, ...]]:
    """The text `harness show` prints for a case, and the statuses of its results (per dtype)."""
    results = check_case(case, options)
    statuses = tuple(r.status for r in results)
    try:  # the exact side as the run built it, in the case's first dtype
        dtype, device = runs(case, options)[0]
        with time_limit(options.timeout):
            ctx = prepare(case, dtype, options, device)
        if ctx.complex_outputs is not None:
            return _show_complex(case, ctx, results), statuses
        return _show_real(case, ctx, results), statuses
    except HarnessError as exc:  # no exact side to show (a shape, a constant): why, and the results
        where = case.line_of("expr", "outputs")
        header = [f"case {case.name} ({case.file}:{case.line})", f"  {exc.at(case.file, where)}"]
        return "\n".join(header + _results(results)), statuses


def _show_real(case: Case, ctx: Prepared, results: list[CaseResult]) -> str:
    lines = [f"case {case.name} ({case.file}:{case.line})"]
    if case.doc:
        lines.append(f"  {case.doc}")
    lines += _traced(ctx)
    for name, out in ctx.outputs.items():
        lines += _lines(name, out)
    return "\n".join(lines + _results(results))


def _traced(ctx: Prepared) -> list[str]:
    """Where a target's exact side came from, and its traced forward in the case-file syntax (to
    copy into `expr:` or `outputs:`)."""
    if ctx.case.target is None:
        return []
    lines = [f"  exact side: {ctx.exact_side}"]
    if ctx.traced is None:
        return lines + ([f"  {ctx.untraced}"] if ctx.untraced else [])
    text = ctx.traced.text()
    if len(text) == 1:
        return lines + [f"  traced forward, as a case's expr: {next(iter(text.values()))}"]
    return lines + ["  traced forward, as a case's outputs:"] + [f"    {name}: {t}" for name, t in text.items()]


def _show_complex(case: Case, ctx: Prepared, results: list[CaseResult]) -> str:
    """A complex case: each output, its real and imaginary parts, Wirtinger derivatives, holomorphy."""
    lines = [f"case {case.name} ({case.file}:{case.line})"] + ([f"  {case.doc}"] if case.doc else [])
    inputs = [spec.name for spec in case.inputs]
    assert ctx.complex_outputs is not None
    for name, out in ctx.complex_outputs.items():
        lines += [f"{name} = {out.value}", f"  re = {out.parts[0]}", f"  im = {out.parts[1]}"]
        for x in inputs:
            dz, dzbar = cx.wirtinger(out, x)
            lines += [f"  d{name}/d{x} = {_simplified(dz)}", f"  d{name}/d{x}-bar = {_simplified(dzbar)}"]
        lines.append(f"  {cx.holomorphy(out)}")
    return "\n".join(lines + _results(results))


def _results(results: list[CaseResult]) -> list[str]:
    lines = [""]
    for result in results:
        lines.append(f"[{result.dtype}] {result.status}")
        if result.status == "error" and not result.comparisons:
            lines.append(f"  {result.message}")
        for c in result.comparisons:
            w = c.worst
            if w is not None:
                lines.append(f"  {c.check} > {c.path} > {c.part}: {c.status}: torch {w.torch!r}  exact {w.exact!r}"
                             f"  {w.ulps:.3g} ulps")
            else:  # no element compared: the message says why (unsupported, error)
                why = c.message.partition(f"{c.path}: ")[2] or c.message
                lines.append(f"  {c.check} > {c.path}: {why}")
    return lines
