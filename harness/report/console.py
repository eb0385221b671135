"""The console report: a rich table of cases, the failures in full, then the plain summary line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report import details_line, summary_line, unsupported_by_reason, where
from harness.results import CaseResult, Comparison

STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "kink": "yellow", "undefined": "cyan",
         "unsupported": "blue", "xfail": "magenta", "xpass": "magenta"}


def _worst(result: CaseResult) -> Comparison | None:
    ranked = sorted(result.comparisons, key=lambda c: (c.status not in ("fail", "error"), -(c.max_ulps or 0)))
    return ranked[0] if ranked else None


def table(results: Sequence[CaseResult]) -> Table:
    t = Table(title="symbolic vs autodiff", show_lines=False)
    escape_row = True  # case names are user text: never rich markup
    for column in ("case", "dtype", "status", "worst check", "max ulps", "torch", "exact"):
        t.add_column(column, overflow="fold")
    for r in results:
        w = _worst(r)
        worst = w.worst if w is not None else None
        t.add_row(escape(r.name) if escape_row else r.name, where(r), f"[{STYLE.get(r.status, '')}]{r.status}[/]",
                  f"{w.check} > {w.part}" if w else "",
                  f"{w.max_ulps:.3g}" if w else "",
                  repr(worst.torch) if worst else "", repr(worst.exact) if worst else "")
    return t


def print_report(results: Sequence[CaseResult], console: Console, verbose: bool = False) -> None:
    console.print(table(results))
    if verbose:
        console.print(comparisons_table(results))
    for r in results:
        if r.status in ("fail", "error") or (verbose and r.message):
            console.print(f"[{STYLE.get(r.status, '')}]{r.status.upper()}[/] {escape(r.message)}", markup=True,
                          highlight=False, soft_wrap=True)
            for c in r.comparisons:
                if c.status in ("fail", "error") and c.message != r.message:
                    console.print(f"  {c.message}", highlight=False, markup=False, soft_wrap=True)
        if verbose:
            for reason, names in unsupported_by_reason(r).items():
                console.print(f"UNSUPPORTED {r.name} [{where(r)}]: {', '.join(names)}: {reason}", highlight=False,
                              markup=False, soft_wrap=True)
    if not verbose:
        for reason, (names, cases) in _unsupported_overall(results).items():
            console.print(f"UNSUPPORTED in {len(cases)} case{'s' * (len(cases) > 1)}: {', '.join(names)}: {reason}",
                          highlight=False, markup=False, soft_wrap=True)
    console.print(summary_line(results), highlight=False, markup=False)
    console.print(details_line(results), highlight=False, markup=False)


def _unsupported_overall(results: Sequence[CaseResult]) -> dict[str, tuple[list[str], list[str]]]:
    """reason -> (the 'check > path' names, the cases): one line each, however many cases share it."""
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for r in results:
        for reason, names in unsupported_by_reason(r).items():
            paths, cases = grouped.setdefault(reason, ([], []))
            paths += [n for n in names if n not in paths]
            if r.name not in cases:
                cases.append(r.name)
    return grouped


def _values(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:.9g}" for v in values) + "]" if len(values) > 1 else (
        f"{values[0]!r}" if values else "")


def comparisons_table(results: Sequence[CaseResult]) -> Table:
    """Every torch path of every case, torch's values beside the exact ones."""
    t = Table(title="every path: torch beside exact")
    for column in ("case", "check > path > part", "status", "ulps", "torch", "exact"):
        t.add_column(column, overflow="fold")
    for r in results:
        for c in r.comparisons:
            torch_text = _values(c.torch_values) or (repr(c.worst.torch) if c.worst else "")
            exact_text = _values(c.exact_values) or (repr(c.worst.exact) if c.worst else "")
            t.add_row(escape(f"{r.name} [{r.dtype}]"), escape(f"{c.check} > {c.path} > {c.part}"),
                      f"[{STYLE.get(c.status, '')}]{c.status}[/]", f"{c.max_ulps:.3g}", torch_text, exact_text)
    return t
