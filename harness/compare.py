"""Reference against torch: errors in ulps, absolute and relative, per element; never raises.

`compare` looks at one array at one point; `summarize` folds the pieces of one torch path over
all points into a `Comparison` that says where the error peaks. Failures are described, not
raised: only the CLI and the pytest plugin turn them into exit codes and test failures.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from harness.numbers import FloatFormat, ulp
from harness.results import Comparison, Expected, Tolerance, Worst

DEFAULT_ULPS = {0: 4.0, 1: 8.0, 2: 16.0}
SHOWN_VALUES = 16
SERIES_POINTS = 200


def default_tolerance(order: int) -> Tolerance:
    return Tolerance(ulps=DEFAULT_ULPS[min(order, 2)] * max(1, order - 1))


@dataclass(frozen=True, eq=False)
class Piece:
    """One compared array at one point, ready to be compared."""

    point: int
    inputs: str  # the point's input values, for the report
    actual: np.ndarray
    expected: Expected
    components: Sequence[str] | None = None  # labels for flat elements; default: numpy index
    abscissa: np.ndarray | None = None  # an input's value at each element, for plots


@dataclass(frozen=True, eq=False)
class Elementwise:
    """Per-element outcome of one comparison (flat arrays)."""

    failed: np.ndarray  # the statuses as masks
    kink: np.ndarray
    undefined: np.ndarray
    error: np.ndarray  # absolute error (inf where torch is non-finite and should not be)
    ulps: np.ndarray
    rel: np.ndarray
    allowed: np.ndarray  # allowed absolute error
    exact: np.ndarray  # the exact value (or convention) as float64

    @functools.cached_property
    def status(self) -> np.ndarray:
        """'pass', 'fail', 'kink' or 'undefined' per element (made when asked for)."""
        return np.where(self.failed, "fail", np.where(self.undefined, "undefined", np.where(self.kink, "kink", "pass")))


@dataclass(frozen=True, eq=False)
class _Target:
    """What every torch path compared with one Expected shares (flat arrays)."""

    hi: np.ndarray
    lo: np.ndarray
    undefined: np.ndarray
    overflow: np.ndarray
    expected_inf: np.ndarray
    scale: np.ndarray  # an ulp of the exact value
    allowed: np.ndarray  # the allowed absolute error
    magnitude: np.ndarray
    finite_expected: np.ndarray  # defined and not past the format's range: torch must be finite
    infinite: np.ndarray  # the exact value is +-inf: torch must return that infinity
    kink: np.ndarray  # a defined kink
    exact: np.ndarray


_TARGETS: weakref.WeakKeyDictionary[Expected, dict[tuple, _Target]] = weakref.WeakKeyDictionary()


def _target(expected: Expected, fmt: FloatFormat, tol: Tolerance) -> _Target:
    mine = _TARGETS.setdefault(expected, {})
    key = (fmt, tol)
    if key not in mine:
        hi, lo = expected.hi.ravel(), expected.lo.ravel()
        undefined = expected.undefined.ravel()
        largest = float(fmt.largest) * (1 + 2.0 ** -(fmt.precision + 1))
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            overflow = ~undefined & (np.abs(hi) >= largest)
            expected_inf = np.sign(hi) * np.inf
            scale = ulp(np.where(overflow | undefined, 0.0, hi), fmt)
            allowed = np.maximum.reduce([tol.ulps * scale, tol.model * expected.bound.ravel(),
                                         np.full(hi.size, tol.atol)])
        mine[key] = _Target(hi, lo, undefined, overflow, expected_inf, scale, allowed, np.abs(hi),
                            ~undefined & ~overflow, ~undefined & expected.infinite.ravel(),
                            ~undefined & expected.kink.ravel(), np.where(overflow, expected_inf, hi + lo))
    return mine[key]


def compare(actual: np.ndarray, expected: Expected, fmt: FloatFormat, tol: Tolerance) -> Elementwise:
    """Compare torch's array with the reference, element by element."""
    g = _target(expected, fmt, tol)
    t = np.asarray(actual, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        error = np.abs((t - g.hi) - g.lo)
        error = np.where(g.overflow, np.where(t == g.expected_inf, 0.0, np.inf), error)
        error = np.where(~np.isfinite(t) & g.finite_expected, np.inf, error)
        error = np.where(g.undefined, 0.0, error)
        ulps = error / g.scale
        rel = np.where(g.magnitude > 0, error / g.magnitude, np.where(error > 0, np.inf, 0.0))
        fail = error > g.allowed
        fail |= g.infinite & (t != g.expected_inf)  # nan, +inf and -inf are distinct answers
    kink = ~fail & g.kink
    return Elementwise(fail, kink, g.undefined & ~fail, error, ulps, rel, g.allowed, g.exact)


@dataclass
class _Tally:
    """What one path's pieces come to, element counts and maxima, as they are folded in."""

    small: bool  # every element's values are kept (few enough to show)
    count: int = 0
    mismatched: int = 0
    kinks: int = 0
    undefined: int = 0
    uncertified: int = 0
    unbounded: int = 0
    max_ulps: float = 0.0
    max_abs: float = 0.0
    max_rel: float = 0.0
    torch_values: list[float] = field(default_factory=list)
    exact_values: list[float] = field(default_factory=list)
    point_ulps: list[float] = field(default_factory=list)

    def add(self, piece: Piece, e: Elementwise, tol: Tolerance) -> None:
        if self.small:
            self.torch_values += [float(v) for v in np.asarray(piece.actual, dtype=np.float64).ravel()]
            self.exact_values += [float(v) for v in e.exact]
        self.count += e.failed.size
        self.mismatched += int(np.count_nonzero(e.failed))
        self.kinks += int(np.count_nonzero(e.kink))
        self.undefined += int(np.count_nonzero(e.undefined))
        self.uncertified += piece.expected.uncertified
        defined = ~e.undefined
        if np.isfinite(tol.ulps):  # an infinite tolerance is the caller's choice (a distance only reported)
            self.unbounded += int(np.count_nonzero(~piece.expected.undefined.ravel() & ~e.kink
                                                   & ~np.isfinite(e.allowed)
                                                   & ~piece.expected.infinite.ravel()))  # an exact inf matches exactly
        if defined.any():
            everywhere = bool(defined.all())
            worst_ulps = float(np.max(e.ulps if everywhere else e.ulps[defined]))
            self.point_ulps.append(worst_ulps)
            self.max_ulps = max(self.max_ulps, worst_ulps)
            self.max_abs = max(self.max_abs, float(np.max(e.error if everywhere else e.error[defined])))
            self.max_rel = max(self.max_rel, float(np.max(e.rel if everywhere else e.rel[defined])))
        else:
            self.point_ulps.append(0.0)


def _ranked(e: Elementwise) -> tuple[int, tuple[bool, bool, bool, float, float]]:
    """The element the message names and the plots mark, and its rank: a failing one before any
    other, then one at a kink, then one outside the domain (the status says which), then the error
    relative to what is allowed, then the error in ulps."""
    defined = ~e.undefined
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.nan_to_num(np.where(defined, e.error / e.allowed, -1.0), nan=0.0, posinf=np.inf)
    ulps = np.nan_to_num(e.ulps, nan=0.0, posinf=np.inf)
    i = int(np.lexsort((ulps, ratio, e.undefined, e.kink, e.failed))[-1])
    return i, (bool(e.failed[i]), bool(e.kink[i]), bool(e.undefined[i]), float(ratio[i]), float(ulps[i]))


def summarize(check: str, path: str, part: str, pieces: Sequence[Piece], fmt: FloatFormat,
              tol: Tolerance, breadcrumb: str) -> Comparison:
    """Fold one path's pieces into a Comparison; `breadcrumb` is 'case [dtype]'."""
    tally = _Tally(small=sum(piece.actual.size for piece in pieces) <= SHOWN_VALUES)
    worst, worst_rank = None, None
    compared: list[tuple[Piece, Elementwise]] = []
    for piece in pieces:
        if piece.actual.size != piece.expected.hi.size:
            return Comparison(check, path, part, "error", message=(
                f"{breadcrumb} > {check} > {path} > point {piece.point} > {part}: torch returned shape"
                f" {list(piece.actual.shape)}, expected {piece.expected.hi.size} elements"))
        e = compare(piece.actual, piece.expected, fmt, tol)
        tally.add(piece, e, tol)
        compared.append((piece, e))
        i, rank = _ranked(e)
        if worst_rank is None or rank > worst_rank:
            worst_rank, worst = rank, _worst(piece, e, i, fmt)
    t = tally
    status = _status(t.count, t.mismatched, t.kinks, t.undefined)
    series = []  # plots are drawn for failures, kinks and undefined points only
    if status != "pass":
        for piece, e in compared:
            series += _series(piece, e, fmt)
    step = max(1, len(series) // SERIES_POINTS)
    by_input = all(p.abscissa is not None and p.abscissa.size == np.asarray(p.actual).size for p, _ in compared)
    comparison = Comparison(check, path, part, status, t.count, t.mismatched, t.kinks, t.undefined, t.uncertified,
                            t.unbounded, t.max_ulps, t.max_abs, t.max_rel, worst, "", tuple(t.torch_values),
                            tuple(t.exact_values), tuple(t.point_ulps), tuple(series[::step]),
                            abscissa="input" if by_input else "element")
    return _with_message(comparison, breadcrumb)


def _series(piece: Piece, e: Elementwise, fmt: FloatFormat) -> list[tuple[float, float, float, float, float, str]]:
    """(x, torch, exact, error in ulps, allowed in ulps, status) per element; x is an input's value,
    or the element's index where no one input is the abscissa (a VJP, a Jacobian)."""
    actual = np.asarray(piece.actual, dtype=np.float64).ravel()
    xs = piece.abscissa.ravel() if piece.abscissa is not None else np.arange(actual.size, dtype=np.float64)
    if xs.size != actual.size:
        xs = np.arange(actual.size, dtype=np.float64)
    if piece.abscissa is None and piece.point:
        xs = xs + piece.point * actual.size
    scale = ulp(np.where(np.isfinite(e.exact), e.exact, 0.0), fmt)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        allowed = e.allowed / scale
    return [(float(x), float(t), float(r), float(u), float(a), str(status))
            for x, t, r, u, a, status in zip(xs, actual, e.exact, e.ulps, allowed, e.status)]


def _status(count: int, mismatched: int, kinks: int, undefined: int) -> str:
    """fail if any element fails; else kink or undefined if any element is one; else pass."""
    if mismatched:
        return "fail"
    if kinks:
        return "kink"
    return "undefined" if undefined else "pass"


def _worst(piece: Piece, e: Elementwise, i: int, fmt: FloatFormat) -> Worst:
    shape = piece.actual.shape
    if piece.components is not None:
        component = piece.components[i]
    else:
        component = str([int(j) for j in np.unravel_index(i, shape)]) if shape else "[]"
    torch_value = float(np.asarray(piece.actual, dtype=np.float64).ravel()[i])
    scale = float(ulp(np.array([e.exact[i] if np.isfinite(e.exact[i]) else 0.0]), fmt)[0])
    return Worst(piece.point, piece.inputs, component, torch_value, float(e.exact[i]), float(e.ulps[i]),
                 float(e.error[i]), float(e.rel[i]), float(e.allowed[i]) / scale)


def _with_message(c: Comparison, breadcrumb: str) -> Comparison:
    return replace(c, message=describe(c, breadcrumb))


def describe(c: Comparison, breadcrumb: str) -> str:
    """The one failure-message template: where, then torch vs exact, error and tolerance."""
    w = c.worst
    if w is None:
        return f"{breadcrumb} > {c.check} > {c.path} > {c.part}: {c.status}"
    head = f"{breadcrumb} > {c.check} > {c.path} > point {w.point} ({w.inputs}) > {c.part}{w.component}"
    unbounded = (f"; {c.unbounded} element{'s' * (c.unbounded != 1)} allowed any error (the error model is not"
                 " finite there: a value inside the expression, or the result, is past the dtype's range)"
                 ) if c.unbounded else ""
    if c.status == "undefined":  # nothing to measure an error against: say what torch gave
        return (f"{head}: torch {w.torch!r}; the exact value is undefined here (outside the domain, or a point"
                f" with no limit): {c.undefined} of {c.count} elements not compared" + unbounded)
    verdict = {"fail": f"not close! {c.mismatched} of {c.count} elements mismatched",
               "kink": "at a kink, torch's convention holds"}.get(c.status, "close")
    if c.status == "fail" and w.torch != w.torch and w.exact == w.exact:
        verdict += " (torch nan)"
    return (f"{head}: torch {w.torch!r}, exact {w.exact!r}, error {_fmt(w.ulps)} ulps"
            f" (abs {w.abs_error:.3g}, rel {w.rel_error:.3g}), allowed {_fmt(w.allowed_ulps)} ulps; {verdict}"
            + unbounded)


def _fmt(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.3g}"
