"""`index.html`: one page, a summary table and, for every failing, kink or xfail comparison, plots of
torch's values and the exact ones over the inputs and of the error in ulps with the tolerance drawn
in. Plain HTML with inline SVG: no scripts, no network, opens from the file system. Every user string
goes through `html_text` (escaped, control and bidi characters shown as escapes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.report import counts, holomorphy, summary_line, unsupported_by_reason, unsupported_paths, where
from harness.report.text import html_text
from harness.results import CaseResult, Comparison

WIDTH, HEIGHT, PAD = 420, 220, 40
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "kink": "#9a6700", "undefined": "#0969da",
           "unsupported": "#57606a", "xfail": "#8250df", "xpass": "#8250df"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;font-size:14px}th{background:#f6f8fa}
.status{font-weight:600}.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figcaption{font-size:12px;max-width:420px;word-break:break-word}svg{background:#fff;border:1px solid #d0d7de}
h2{margin-top:2em}code{font-size:12px}
"""


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _scale(values: Sequence[float], low: int, high: int) -> tuple[float, float, callable]:
    finite = _finite(values) or [0.0, 1.0]
    lo, hi = min(finite), max(finite)
    if not math.isfinite(hi - lo) or hi - lo <= abs(hi) * 1e-12:
        pad = max(1.0, abs(lo) * 1e-6) if math.isfinite(lo) else 1.0
        lo, hi = lo - pad, hi + pad
    if not (math.isfinite(hi - lo) and hi > lo):
        lo, hi = 0.0, 1.0
    span = hi - lo
    return lo, hi, lambda v: low + (min(max(v, lo), hi) - lo) / span * (high - low)


def _axes(x_lo: float, x_hi: float, y_lo: float, y_hi: float, y_label: str) -> str:
    return (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#57606a"/>'
            f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#57606a"/>'
            f'<text x="{PAD}" y="{HEIGHT - PAD + 14}" font-size="10">{x_lo:.3g}</text>'
            f'<text x="{WIDTH - 60}" y="{HEIGHT - PAD + 14}" font-size="10">{x_hi:.3g}</text>'
            f'<text x="2" y="{HEIGHT - PAD}" font-size="10">{y_lo:.3g}</text>'
            f'<text x="2" y="18" font-size="10">{y_hi:.3g}</text>'
            f'<text x="{WIDTH // 2 - 40}" y="{HEIGHT - 8}" font-size="11">input</text>'
            f'<text x="{PAD + 4}" y="22" font-size="11">{html_text(y_label)}</text>')


def values_plot(c: Comparison) -> str:
    """torch's values (dots) and the exact ones (a line), over the input."""
    points = sorted(c.series)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + [p[2] for p in points]
    x_lo, x_hi, sx = _scale(xs, PAD, WIDTH - 10)
    y_lo, y_hi, sy = _scale(ys, HEIGHT - PAD, 10)
    exact = " ".join(f"{sx(x):.1f},{sy(e):.1f}" for x, _, e, _, _ in points if math.isfinite(e))
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(t):.1f}" r="2.2" fill="#cf222e"/>'
                   for x, t, _, _, _ in points if math.isfinite(t))
    return (f'<svg class="plot" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="values">'
            f'{_axes(x_lo, x_hi, y_lo, y_hi, "torch (dots) and exact (line)")}'
            f'<polyline points="{exact}" fill="none" stroke="#0969da" stroke-width="1.5"/>{dots}</svg>')


def ulps_plot(c: Comparison) -> str:
    """The error in ulps (log scale) and the tolerance allowed at each point."""
    points = sorted(c.series)
    def lg(v: float) -> float:
        return math.log10(max(v, 1e-3)) if math.isfinite(v) else 20.0
    xs = [p[0] for p in points]
    ys = [lg(p[3]) for p in points] + [lg(p[4]) for p in points]
    x_lo, x_hi, sx = _scale(xs, PAD, WIDTH - 10)
    y_lo, y_hi, sy = _scale(ys, HEIGHT - PAD, 10)
    allowed = " ".join(f"{sx(x):.1f},{sy(lg(a)):.1f}" for x, _, _, _, a in points)
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(lg(u)):.1f}" r="2.2" fill="{"#cf222e" if u > a else "#1a7f37"}"/>'
                   for x, _, _, u, a in points)
    return (f'<svg class="plot" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="ulps">'
            f'{_axes(x_lo, x_hi, 10 ** y_lo, 10 ** y_hi, "error in ulps (log), tolerance dashed")}'
            f'<polyline points="{allowed}" fill="none" stroke="#57606a" stroke-dasharray="4 3"/>{dots}</svg>')


def _status(status: str) -> str:
    return f'<span class="status" style="color:{COLOURS.get(status, "#1f2328")}">{html_text(status)}</span>'


def render(results: Sequence[CaseResult], versions: dict[str, str]) -> str:
    c = counts(results)
    rows = "".join(
        f"<tr><td><a href='#r{i}'>{html_text(r.name)}</a></td><td>{html_text(where(r))}</td>"
        f"<td>{_status(r.status)}</td><td>{max((x.max_ulps for x in r.comparisons), default=0):.3g}</td>"
        f"<td>{html_text(f'{r.file}:{r.line}')}</td></tr>"
        for i, r in enumerate(results))
    sections = []
    for i, r in enumerate(results):
        shown = [x for x in r.comparisons if x.series]
        if r.status in ("pass",) or not (shown or r.status in ("fail", "error")):
            continue
        figures = "".join(
            f"<figure>{values_plot(x)}{ulps_plot(x)}<figcaption>{_status(x.status)} "
            f"{html_text(x.check)} &gt; {html_text(x.path)} &gt; {html_text(x.part)}: {html_text(x.message)}"
            "</figcaption></figure>"
            for x in shown)
        sections.append(f"<h2 id='r{i}'>{html_text(r.name)} [{html_text(r.dtype)}] {_status(r.status)}</h2>"
                        f"<p><code>{html_text(r.message)}</code></p><div class='plots'>{figures}</div>")
    cannot = [(r, reason, names) for r in results for reason, names in unsupported_by_reason(r).items()]
    if cannot:
        cells = "".join(f"<tr><td>{html_text(r.name)}</td><td>{html_text(where(r))}</td>"
                        f"<td>{html_text(', '.join(names))}</td><td>{html_text(reason)}</td></tr>"
                        for r, reason, names in cannot)
        sections.append(f"<h2>Torch paths the callable cannot run ({len(unsupported_paths(results))})</h2>"
                        "<table><tr><th>case</th><th>dtype</th><th>paths</th><th>why</th></tr>"
                        f"{cells}</table>")
    complex_outputs = holomorphy(results)
    if complex_outputs:
        cells = "".join(f"<tr><td>{html_text(r.name)}</td><td>{html_text(where(r))}</td><td>{html_text(out)}</td>"
                        f"<td>{html_text(verdict)}</td></tr>" for r, out, verdict in complex_outputs)
        sections.append("<h2>Complex cases: holomorphy</h2><table><tr><th>case</th><th>dtype</th><th>output</th>"
                        f"<th>Cauchy-Riemann</th></tr>{cells}</table>")
    totals = ", ".join(f"{n} {s}" for s, n in c.items() if n)
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>harness report</title>"
            f"<style>{STYLE}</style></head><body><h1>symbolic vs autodiff</h1>"
            f"<p><strong>{html_text(summary_line(results))}</strong> ({html_text(totals)})</p>"
            f"<p><small>{html_text(version_text)}</small></p>"
            f"<table><tr><th>case</th><th>dtype</th><th>status</th><th>max ulps</th><th>where</th></tr>{rows}</table>"
            f"{''.join(sections)}</body></html>\n")
