"""`index.html`: one page, a summary table and, for every failing, kink or xfail comparison, plots of
torch's values and the exact ones over the inputs and of the error in ulps with the tolerance drawn
in. Plain HTML with inline SVG: no scripts, no network, opens from the file system. Every user string
goes through `html_text` (escaped, control and bidi characters shown as escapes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.registry import CHECKS
from harness.report import (
    counts,
    holomorphy,
    summary_line,
    ulps_of_allowed,
    unsupported_by_reason,
    unsupported_paths,
    where,
    worst_comparison,
)
from harness.report.text import html_text
from harness.results import CaseResult, Comparison

BY_INPUT = {name for name, c in CHECKS.items() if c.by_input}  # values plotted over the input

WIDTH, HEIGHT = 440, 260
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 30, 42  # the plot area's margins: ticks and labels live outside it
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "kink": "#9a6700", "undefined": "#0969da",
           "unsupported": "#57606a", "xfail": "#8250df", "xpass": "#8250df"}
PATH_COLOURS = ("#0550ae", "#bc4c00", "#8250df", "#116329", "#953800", "#6e7781", "#a40e26", "#0a3069")
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;font-size:14px}th{background:#f6f8fa}
.status{font-weight:600}.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figcaption{font-size:12px;max-width:920px;word-break:break-word}svg{background:#fff;border:1px solid #d0d7de}
h2{margin-top:2em}code{font-size:12px}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = _finite(values) or [0.0, 1.0]
    lo, hi = min(finite), max(finite)
    if not math.isfinite(hi - lo) or hi - lo <= abs(hi) * 1e-12:
        pad = max(1.0, abs(lo) * 1e-6) if math.isfinite(lo) else 1.0
        lo, hi = lo - pad, hi + pad
    return (lo, hi) if math.isfinite(hi - lo) and hi > lo else (0.0, 1.0)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round numbers spanning [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


class _Frame:
    """A plot's axes: data to pixels, ticks with labels, axis titles and the plot's title."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], log_y: bool = False) -> None:
        self.x, self.y, self.log_y = x, y, log_y

    def px(self, v: float) -> float:
        lo, hi = self.x
        return LEFT + (min(max(v, lo), hi) - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT)

    def py(self, v: float) -> float:
        lo, hi = self.y
        return HEIGHT - BOTTOM - (min(max(v, lo), hi) - lo) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    def draw(self, title: str, x_label: str, y_label: str) -> str:
        bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
        parts = [f'<text x="{WIDTH / 2:.0f}" y="18" font-size="12" text-anchor="middle">{html_text(title)}</text>',
                 f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" '
                 'stroke="#57606a"/>']
        for v in _ticks(*self.x):
            parts.append(f'<line x1="{self.px(v):.1f}" y1="{bottom}" x2="{self.px(v):.1f}" y2="{bottom + 4}" '
                         f'stroke="#57606a"/><text x="{self.px(v):.1f}" y="{bottom + 15}" font-size="10" '
                         f'text-anchor="middle">{_label(v)}</text>')
        y_ticks = [float(k) for k in range(math.ceil(self.y[0]), math.floor(self.y[1]) + 1)] if self.log_y \
            else _ticks(*self.y)
        for v in y_ticks:
            text = f"1e{int(v)}" if self.log_y else _label(v)
            parts.append(f'<line x1="{LEFT - 4}" y1="{self.py(v):.1f}" x2="{LEFT}" y2="{self.py(v):.1f}" '
                         f'stroke="#57606a"/><line x1="{LEFT}" y1="{self.py(v):.1f}" x2="{right}" '
                         f'y2="{self.py(v):.1f}" stroke="#eaeef2"/><text x="{LEFT - 6}" y="{self.py(v) + 3:.1f}" '
                         f'font-size="10" text-anchor="end">{text}</text>')
        parts.append(f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 6}" font-size="11" '
                     f'text-anchor="middle">{html_text(x_label)}</text>')
        parts.append(f'<text x="12" y="{(TOP + bottom) / 2:.0f}" font-size="11" text-anchor="middle" '
                     f'transform="rotate(-90 12 {(TOP + bottom) / 2:.0f})">{html_text(y_label)}</text>')
        return "".join(parts)


def _label(v: float) -> str:
    return f"{v:.4g}" if v != 0 else "0"


def _marker(x: float, y: float, status: str, colour: str) -> str:
    """A point: filled in its path's colour; a failure ringed red, a kink a triangle, undefined a hollow square."""
    if status == "kink":
        return (f'<polygon points="{x:.1f},{y - 4:.1f} {x - 4:.1f},{y + 3:.1f} {x + 4:.1f},{y + 3:.1f}" '
                f'fill="{COLOURS["kink"]}"/>')
    if status == "undefined":
        return (f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="none" '
                f'stroke="{COLOURS["undefined"]}"/>')
    ring = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="none" stroke="{COLOURS["fail"]}"/>' \
        if status == "fail" else ""
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{colour}"/>{ring}'


def _points(c: Comparison) -> list[tuple[float, float, float, float, float, str]]:
    return sorted((*p[:5], p[5] if len(p) > 5 else "pass") for p in c.series)


def values_plot(group: Sequence[Comparison], title: str) -> str:
    """The exact values (a line) and each path's torch values (dots in its colour), over the input."""
    series = [_points(c) for c in group]
    xs = [p[0] for s in series for p in s]
    ys = [v for s in series for p in s for v in (p[1], p[2])]
    frame = _Frame(_range(xs), _range(ys))
    exact = " ".join(f"{frame.px(p[0]):.1f},{frame.py(p[2]):.1f}" for p in series[0] if math.isfinite(p[2]))
    dots = "".join(_marker(frame.px(p[0]), frame.py(p[1]), p[5], PATH_COLOURS[i % len(PATH_COLOURS)])
                   for i, s in enumerate(series) for p in s if math.isfinite(p[1]))
    return (f'<svg class="plot" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="values">'
            f'{frame.draw(title + ": values", "input", "torch (dots), exact (line)")}'
            f'<polyline points="{exact}" fill="none" stroke="#57606a" stroke-width="1.5"/>{dots}</svg>')


def ulps_plot(group: Sequence[Comparison], title: str) -> str:
    """Each path's error in ulps (log scale) at each element, the allowance dashed."""
    series = [_points(c) for c in group]

    def lg(v: float) -> float:
        return math.log10(max(v, 1e-3)) if math.isfinite(v) else 20.0

    xs = [p[0] for s in series for p in s]
    ys = [lg(v) for s in series for p in s for v in (p[3], p[4])]
    lo, hi = _range(ys)
    frame = _Frame(_range(xs), (math.floor(lo), math.ceil(hi)), log_y=True)
    allowed = " ".join(f"{frame.px(p[0]):.1f},{frame.py(lg(p[4])):.1f}" for p in series[0])
    dots = "".join(_marker(frame.px(p[0]), frame.py(lg(p[3])), p[5], PATH_COLOURS[i % len(PATH_COLOURS)])
                   for i, s in enumerate(series) for p in s)
    x_label = "input" if all(c.abscissa == "input" for c in group) else "element (flat index, point by point)"
    return (f'<svg class="plot" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="ulps">'
            f'{frame.draw(title + ": error in ulps", x_label, "ulps (log), allowed dashed")}'
            f'<polyline points="{allowed}" fill="none" stroke="#57606a" stroke-dasharray="4 3"/>{dots}</svg>')


def _figure(group: Sequence[Comparison]) -> str:
    """One check's part: its paths overlaid in one pair of plots (the values only for checks without
    a random vector and with an input as the abscissa: a VJP's values, weighted by a random
    cotangent, are a zigzag; its error per element is what it shows), a legend of the paths."""
    title = f"{group[0].check} > {group[0].part}"
    by_input = all(c.abscissa == "input" for c in group) and group[0].check in BY_INPUT
    plots = values_plot(group, title) if by_input else ""
    legend = "".join(f'<div><span class="swatch" style="background:{PATH_COLOURS[i % len(PATH_COLOURS)]}"></span>'
                     f"{_status(c.status)} {html_text(c.path)}: {html_text(c.message)}</div>"
                     for i, c in enumerate(group))
    key = ("<div><small>red ring: outside the allowance; triangle: at a kink (torch's convention);"
           " hollow square: no exact value (undefined)</small></div>")
    return f"<figure>{plots}{ulps_plot(group, title)}<figcaption>{legend}{key}</figcaption></figure>"


def _status(status: str) -> str:
    return f'<span class="status" style="color:{COLOURS.get(status, "#1f2328")}">{html_text(status)}</span>'


def _linked(text: str, linked: bool, i: int) -> str:
    """A case's name, a link to its section where it has one (and only then)."""
    return f"<a href='#r{i}'>{text}</a>" if linked else text


def _worst_ulps(r: CaseResult) -> str:
    """The worst element's error beside its allowance (one element's two numbers), or the reason."""
    shown = worst_comparison(r)
    if shown is None or shown.worst is None:
        return html_text(r.message) if r.status == "error" else ""
    return ulps_of_allowed(shown)


def render(results: Sequence[CaseResult], versions: dict[str, str]) -> str:
    c = counts(results)
    sections, linked = [], set()
    for i, r in enumerate(results):
        shown = [x for x in r.comparisons if x.series]
        if r.status in ("pass",) or not (shown or r.status.problem):
            continue
        groups: dict[tuple[str, str], list[Comparison]] = {}
        for x in shown:
            groups.setdefault((x.check, x.part), []).append(x)
        figures = "".join(_figure(group) for group in groups.values())
        sections.append(f"<h2 id='r{i}'>{html_text(r.name)} [{html_text(where(r))}] {_status(r.status)}</h2>"
                        f"<p><code>{html_text(r.message)}</code></p><div class='plots'>{figures}</div>")
        linked.add(i)
    rows = "".join(
        f"<tr><td>{_linked(html_text(r.name), i in linked, i)}</td><td>{html_text(where(r))}</td>"
        f"<td>{_status(r.status)}</td><td>{_worst_ulps(r)}</td>"
        f"<td>{html_text(f'{r.file}:{r.line}')}</td></tr>"
        for i, r in enumerate(results))
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
            f"<table><tr><th>case</th><th>dtype</th><th>status</th><th>ulps of allowed</th><th>where</th></tr>"
            f"{rows}</table>"
            f"{''.join(sections)}</body></html>\n")
