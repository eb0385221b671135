"""`summary.md`: a Markdown summary fit for a CI job summary.

Every user string is a table cell through `markdown_cell`: it renders as its literal text on one line."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report import counts, holomorphy, summary_line, unsupported_by_reason, unsupported_paths, where
from harness.report.text import markdown_cell as _cell
from harness.results import CaseResult


def render(results: Sequence[CaseResult], title: str = "harness: symbolic vs autodiff") -> str:
    c = counts(results)
    lines = [f"# {title}", "", f"**{summary_line(results)}**", "",
             "| status | cases |", "|---|---|"] + [f"| {s} | {n} |" for s, n in c.items() if n]
    problems = [r for r in results if r.status.problem]
    if problems:
        lines += ["", "## Failures", "", "| case | dtype | status | what |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {_cell(where(r))} | {_cell(r.status)} | {_cell(r.message)} |"
                  for r in problems]
    noted = [r for r in results if r.status in ("kink", "xfail", "xpass", "undefined", "unsupported")]
    if noted:
        lines += ["", "<details><summary>kinks, undefined points, unsupported checks and expected failures</summary>",
                  "",
                  "| case | dtype | status | note |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {_cell(where(r))} | {_cell(r.status)} | {_cell(r.xfail or r.message)} |"
                  for r in noted]
        lines += ["", "</details>"]
    cannot = [r for r in results if unsupported_by_reason(r)]
    if cannot:
        lines += ["", "## Torch paths the callable cannot run", "",
                  f"{len(unsupported_paths(results))} paths: not failures, not passes (see the README,"
                  " \"Verifying your own autograd.Function\").", "",
                  "| case | dtype | paths | why |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {_cell(where(r))} | {_cell(', '.join(names))} | {_cell(reason)} |"
                  for r in cannot for reason, names in unsupported_by_reason(r).items()]
    complex_outputs = holomorphy(results)
    if complex_outputs:
        lines += ["", "## Complex cases: holomorphy", "", "| case | dtype | output | Cauchy-Riemann |",
                  "|---|---|---|---|"]
        lines += [f"| {_cell(r.name)} | {_cell(where(r))} | {_cell(out)} | {_cell(verdict)} |"
                  for r, out, verdict in complex_outputs]
    return "\n".join(lines) + "\n"
