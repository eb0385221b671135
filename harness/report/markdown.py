"""`summary.md`: a Markdown summary fit for a CI job summary."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report import counts, holomorphy, summary_line, where
from harness.results import CaseResult


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: Sequence[CaseResult], title: str = "harness: symbolic vs autodiff") -> str:
    c = counts(results)
    lines = [f"# {title}", "", f"**{summary_line(results)}**", "",
             "| status | cases |", "|---|---|"] + [f"| {s} | {n} |" for s, n in c.items() if n]
    problems = [r for r in results if r.status in ("fail", "error")]
    if problems:
        lines += ["", "## Failures", "", "| case | dtype | status | what |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {where(r)} | {r.status} | {_cell(r.message)} |" for r in problems]
    noted = [r for r in results if r.status in ("kink", "xfail", "xpass", "undefined")]
    if noted:
        lines += ["", "<details><summary>kinks, undefined points and expected failures</summary>", "",
                  "| case | dtype | status | note |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {where(r)} | {r.status} | {_cell(r.xfail or r.message)} |" for r in noted]
        lines += ["", "</details>"]
    complex_outputs = holomorphy(results)
    if complex_outputs:
        lines += ["", "## Complex cases: holomorphy", "", "| case | dtype | output | Cauchy-Riemann |",
                  "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {where(r)} | {_cell(out)} | {_cell(verdict)} |"
                  for r, out, verdict in complex_outputs]
    return "\n".join(lines) + "\n"
