"""Floating-point formats as exact arithmetic: rounding exact rationals to a dtype, and ulps.

Every number a case file gives is exact (a decimal or a rational). Torch receives that number
rounded to the case's dtype; the reference is evaluated at exactly that binary value. This
module owns that rounding and the unit-in-the-last-place arithmetic the comparator reports in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754 style binary format: `precision` significand bits (hidden bit included)."""

    name: str
    precision: int
    emin: int  # exponent of the smallest normal number
    emax: int  # exponent of the largest finite number

    @property
    def unit_roundoff(self) -> float:
        """u = 2**-p: the largest relative error of one correctly rounded operation."""
        return math.ldexp(1.0, -self.precision)

    @property
    def smallest_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def largest(self) -> Fraction:
        return Fraction(2 ** self.precision - 1) * Fraction(2) ** (self.emax - self.precision + 1)


FORMATS: dict[str, FloatFormat] = {
    "float64": FloatFormat("float64", 53, -1022, 1023),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
}


def round_to_format(q: Fraction, fmt: FloatFormat) -> Fraction | float:
    """Round an exact rational to the nearest value of `fmt` (ties to even).

    Returns an exact Fraction, or +-inf (a float) on overflow. No double rounding: the work is
    done on integers.
    """
    if q == 0:
        return Fraction(0)
    fast = _from_float64(q, fmt)
    return fast if fast is not None else round_exactly(q, fmt)


def round_exactly(q: Fraction, fmt: FloatFormat) -> Fraction | float:
    """round_to_format on integers alone, for any rational."""
    if q == 0:
        return Fraction(0)
    sign = -1 if q < 0 else 1
    a = abs(q)
    # exponent e with 2**e <= a < 2**(e+1)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    quantum_exp = max(e, fmt.emin) - fmt.precision + 1
    scaled = a / Fraction(2) ** quantum_exp
    n, rem = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rem
    if twice > scaled.denominator or (twice == scaled.denominator and n % 2 == 1):
        n += 1
    result = Fraction(n) * Fraction(2) ** quantum_exp
    if result > fmt.largest:
        return sign * math.inf
    return sign * result


_NUMPY_TYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def _from_float64(q: Fraction, fmt: FloatFormat) -> Fraction | float | None:
    """The common case, quickly: q is a float64 (a sampled input) and numpy rounds it to `fmt`
    correctly (one rounding from the exact value). None when that does not apply."""
    kind = _NUMPY_TYPES.get(fmt.name)
    if kind is None or FORMATS.get(fmt.name) != fmt:
        return None
    try:
        f = float(q)  # correctly rounded (integer true division)
    except OverflowError:
        return None
    if not math.isfinite(f) or f.as_integer_ratio() != (q.numerator, q.denominator):
        return None  # q is not a float64
    with np.errstate(over="ignore"):
        r = float(kind(f))
    return r if math.isinf(r) else (q if r == f else Fraction(r))


def round_doubles(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """float64 values rounded to `fmt` (as float64; +-inf on overflow)."""
    values = np.asarray(values, dtype=np.float64)
    kind = _NUMPY_TYPES.get(fmt.name)
    if kind is not None and FORMATS.get(fmt.name) == fmt:
        with np.errstate(over="ignore"):
            return values.astype(kind).astype(np.float64)
    return np.array([float(round_exactly(Fraction(v), fmt)) if math.isfinite(v) else v
                     for v in values.ravel().tolist()]).reshape(values.shape)


def round_numbers(values: list[Fraction], fmt: FloatFormat) -> np.ndarray:
    """Exact numbers rounded to `fmt`, as float64 (+-inf on overflow); quick when they are doubles."""
    doubles = []
    for q in values:
        n, d = q.numerator, q.denominator
        if d & (d - 1) or n.bit_length() > 53 or d.bit_length() > 1075:
            break  # not a double: a denominator not a power of two, too many digits, or below 2**-1074
        doubles.append(n / d)  # exact (subnormals included: a multiple of 2**-1074)
    else:
        return round_doubles(np.array(doubles, dtype=np.float64), fmt)
    return np.array([float(round_to_format(q, fmt)) for q in values], dtype=np.float64)


def ulp(magnitude: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """The spacing of `fmt` at |magnitude| (elementwise, float64 in and out).

    For |x| in [2**e, 2**(e+1)) that is 2**(e-p+1); below the normal range it is the subnormal
    spacing. Infinite or nan magnitudes give nan.
    """
    m = np.abs(np.asarray(magnitude, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        _, exp = np.frexp(m)  # m = f * 2**exp with f in [0.5, 1)
    e = np.where(m == 0, fmt.emin, np.maximum(exp.astype(np.int64) - 1, fmt.emin))
    spacing = np.ldexp(1.0, (e - fmt.precision + 1).astype(np.int64))
    return np.where(np.isfinite(m), spacing, np.nan)


# ---------------------------------------------------------------- literals from untrusted text

MAX_LITERAL_DIGITS = 1_000  # significant digits of one number as written
MAX_LITERAL_EXPONENT = 1_100  # |decimal exponent| of its leading digit: past it every format reads 0 or inf
_LARGEST_DOUBLE = FORMATS["float64"].largest

_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_BASED = re.compile(r"([+-]?)0([xXoObB])([0-9a-fA-F]+)")


class LiteralError(ValueError):
    """A number as written that is not read: too many digits, out of range, or not a number."""


def read_literal(text: str) -> Fraction:
    """The exact value of a number written in decimal (`12`, `-0.5`, `1.5e-3`, `_` separators) or
    with a base prefix (`0x10`, `0o17`, `0b101`), bounded before any big integer is built: at most
    MAX_LITERAL_DIGITS digits, and a magnitude inside float64's finite range (a number past it is
    infinite to torch; write `.inf`) and above 10**-MAX_LITERAL_EXPONENT."""
    clean = text.strip().replace("_", "")
    if len(clean) > MAX_LITERAL_DIGITS + 40:
        raise LiteralError(f"number {_short(text)} has {len(clean)} characters (limit {MAX_LITERAL_DIGITS} digits)")
    based = _BASED.fullmatch(clean)
    if based:
        sign, base, digits = based.groups()
        try:
            value = int(digits, {"x": 16, "o": 8, "b": 2}[base.lower()])
        except ValueError:
            raise LiteralError(f"cannot read number {_short(text)}") from None
        return _in_range(Fraction(-value if sign == "-" else value), text)
    match = _DECIMAL.fullmatch(clean)
    if not match or not (match.group(2) or match.group(3)):
        raise LiteralError(f"cannot read number {_short(text)}")
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    if len(digits) > MAX_LITERAL_DIGITS:
        raise LiteralError(f"number {_short(text)} has {len(digits)} significant digits (limit {MAX_LITERAL_DIGITS})")
    if len(exponent or "") > 8:
        raise LiteralError(f"number {_short(text)} has an exponent of {len(exponent)} digits: out of range")
    e = int(exponent or 0) - len(fraction)
    if not digits:
        return Fraction(0)
    digits = digits.rstrip("0") or "0"
    e += len((whole + fraction).lstrip("0")) - len(digits)  # trailing zeros into the exponent
    leading = e + len(digits) - 1  # the decimal exponent of the leading digit
    if leading > 309 or leading < -MAX_LITERAL_EXPONENT:
        raise _out_of_range(text)
    value = Fraction(int(digits)) * (Fraction(10) ** e)
    return _in_range(-value if sign == "-" else value, text)


def _in_range(value: Fraction, text: str) -> Fraction:
    if abs(value) > _LARGEST_DOUBLE:
        raise _out_of_range(text)
    return value


def _out_of_range(text: str) -> LiteralError:
    return LiteralError(f"number {_short(text)} is out of range (finite numbers lie within float64's"
                        f" +-1.8e308 and above 1e-{MAX_LITERAL_EXPONENT}; write .inf for infinity)")


def _short(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= 24 else f"{text[:10]}...{text[-10:]}")
