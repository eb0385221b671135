"""The elementwise ops: arithmetic, smooth functions, piecewise ones with their kinks, the
comparisons `where` takes, and `where` itself. Each entry: the torch function (by name), the exact
definition (SymPy; `Piecewise` for piecewise ops, whose derivatives are taken branch by branch),
the domain, kinks with torch's convention there, the ulps torch's kernel is held to, and the
critical points where torch is most likely wrong.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import sympy

from harness.catalogue.markers import (
    as_sympy,
    ceil_fn,
    erfc_neg,
    floor_fn,
    jump,
    kink_sign,
    kink_step,
    loggamma_abs,
    reverse_ratio,
    round_fn,
    trunc_fn,
)
from harness.catalogue.spec import Arithmetic, Elementwise, Kink, Op, Predicate, T, Where, kw
from harness.numbers import FloatFormat

S = sympy.S
X = "all reals"


def _sub(a: sympy.Expr, b: sympy.Expr, evaluate: bool = True) -> sympy.Expr:
    return sympy.Add(a, sympy.Mul(-1, b, evaluate=evaluate), evaluate=evaluate)


def _div(a: sympy.Expr, b: sympy.Expr, evaluate: bool = True) -> sympy.Expr:
    return sympy.Mul(a, sympy.Pow(b, -1, evaluate=evaluate), evaluate=evaluate)


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _exp_overflow(fmt: FloatFormat) -> float:
    """x where exp(x) leaves the format's range (709.78 in float64, 88.72 in float32)."""
    return math.log(float(fmt.largest))


def _exp_underflow(fmt: FloatFormat) -> tuple[float, float]:
    """x where exp(x) drops below the normal range, and below the smallest subnormal."""
    return math.log(2) * fmt.emin, math.log(fmt.smallest_subnormal)


def _rounds_to_one(fmt: FloatFormat) -> float:
    """x where 1 + exp(-x) rounds to 1: sigmoid(x) is 1 and y*(1 - y) loses everything."""
    return fmt.precision * math.log(2)


def _hyperbolic(fmt: FloatFormat) -> tuple[float, ...]:
    """Where sinh and cosh leave the range: exp's threshold plus ln 2."""
    t = _exp_overflow(fmt) + math.log(2)
    return (t, -t)


def _exp_like(fmt: FloatFormat) -> tuple[float, ...]:
    return (_exp_overflow(fmt), *_exp_underflow(fmt))


def _sigmoid_like(fmt: FloatFormat) -> tuple[float, ...]:
    t = _rounds_to_one(fmt)
    return (t, -t, t + 4, -t - 4, -_exp_overflow(fmt), _exp_overflow(fmt), -_exp_underflow(fmt)[0])


def _tanh_like(fmt: FloatFormat) -> tuple[float, ...]:
    t = (fmt.precision + 1) * math.log(2) / 2  # tanh(x) rounds to 1: 1 - y*y is 0
    return (t, -t, t + 2, -t - 2)


@functools.cache
def _normal_tail(fmt: FloatFormat) -> tuple[float, ...]:
    """Where ndtr(x) = erfc(-x/sqrt(2))/2 drops below the unit roundoff (1 + erf cancels) and below
    the normal range (erfc underflows), and a far tail (log_ndtr's derivatives at -1e4)."""
    def below(level: float) -> float:
        lo, hi = -1e3, 0.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if math.erfc(-mid / math.sqrt(2)) / 2 < level else (lo, mid)
        return hi
    u, tiny = fmt.unit_roundoff, math.ldexp(1.0, fmt.emin)
    return (below(u), 1.25 * below(u), below(tiny), -1e4)


def _at(value: Any) -> Callable[..., sympy.Expr]:
    return lambda *kw: as_sympy(value)


SELU_ALPHA = sympy.Rational("1.6732632423543772848170429916717")
SELU_SCALE = sympy.Rational("1.0507009873554804934193349852946")
INF = sympy.oo


def _pw(*pieces: tuple[sympy.Expr, Any]) -> sympy.Expr:
    return sympy.Piecewise(*pieces)


ARITHMETIC: tuple[Op, ...] = (
    Arithmetic("add", T("add"), lambda a, b, evaluate=True: sympy.Add(a, b, evaluate=evaluate), X,
       arity=2, ulps=0.5, doc="a + b"),
    Arithmetic("sub", T("sub"), _sub, X, arity=2, ulps=0.5, doc="a - b"),
    Arithmetic("mul", T("mul"), lambda a, b, evaluate=True: sympy.Mul(a, b, evaluate=evaluate), X,
       arity=2, ulps=0.5, doc="a * b"),
    Arithmetic("div", T("div"), _div, "b != 0", arity=2, ulps=0.5, doc="a / b"),
    Arithmetic("neg", T("neg"), lambda a, evaluate=True: sympy.Mul(-1, a, evaluate=evaluate), X,
       ulps=0.0, doc="-a"),
    Arithmetic("pow", T("pow"), lambda a, b, evaluate=True: sympy.Pow(a, b, evaluate=evaluate),
       "a > 0, or an integer b (a != 0 for b < 0); the derivative at a = 0 needs b >= 1",
       arity=2, ulps=1.0, doc="a ** b, pow(a, b)"),
)

SMOOTH: tuple[Op, ...] = (
    Elementwise("exp", T("exp"), sympy.exp, X, critical=_exp_like, outside="inf on overflow"),
    Elementwise("exp2", T("exp2"), lambda x: 2**x, X,
       critical=lambda f: (f.emax + 1.0, f.emin, f.emin - f.precision)),
    Elementwise("expm1", T("expm1"), lambda x: sympy.exp(x) - 1, X,
       critical=lambda f: (_exp_overflow(f), -_rounds_to_one(f), -_rounds_to_one(f) - 4),
       doc="exp(x) - 1; torch's derivative is y + 1, which loses exp(x) below about -37"),
    Elementwise("log", T("log"), sympy.log, "x > 0", critical=lambda f: (0.0,), outside="-inf at 0, nan below"),
    Elementwise("log2", T("log2"), lambda x: sympy.log(x) / sympy.log(2), "x > 0", critical=lambda f: (0.0,)),
    Elementwise("log10", T("log10"), lambda x: sympy.log(x) / sympy.log(10), "x > 0", critical=lambda f: (0.0,)),
    Elementwise("log1p", T("log1p"), lambda x: sympy.log(1 + x), "x > -1"),
    Elementwise("sqrt", T("sqrt"), sympy.sqrt, "x >= 0 (the derivative needs x > 0)", critical=lambda f: (0.0,),
        ulps=0.5),
    Elementwise("rsqrt", T("rsqrt"), lambda x: 1 / sympy.sqrt(x), "x > 0", critical=lambda f: (0.0,)),
    Elementwise("reciprocal", T("reciprocal"), lambda x: 1 / x, "x != 0", ulps=0.5),
    Elementwise("square", T("square"), lambda x: x**2, X, ulps=0.5),
    Elementwise("sin", T("sin"), sympy.sin, X),
    Elementwise("cos", T("cos"), sympy.cos, X),
    Elementwise("tan", T("tan"), sympy.tan, "x != pi/2 + k*pi"),
    Elementwise("asin", T("asin"), sympy.asin, "-1 <= x <= 1 (the derivative needs |x| < 1)"),
    Elementwise("acos", T("acos"), sympy.acos, "-1 <= x <= 1 (the derivative needs |x| < 1)"),
    Elementwise("atan", T("atan"), sympy.atan, X),
    Elementwise("sinh", T("sinh"), sympy.sinh, X, critical=_hyperbolic),
    Elementwise("cosh", T("cosh"), sympy.cosh, X, critical=_hyperbolic),
    Elementwise("tanh", T("tanh"), sympy.tanh, X, critical=_tanh_like),
    Elementwise("asinh", T("asinh"), sympy.asinh, X),
    Elementwise("acosh", T("acosh"), sympy.acosh, "x >= 1 (the derivative needs x > 1)"),
    Elementwise("atanh", T("atanh"), sympy.atanh, "-1 < x < 1"),
    Elementwise("sinc", T("sinc"), lambda x: sympy.sin(sympy.pi * x) / (sympy.pi * x), X,
       doc="sin(pi*x)/(pi*x), 1 at 0 (a removable singularity: the reference takes the limit)"),
    Elementwise("erf", T("erf"), sympy.erf, X,
        critical=lambda f: tuple(-x / math.sqrt(2) for x in _normal_tail(f)[:3])),
    Elementwise("erfc", T("erfc"), sympy.erfc, X,
        critical=lambda f: tuple(-x / math.sqrt(2) for x in _normal_tail(f)[:3])),
    Elementwise("erfinv", T("erfinv"), sympy.erfinv, "-1 < x < 1",),
    Elementwise("lgamma", T("lgamma"), loggamma_abs, "x not in {0, -1, -2, ...}", doc="log|Gamma(x)|",
       outside="inf at the poles", ulps=(4, 4)),
    Elementwise("digamma", T("digamma"), lambda x: sympy.polygamma(0, x), "x not in {0, -1, -2, ...}",
       ulps=(4, 4)),
    Elementwise("polygamma", T("polygamma"), lambda x, n: sympy.polygamma(n, x),
       "n a whole number >= 0 (given first, as a literal); x not in {0, -1, -2, ...}",
       leading=("n",), keywords=(("n", Fraction(0)),), ulps=(4, 4), doc="polygamma(n, x)"),
    Elementwise("i0", T("i0"), lambda x: sympy.besseli(0, x), X, ulps=(4, 4), doc="modified Bessel I0"),
    Elementwise("special.i0e", T("special.i0e"),
       lambda x: _pw((sympy.exp(x) * sympy.besseli(0, x), x < 0), (sympy.exp(-x) * sympy.besseli(0, x), True)),
       X, kinks=(Kink("x = 0", "i0e'(0) = 0 (one-sided slopes -+1), i0e''(0) = 1/2 (exact 3/2 both sides)", at=_at(0),
                      orders=((1, S.Zero), (2, S.Half))),),
       ulps=(4, 4), doc="exp(-|x|)*I0(x)"),
    Elementwise("special.i1", T("special.i1"), lambda x: sympy.besseli(1, x), X,
       ulps=(4, 4), doc="modified Bessel I1"),
    Elementwise("special.i1e", T("special.i1e"),
       lambda x: _pw((sympy.exp(x) * sympy.besseli(1, x), x < 0), (sympy.exp(-x) * sympy.besseli(1, x), True)),
       X, kinks=(Kink("x = 0", "smooth to first order (1/2); the second derivative jumps from 1 to -1: torch gives 0",
                      at=_at(0), orders=((2, S.Zero),)),),
       ulps=(4, 4), doc="exp(-|x|)*I1(x)"),
    Elementwise("special.ndtr", T("special.ndtr"), lambda x: erfc_neg(x / sympy.sqrt(2)) / 2, X, critical=_normal_tail,
       doc="the standard normal CDF"),
    Elementwise("special.ndtri", T("special.ndtri"), lambda p: sympy.sqrt(2) * sympy.erfinv(2 * p - 1), "0 < p < 1",
       doc="the inverse of ndtr"),
    Elementwise("special.log_ndtr", T("special.log_ndtr"), lambda x: sympy.log(erfc_neg(x / sympy.sqrt(2)) / 2), X,
       critical=_normal_tail,
       ulps=(16, 16), doc="log(ndtr(x))"),
    Elementwise("special.erfcx", T("special.erfcx"), lambda x: sympy.exp(x**2) * sympy.erfc(x), X,
       doc="exp(x^2)*erfc(x)"),
    Elementwise("special.entr", T("special.entr"), lambda x: -x * sympy.log(x),
       "x >= 0 (-inf below; the derivative needs x > 0)",
       doc="-x*log(x), 0 at 0"),
    Elementwise("logit", kw("logit"), lambda x: sympy.log(x / (1 - x)), "0 < x < 1"),
    Elementwise("sigmoid", T("sigmoid"), _sigmoid, X, critical=_sigmoid_like, doc="1/(1 + exp(-x))"),
    Elementwise("logsigmoid", T("nn.functional.logsigmoid"), lambda x: -sympy.log(1 + sympy.exp(-x)), X,
        critical=_sigmoid_like,
       doc="log(sigmoid(x))"),
    Elementwise("softplus", kw("nn.functional.softplus", "beta", "threshold"),
       lambda x, beta, threshold: sympy.log(1 + sympy.exp(beta * x)) / beta, X,
       keywords=(("beta", Fraction(1)), ("threshold", Fraction(20))), critical=lambda f: (20.0, *_sigmoid_like(f)),
       doc="log(1 + exp(beta*x))/beta; torch returns x itself where beta*x > threshold"),
    Elementwise("silu", T("nn.functional.silu"), lambda x: x * _sigmoid(x), X, critical=_sigmoid_like,
        doc="x*sigmoid(x)"),
    Elementwise("mish", T("nn.functional.mish"), lambda x: x * sympy.tanh(sympy.log(1 + sympy.exp(x))), X,
       critical=lambda f: (20.0, *_sigmoid_like(f)),
       doc="x*tanh(softplus(x))"),
    Elementwise("softsign", T("nn.functional.softsign"), lambda x: _pw((x / (1 - x), x < 0), (x / (1 + x), True)), X,
       kinks=(Kink("x = 0", "smooth to first order; torch's second derivative there is 0", at=_at(0),
                   orders=((2, S.Zero),)),),
       doc="x/(1 + |x|)"),
    Elementwise("tanhshrink", T("nn.functional.tanhshrink"), lambda x: x - sympy.tanh(x), X,
       doc="x - tanh(x)"),
    Elementwise("gelu", kw("nn.functional.gelu", "approximate"),
        lambda x: x * (1 + sympy.erf(x / sympy.sqrt(2))) / 2, X,
       critical=_normal_tail,
       doc="x*ndtr(x); gelu(x, approximate='tanh') is the tanh form", keywords=(("approximate", "none"),)),
    Elementwise("gelu_tanh", T("nn.functional.gelu", lambda gelu: lambda x: gelu(x, approximate="tanh")),
       lambda x: x * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (x + sympy.Rational(44715, 10**6) * x**3))) / 2,
       X, doc="gelu(x, approximate='tanh'): x/2*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3)))"),
    Elementwise("atan2", T("atan2"), sympy.atan2, "(y, x) != (0, 0)", arity=2,
       partials=lambda a, i: (reverse_ratio(a[1], a[0] ** 2 + a[1] ** 2) if i == 0
                              else reverse_ratio(-a[0], a[0] ** 2 + a[1] ** 2)),
       kinks=(Kink("y = x = 0", "torch's gradient there is 0 in reverse mode; forward mode gives nan"),),
       doc="atan2(y, x)"),
    Elementwise("hypot", T("hypot"), lambda x, y: sympy.sqrt(x**2 + y**2), X, arity=2,
       doc="sqrt(x^2 + y^2); at the origin the derivative does not exist and torch gives nan"),
    Elementwise("ldexp", T("ldexp"), lambda x, n: x * 2**n, X, arity=2, ulps=0.5,
       doc="x * 2**n (n a tensor of any real values, as torch allows)"),
    Elementwise("logaddexp", T("logaddexp"), lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)), X, arity=2),
    Elementwise("float_power", T("float_power"), lambda a, b: a**b, "as pow; torch computes in float64", arity=2),
    Elementwise("xlogy", T("xlogy"), lambda x, y: _pw((0, sympy.Eq(x, 0)), (x * sympy.log(y), True)),
       "y > 0, or x = 0 (xlogy(0, y) = 0)", arity=2,
       partials=lambda a, i: sympy.log(a[1]) if i == 0 else a[0] / a[1], doc="x*log(y), 0 where x = 0"),
    Elementwise("special.xlog1py", T("special.xlog1py"), lambda x,
        y: _pw((0, sympy.Eq(x, 0)), (x * sympy.log(1 + y), True)),
       "y > -1, or x = 0", arity=2,
       partials=lambda a, i: sympy.log(1 + a[1]) if i == 0 else a[0] / (1 + a[1]), doc="x*log1p(y), 0 where x = 0"),
)

PIECEWISE: tuple[Op, ...] = (
    Elementwise("relu", T("relu"), lambda x: _pw((0, x <= 0), (x, True)), X, ulps=0.0,
       kinks=(Kink("x = 0", "0 (threshold_backward passes the gradient only where x > 0)", at=_at(0)),),
       doc="max(0, x)"),
    Elementwise("abs", T("abs"), lambda x: _pw((-x, x < 0), (x, True)), X, ulps=0.0,
       kinks=(Kink("x = 0", "0 (torch uses sgn(0) = 0)", at=_at(0), orders=((1, S.Zero),)),), doc="|x|"),
    Elementwise("sign", T("sign"), lambda x: _pw((-1, x < 0), (0, sympy.Eq(x, 0)), (1, True)), X, ulps=0.0,
       kinks=(Kink("x = 0", "0 (the jump's derivative)", at=_at(0)),)),
    Elementwise("relu6", T("nn.functional.relu6"), lambda x: _pw((0, x <= 0), (6, x >= 6), (x, True)), X, ulps=0.0,
       kinks=(Kink("x = 0", "0", at=_at(0)), Kink("x = 6", "0", at=_at(6)))),
    Elementwise("leaky_relu", kw("nn.functional.leaky_relu", "negative_slope"), lambda x,
        s: _pw((s * x, x <= 0), (x, True)), X,
       keywords=(("negative_slope", Fraction(1, 100)),), ulps=0.5,
       kinks=(Kink("x = 0", "the negative slope", at=_at(0)),)),
    Elementwise("elu", kw("nn.functional.elu", "alpha"),
       lambda x, alpha: _pw((alpha * (sympy.exp(x) - 1), x <= 0), (x, True)), X,
       keywords=(("alpha", Fraction(1)),),
       kinks=(Kink("x = 0", "alpha (the left slope); second derivative 0", at=_at(0), orders=((-2, S.Zero),)),)),
    Elementwise("selu", T("nn.functional.selu"),
       lambda x: SELU_SCALE * _pw((SELU_ALPHA * (sympy.exp(x) - 1), x <= 0), (x, True)), X,
       kinks=(Kink("x = 0", "scale*alpha (the left slope); second derivative 0", at=_at(0),
                   orders=((-2, S.Zero),)),),
       doc="scale*elu(x, alpha), scale = 1.0507..., alpha = 1.6732..."),
    Elementwise("celu", kw("nn.functional.celu", "alpha"),
       lambda x, alpha: _pw((alpha * (sympy.exp(x / alpha) - 1), x <= 0), (x, True)),
       X, keywords=(("alpha", Fraction(1)),),
       kinks=(Kink("x = 0", "1; second derivative 0", at=_at(0), orders=((-2, S.Zero),)),)),
    Elementwise("hardtanh", kw("nn.functional.hardtanh", "min_val", "max_val"),
       lambda x, lo, hi: _pw((lo, x <= lo), (hi, x >= hi), (x, True)), X, ulps=0.0,
       keywords=(("min_val", Fraction(-1)), ("max_val", Fraction(1))),
       kinks=(Kink("x = min_val", "0", at=lambda lo, hi: lo), Kink("x = max_val", "0", at=lambda lo, hi: hi))),
    Elementwise("hardsigmoid", T("nn.functional.hardsigmoid"),
       lambda x: _pw((0, x <= -3), (1, x >= 3), (x / 6 + S.Half, True)), X,
       kinks=(Kink("x = -3", "0", at=_at(-3)), Kink("x = 3", "0", at=_at(3))),
       doc="clamp(x/6 + 1/2, 0, 1)"),
    Elementwise("hardswish", T("nn.functional.hardswish"),
        lambda x: _pw((0, x <= -3), (x, x >= 3), (x * (x + 3) / 6, True)), X,
       kinks=(Kink("x = -3", "0 (the left slope)", at=_at(-3)), Kink("x = 3", "1 (the right slope)", at=_at(3)))),
    Elementwise("softshrink", kw("nn.functional.softshrink", "lambd"),
       lambda x, lam: _pw((x + lam, x < -lam), (x - lam, x > lam), (0, True)), X,
       keywords=(("lambd", Fraction(1, 2)),), ulps=0.5,
       kinks=(Kink("x = -lambd", "0", at=lambda lam: -lam), Kink("x = lambd", "0", at=lambda lam: lam))),
    Elementwise("hardshrink", kw("nn.functional.hardshrink", "lambd"),
       lambda x, lam: _pw((x, x < -lam), (x, x > lam), (0, True)), X,
       keywords=(("lambd", Fraction(1, 2)),), ulps=0.0,
       kinks=(Kink("x = -lambd", "0 (the value jumps)", at=lambda lam: -lam),
              Kink("x = lambd", "0", at=lambda lam: lam))),
    Elementwise("clamp", kw("clamp", "min", "max"), lambda x, lo, hi: _pw((lo, x < lo), (hi, x > hi), (x, True)), X,
       keywords=(("min", -INF), ("max", INF)), ulps=0.0,
       kinks=(Kink("x = min", "1 (torch 2.13 passes the gradient at the bound)", at=lambda lo, hi: lo),
              Kink("x = max", "1", at=lambda lo, hi: hi)),
       doc="clamp(x, min=, max=)"),
    Elementwise("clamp_tensors", T("clamp"),
       lambda x, lo, hi: _pw((lo, x < lo), (hi, x > hi), (x, True)), "min <= max", arity=3, ulps=0.0,
       partials=lambda a, i: (_pw((0, a[0] < a[1]), (0, a[0] > a[2]), (1, True)) if i == 0
                              else _pw((1, a[0] < a[1]), (0, True)) if i == 1 else _pw((1, a[0] > a[2]), (0, True))),
       kinks=(Kink("x = min or x = max", "1 to x, 0 to the bound (torch 2.13 passes the gradient at a bound)"),),
       doc="torch.clamp(x, min, max) with tensor bounds (clamp(x, min=, max=) takes numbers)"),
    Elementwise("floor", T("floor"), floor_fn, X, ulps=0.0,
       kinks=(Kink("x an integer", "0", at=_at(0), lattice=True),)),
    Elementwise("ceil", T("ceil"), ceil_fn, X, ulps=0.0, kinks=(Kink("x an integer", "0", at=_at(0), lattice=True),)),
    Elementwise("round", T("round"), round_fn, X, ulps=0.0,
       kinks=(Kink("x a half-integer", "0", at=_at(S.Half), lattice=True),), doc="round half to even"),
    Elementwise("frac", T("frac"), lambda x: x - trunc_fn(x), X, ulps=0.0,
       kinks=(Kink("x an integer", "1", at=_at(0), lattice=True),), doc="x - trunc(x)"),
    Elementwise("copysign", T("copysign"), lambda a, b: _pw((sympy.Abs(a), b >= 0), (-sympy.Abs(a), True)),
       "all reals (b = -0.0 gives -|a|, as IEEE)", arity=2, ulps=0.0,
       partials=lambda a, i: (_pw((kink_sign(a[0], 0), a[1] >= 0), (-kink_sign(a[0], 0), True)) if i == 0
                              else jump(a[1], 0)),
       kinks=(Kink("a = 0", "0"), Kink("b = 0", "0 (the jump's derivative)")), doc="|a| with the sign of b"),
    Elementwise("maximum", T("maximum"), sympy.Max, X, arity=2, ulps=0.0,
       partials=lambda a, i: kink_step(a[i] - a[1 - i], S.Half),
       kinks=(Kink("a = b", "1/2 to each"),)),
    Elementwise("minimum", T("minimum"), sympy.Min, X, arity=2, ulps=0.0,
       partials=lambda a, i: kink_step(a[1 - i] - a[i], S.Half),
       kinks=(Kink("a = b", "1/2 to each"),)),
    Elementwise("fmax", T("fmax"), sympy.Max, X, arity=2, ulps=0.0,
       partials=lambda a, i: kink_step(a[i] - a[1 - i], 1 - i),
       kinks=(Kink("a = b", "1 to a, 0 to b"),)),
    Elementwise("fmin", T("fmin"), sympy.Min, X, arity=2, ulps=0.0,
       partials=lambda a, i: kink_step(a[1 - i] - a[i], 1 - i),
       kinks=(Kink("a = b", "1 to a, 0 to b"),)),
)

PREDICATES: tuple[Op, ...] = tuple(
    Predicate(name, T(name), lambda a, b: a - b, "only as the condition of where(...)", arity=2,
       ulps=0.0, doc=text)
    for name, text in (("gt", "a > b"), ("ge", "a >= b"), ("lt", "a < b"), ("le", "a <= b"), ("eq", "a == b"),
                       ("ne", "a != b"))
)

WHERE = Where("where", T("where"), lambda c, a, b: a, X, arity=3, ulps=0.0,
           kinks=(Kink("the condition's two sides equal", "the branch the condition picks"),),
           doc="where(cond, a, b) with cond a comparison such as x > 0")

BY_NAME: dict[str, Op] = {op.name: op for op in (*ARITHMETIC, *SMOOTH, *PIECEWISE, *PREDICATES, WHERE)}
