"""The traced forward against `expr:`, exactly: are the two exact sides the same function here?

A case with both a target and an expression has two exact sides: the mathematics its author meant
(`expr:`) and what the target's forward computes (harness.trace). They are compared at every
point of the case, element by element, as certified balls, and their difference is measured in
ulps of the case's dtype at expr:'s value: a forward with a hard-coded constant or a branch
threshold that differs from the intended mathematics is a `fail` of the check `forward`, reported
apart from the checks of its derivatives, which go on against `expr:`. A difference certainly
below one ulp is not a different function at this precision (the forward's `x / 10` against
`0.1 * x`, whose 0.1 is the dtype's, differ by 0.55 ulps of x/10 at most): it passes, its size said.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flint import arb

from harness.numbers import ulp
from harness.reference import Exact, PointReference, as_floats, start_precision
from harness.results import Comparison, Status, Worst
from harness.symbolic import SymbolicOutput

CHECK, PATH = "forward", "traced forward = expr"

Values = list[dict[str, list[Exact]]]  # per point, per output: its elements' exact values


def exact_values(outputs: dict[str, SymbolicOutput], points: Sequence[dict[str, np.ndarray]],
                 fmt: object) -> Values:
    """Each output's exact values at every point, with the error model of its tree as written."""
    bits = start_precision(fmt)  # type: ignore[arg-type]
    return [{name: PointReference({name: out}, values, fmt, bits, True).values(name)  # type: ignore[arg-type]
             for name, out in outputs.items()} for values in points]


def forward_against_expr(traced: Values, declared: dict[str, SymbolicOutput],
                         points: Sequence[dict[str, np.ndarray]], fmt: object,
                         crumb: str) -> tuple[Comparison, ...]:
    """One comparison per declared output, against the traced output of the same name and shape
    (the target returns as many as the case declares: harness.target.bind holds it to that, and
    harness.prepare the shapes); `crumb` names the case and dtype in messages."""
    return tuple(_one(name, want, exact_values({name: want}, points, fmt), traced, points, fmt, crumb)
                 for name, want in declared.items())


def _one(name: str, want: SymbolicOutput, wanted: Values, traced: Values, points: Sequence[dict[str, np.ndarray]],
         fmt: object, crumb: str) -> Comparison:
    count, differ, first, most = 0, 0, None, 0.0
    for p, values in enumerate(points):
        for i, (x, y) in enumerate(zip(wanted[p][name], traced[p][name])):
            count += 1
            ulps = _ulps_apart(x.ball, y.ball, fmt)
            most = max(most, ulps)
            if ulps > 1:
                differ += 1
                if first is None or ulps > first[5]:
                    first = (p, i, x.ball, y.ball, values, ulps)
    if not differ:
        size = "equals expr:" if most == 0 else f"agrees with expr: within {most:.2g} ulps (under one)"
        return Comparison(CHECK, PATH, name, Status.PASS, count=count, max_ulps=most,
                          message=f"{crumb} > {CHECK} > {name}: the traced forward {size} at {count} element(s)")
    p, i, x, y, values, ulps = first  # type: ignore[misc]
    where = ", ".join(f"{n}={_show(v)}" for n, v in values.items())
    element = f" element {i}" if want.size > 1 else ""
    gap = abs(_float(y) - _float(x))
    return Comparison(CHECK, PATH, name, Status.FAIL, count=count, mismatched=differ, max_ulps=ulps,
                      worst=Worst(p, where, str(i) if want.size > 1 else "", _float(y), _float(x), ulps, gap,
                                  gap / abs(_float(x)) if _float(x) else float("inf"), 1.0),
                      message=f"{crumb} > {CHECK} > {name}: the traced forward differs from expr: at {differ} of"
                              f" {count} element(s) by more than one ulp; the most at point {p + 1} ({where}){element}:"
                              f" forward {_float(y)!r}, expr {_float(x)!r}, {ulps:.3g} ulps apart")


def unreproduced(traced: Values, returned: Sequence[Sequence[np.ndarray]],
                 points: Sequence[dict[str, np.ndarray]], fmt: object) -> str:
    """Why the traced tree is not what the forward computed ("" when it is): at every point, each
    output the forward returned must lie within the error model's bound (four times over, and
    four ulps) of the tree's exact value. A trace that maps an ATen op wrongly fails this before
    any verdict rests on it, and the case is not judged against a wrong exact side."""
    for p, (values, outputs) in enumerate(zip(points, returned)):
        for (name, exacts), got in zip(traced[p].items(), outputs):
            f = as_floats(exacts)
            t = np.asarray(got, dtype=np.float64).ravel()
            exact = f.hi + f.lo
            with np.errstate(all="ignore"):  # undefined, or torch's inf or nan: the checks judge those
                judged = f.finite & ~f.undefined & np.isfinite(t)
                allowed = 4 * f.bound + 4 * ulp(exact, fmt) + f.rad  # type: ignore[arg-type]
                off = np.flatnonzero(judged & (np.abs(t - exact) > allowed))
            if off.size:
                i = int(off[0])
                where = ", ".join(f"{n}={_show(v)}" for n, v in values.items())
                return (f"cannot trace the forward: its traced expression does not give the output {name!r} it"
                        f" returned, at point {p + 1} ({where}) element {i}: forward {float(t[i])!r}, traced"
                        f" {float(exact[i])!r} (an ATen op the harness maps wrongly: please report it); give the"
                        f" case an expr: with the forward's mathematics")
    return ""


def _ulps_apart(x: arb, y: arb, fmt: object) -> float:
    """How far apart two exact values certainly are, in ulps of the dtype at x (the lower end of
    the balls' distance): 0 where they may be equal; inf where one is defined and the other not."""
    nx, ny = not x.is_finite(), not y.is_finite()
    if nx or ny:
        return float("inf") if nx != ny else 0.0
    gap = abs(x - y).lower()
    if gap <= 0:
        return 0.0
    spacing = float(ulp(np.array([float(abs(x).upper())]), fmt)[0])  # type: ignore[arg-type]
    return float(gap) / spacing


def _float(x: arb) -> float:
    return float(x.mid()) if x.is_finite() else float("nan")


def _show(values: np.ndarray) -> str:
    flat = [float(v) for v in np.asarray(values).ravel()]
    return repr(flat[0]) if len(flat) == 1 else repr(flat[:4]) + ("..." if len(flat) > 4 else "")
