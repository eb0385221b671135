"""The console report: a rich table of cases on a terminal, one plain line per case and dtype
anywhere else (pipes, CI logs: never wrapped, every line grep-able), then the failures in full and
the headline (`N passed, N failed, N errors`, then the other statuses and the total).

User strings reach rich only as `Text` of `visible(...)`: never markup nor emoji codes, no escape
sequence, carriage return or bidi override reaches the terminal, and every message is one line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.report import details_line, summary_line, ulps_of_allowed, unsupported_by_reason, where, worst_comparison
from harness.report.text import visible
from harness.results import CaseResult, Comparison, Status

STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "kink": "yellow", "undefined": "cyan",
         "unsupported": "blue", "xfail": "magenta", "xpass": "magenta"}


def result_line(r: CaseResult) -> str:
    """One case in one dtype on one line: status, case, where, its worst element, and why when not
    a pass (the plain format for pipes and CI)."""
    w = worst_comparison(r)
    head = f"{r.status.upper()} {r.name} [{where(r)}]"
    if r.exact_side not in ("", "expr"):  # a target's case: where its exact side came from
        head += f" ({r.exact_side})"
    if w is not None and w.worst is not None:
        head += (f" {w.check} > {w.part}{_own_status(w, r)}: {ulps_of_allowed(w)} ulps allowed, torch"
                 f" {w.worst.torch!r}, exact {w.worst.exact!r}")
    if r.status != "pass" and r.message:
        head += f": {r.message}"
    return visible(head)


def _own_status(w: Comparison, r: CaseResult) -> str:
    """The shown comparison's status where it is not the case's and not a pass: a KINK case whose
    worst element is in an expected failure of another check says so (grad2 > x (xfail))."""
    return f" ({w.status})" if w.status not in (r.status, Status.PASS) else ""


def _plain(text: str, style: str = "") -> Text:
    """User text for rich: shown as it is, escapes visible, never parsed as markup or emoji."""
    return Text(visible(text), style=style)


def _status(status: str, text: str | None = None) -> Text:
    return _plain(status if text is None else text, STYLE.get(status, ""))


def _line(console: Console, *parts: str | Text) -> None:
    """One line of plain text: markup, emoji and highlighting off, never wrapped by rich."""
    line = Text.assemble(*(p if isinstance(p, Text) else _plain(p) for p in parts))
    console.print(line, highlight=False, markup=False, emoji=False, soft_wrap=True)


def table(results: Sequence[CaseResult]) -> Table:
    t = Table(title="symbolic vs autodiff", show_lines=False)
    for column in ("case", "dtype", "status", "worst check", "ulps of allowed", "torch", "exact"):
        t.add_column(column, overflow="fold")
    for r in results:
        w = worst_comparison(r)
        worst = w.worst if w is not None else None
        check = f"{w.check} > {w.part}{_own_status(w, r)}" if w else ""
        if r.status == "error" and worst is None:  # nothing compared: the reason in place of the check
            check = r.message
        t.add_row(_plain(r.name), _plain(where(r)), _status(r.status), _plain(check), _plain(ulps_of_allowed(w)),
                  _plain(repr(worst.torch) if worst else ""), _plain(repr(worst.exact) if worst else ""))
    return t


def print_report(results: Sequence[CaseResult], console: Console, verbose: bool = False,
                 form: str | None = None) -> None:
    """`form`: "table" or "lines"; by default a table on a terminal and lines anywhere else."""
    tabled = (form or ("table" if console.is_terminal else "lines")) == "table"
    if tabled:
        console.print(table(results))
        if verbose:
            console.print(comparisons_table(results))
    else:
        for r in results:
            _line(console, _status(r.status, result_line(r)))
            if verbose:
                for c in r.comparisons:
                    _line(console, "  ", comparison_line(c))
    for r in results:
        if r.status.problem or (verbose and r.message):
            if tabled:  # (a line already holds the case's own message)
                _line(console, _status(r.status, r.status.upper()), " ", r.message)
            for c in r.comparisons:
                if c.status.problem and c.message != r.message:
                    _line(console, "  ", c.message)
        if verbose:
            for reason, names in unsupported_by_reason(r).items():
                _line(console, f"UNSUPPORTED {r.name} [{where(r)}]: {', '.join(names)}: {reason}")
    if not verbose:
        for reason, (names, cases) in _unsupported_overall(results).items():
            _line(console, f"UNSUPPORTED in {len(cases)} case{'s' * (len(cases) > 1)}: {', '.join(names)}: {reason}")
    console.print(summary_line(results), highlight=False, markup=False, emoji=False)
    console.print(details_line(results), highlight=False, markup=False, emoji=False)


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


def comparison_line(c: Comparison) -> str:
    """One torch path on one line: check > path > part, status, ulps, torch beside exact."""
    torch_text = _values(c.torch_values) or (repr(c.worst.torch) if c.worst else "")
    exact_text = _values(c.exact_values) or (repr(c.worst.exact) if c.worst else "")
    return visible(f"{c.check} > {c.path} > {c.part}: {c.status} {ulps_of_allowed(c)} ulps allowed, torch {torch_text},"
                   f" exact {exact_text}")


def comparisons_table(results: Sequence[CaseResult]) -> Table:
    """Every torch path of every case, torch's values beside the exact ones."""
    t = Table(title="every path: torch beside exact")
    for column in ("case", "check > path > part", "status", "ulps", "torch", "exact"):
        t.add_column(column, overflow="fold")
    for r in results:
        for c in r.comparisons:
            torch_text = _values(c.torch_values) or (repr(c.worst.torch) if c.worst else "")
            exact_text = _values(c.exact_values) or (repr(c.worst.exact) if c.worst else "")
            t.add_row(_plain(f"{r.name} [{r.dtype}]"), _plain(f"{c.check} > {c.path} > {c.part}"),
                      _status(c.status), _plain(f"{c.max_ulps:.3g}"), _plain(torch_text), _plain(exact_text))
    return t
