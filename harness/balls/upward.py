"""Error bounds as float arrays of base-2 logarithms, rounded upward: the error model's arithmetic.

The error model and the term magnitudes are only ever used as a tolerance, so they are computed in
vectorised floating point instead of Arb balls. A bound is held as log2 of itself: the terms of a
derivative can be far outside float64's range although the bound is not (a slope of 1e310 at a
subnormal input times an error of 1e-320; (1 + exp(x))^-2 at x = 273 times terms of 1e237), and in
logarithms nothing overflows or underflows. -inf is an exact 0 (a term that is absent), +inf no
finite bound; a nan (0 * inf) becomes +inf.

Every operation moves its result up by more than its rounding error (`_up`: 2^-44 plus 2^-50 of
the logarithm; numpy's logaddexp2 and log2, and math.log1p for one member, err by a few ulps of
the result, measured at under a tenth of that), so each array stays an upper bound of the exact
value of the same formula; a chain of a thousand operations on bounds near 2^-50 is loose by
about 1e-10. Balls come in as
`magnitudes` (log2 of an upper bound of |x|), and bounds go out as floats by `to_floats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from flint import arb

Bound = np.ndarray  # float64: log2 of a nonnegative upper bound, one per member of a batch

INF = math.inf
TINY = 5e-324  # the smallest subnormal float64
NORMAL = 2.0**-1022  # the smallest normal float64
_SLACK, _RELATIVE = 2.0**-44, 2.0**-50
_NARROW = 2.0**-47  # above log2(1 + 2^-50) = 1.3e-15: see magnitudes


def _up(x: np.ndarray) -> Bound:
    out = np.array(x, dtype=np.float64)
    finite = np.isfinite(out)
    out[finite] += _SLACK + np.abs(out[finite]) * _RELATIVE
    out[np.isnan(out)] = INF
    return out


# One-member batches (an output whose elements are each their own expression: a matrix product, a
# reduction, an optimizer's step) take the same arithmetic on Python floats: numpy's overhead on an
# array of one is some microseconds a call, a float operation a tenth of one.


def _one(*xs: np.ndarray | float) -> bool:
    for x in xs:
        if not (x.__class__ is float or x.shape == (1,)):
            return False
    return True


def _item(x: np.ndarray | float) -> float:
    return x if x.__class__ is float else x.item()


def _up1(v: float) -> float:
    if v != v:
        return INF  # nan: no bound
    return v + _SLACK + abs(v) * _RELATIVE if -INF < v < INF else v


def _add1(a: float, b: float) -> float:
    if a != a or b != b:
        return INF  # (a nan is no bound)
    if a == -INF or b == INF:
        return b if a == -INF else INF
    if b == -INF or a == INF:
        return a
    hi, lo = (a, b) if a >= b else (b, a)
    return _up1(hi + math.log1p(2.0 ** (lo - hi)) / _LN2)


_LN2 = math.log(2.0)


def zeros(n: int) -> Bound:
    return np.full(n, -INF)


def ones(n: int) -> Bound:
    return np.zeros(n)


def nonzero(b: Bound) -> np.ndarray:
    return b > -INF


def bounded(b: Bound) -> np.ndarray:
    """Which bounds are finite (an exact 0 is)."""
    return b < INF


def log(c: float) -> float:
    """log2 of an upper bound of a float constant c >= 0."""
    if c == 0:
        return -INF
    return math.log2(c) + _SLACK + abs(math.log2(c)) * _RELATIVE if c < INF else INF


def add(*terms: np.ndarray) -> Bound:
    """An upper bound of the sum of the terms, left to right."""
    if _one(*terms):
        total = _item(terms[0])
        for t in terms[1:]:
            total = _add1(total, _item(t))
        return np.array([total])
    total = np.asarray(terms[0], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for t in terms[1:]:
            total = _up(np.logaddexp2(total, t))
    return total


def mul(a: np.ndarray | float, b: np.ndarray | float) -> Bound:
    """An upper bound of a * b (0 * inf is no bound)."""
    if _one(a, b):
        x, y = _item(a), _item(b)
        return np.array([INF if x + y != x + y else _up1(x + y)])
    with np.errstate(invalid="ignore"):
        return _up(np.add(a, b))


def scale(c: float, b: np.ndarray) -> Bound:
    """An upper bound of the float constant c >= 0 times b."""
    return mul(log(c), b)


def div(a: np.ndarray, b: np.ndarray) -> Bound:
    """An upper bound of a / b, for b a lower bound of the divisor (no bound where it may be 0)."""
    if _one(a, b):
        x, y = _item(a), _item(b)
        return np.array([INF if x - y != x - y else _up1(x - y)])
    with np.errstate(invalid="ignore"):
        return _up(np.subtract(a, b))


def maximum(columns: Sequence[np.ndarray]) -> Bound:
    out = np.array(columns[0], dtype=np.float64)
    for c in columns[1:]:
        out = np.maximum(out, c)  # (a nan, no bound, stays one: +inf below)
    out[np.isnan(out)] = INF
    return out


def _log2_of(x: arb) -> float:
    """log2 of an arb that is exact (an endpoint), finite and not 0, to nearest."""
    f = float(x)
    if NORMAL <= abs(f) < INF:  # (a subnormal float holds fewer bits)
        return math.log2(abs(f))
    man, exp = x.man_exp()  # past float64's range
    m, shift = abs(int(man)), 0
    if m.bit_length() > 64:  # (math.log2 of a long integer loses accuracy with its length)
        shift = m.bit_length() - 64
        m = (m + (1 << (shift - 1))) >> shift  # to nearest
    return math.log2(m) + shift + int(exp)


def magnitudes(column: Sequence[arb]) -> Bound:
    """log2 of an upper bound of |x| for each ball: -inf where x is exactly 0, +inf where it is not
    finite (a nan, an infinity)."""
    if len(column) == 1:
        return np.array([_magnitude1(column[0])])
    # from the midpoint as a float where the ball is narrow: a radius of at most 2^-51 of the
    # midpoint (52 bits of relative accuracy, one to spare), and the midpoint's float (Arb rounds
    # it toward 0, within 2^-52 of it where it is normal), give |x| <= |float(x)| (1 + 2^-50), whose
    # log2 is under _NARROW; two cheap calls a ball instead of abs_upper's conversion
    floats = np.abs(np.array([float(x) for x in column], dtype=np.float64))
    narrow = np.array([x.rel_accuracy_bits() >= 52 for x in column], dtype=bool)
    narrow &= (floats >= NORMAL) & (floats < INF)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(floats) + _NARROW
    for k in np.flatnonzero(~narrow).tolist():
        x = column[k]
        if x.is_zero():
            out[k] = -INF
        elif not x.is_finite():
            out[k] = INF
        else:
            upper = float(x.abs_upper())
            out[k] = math.log2(upper) if NORMAL <= upper < INF else _log2_of(x.abs_upper())
    return _up(out)


def _magnitude1(x: arb) -> float:
    f = float(x.abs_upper())
    if NORMAL <= f < INF:
        return _up1(math.log2(f))
    return -INF if x.is_zero() else (_up1(_log2_of(x.abs_upper())) if x.is_finite() else INF)


def lower_magnitudes(column: Sequence[arb]) -> Bound:
    """log2 of a lower bound of |x| for each ball (-inf where the ball contains 0 or is not finite)."""
    out = np.full(len(column), -INF)
    for k, x in enumerate(column):
        if x.is_finite():
            low = x.abs_lower()
            if not low.is_zero():
                out[k] = _log2_of(low)
    finite = np.isfinite(out)
    out[finite] -= _SLACK + np.abs(out[finite]) * _RELATIVE
    return out


def to_floats(b: Bound) -> np.ndarray:
    """The bounds as floats, rounded up: inf past float64's range, the smallest subnormal for a
    nonzero bound below it."""
    up = _up(np.asarray(b, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore"):
        y = np.exp2(up)
    y = np.nextafter(y, INF, where=(y > 0) & (y < INF), out=y)
    low = (up < -1022) & (up > -INF)
    if low.any():  # below the normal range: exp2 in its normal range, then whole subnormals, rounded up
        units = np.exp2(up[low] + 1074) * (1 + 2.0**-40)
        y[low] = np.maximum(np.ceil(units), 1.0) * TINY
    return y


def to_float(b: float) -> float:
    return float(to_floats(np.array([b]))[0])


# ---------------------------------------------------------------- one number at a time (Python floats)


def of(x: arb) -> float:
    """An upper bound of |x| as a float (inf where it is not finite or past float64's range)."""
    m = float(x.abs_upper())
    if m > 0:
        return math.nextafter(m, INF)
    if m == 0:
        return 0.0 if x.is_zero() else TINY
    return INF  # nan


def fmul(a: float, b: float) -> float:
    """An upper bound of a * b for nonnegative floats (inf for 0 * inf)."""
    if a == 0 or b == 0:
        return 0.0 if a == a and b == b and not (math.isinf(a) or math.isinf(b)) else INF
    p = a * b
    return math.nextafter(p, INF) if p > 0 else (TINY if p == 0 else INF)


def fadd(a: float, b: float) -> float:
    """An upper bound of a + b for nonnegative floats (below the normal range the sum is exact)."""
    s = a + b
    if s >= NORMAL:
        return math.nextafter(s, INF)
    return s if s >= 0 else INF  # a nan is no bound
