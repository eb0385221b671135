"""Complex inputs: the split into real parts, Wirtinger derivatives, holomorphy, the sampler, the loader."""

import cmath

import numpy as np
import pytest
import sympy
from hypothesis import given, settings

from harness import complex as cx
from harness.cases import COMPLEX_ONLY, BadCase, load_text
from harness.catalogue import OPS
from harness.expr import parse
from harness.numbers import FORMATS, ulp
from harness.strategies import complex_points

Z = [complex(1.5, -0.5), complex(-2.0, 0.25), complex(-0.75, -1.25), complex(0.3, 2.0)]
PYTHON = {
    "exp(z)": cmath.exp, "log(z)": cmath.log, "sqrt(z)": cmath.sqrt, "sin(z)": cmath.sin, "cos(z)": cmath.cos,
    "abs(z)": abs, "angle(z)": cmath.phase, "sgn(z)": lambda z: z / abs(z), "conj(z)": lambda z: z.conjugate(),
    "real(z) * imag(z)": lambda z: z.real * z.imag, "pow(z, 3) - 1/z": lambda z: z**3 - 1 / z,
    "pow(z, 0.5) * z": lambda z: z**0.5 * z, "z * conj(z) + reciprocal(z)": lambda z: z * z.conjugate() + 1 / z,
}


def _build(text, names=("z",)):
    return cx.build("y", parse(text, ops=set(OPS) | COMPLEX_ONLY, names=set(names)), list(names))


@pytest.mark.parametrize("text", sorted(PYTHON))
def test_the_parts_are_the_principal_values(text):
    out = _build(text)
    re_s, im_s = out.symbols["z"]
    for z in Z:
        at = {re_s: sympy.Float(z.real, 30), im_s: sympy.Float(z.imag, 30)}
        got = complex(float(out.parts[0].subs(at).evalf(30)), float(out.parts[1].subs(at).evalf(30)))
        assert abs(got - PYTHON[text](z)) <= 1e-12 * max(1.0, abs(got)), (text, z)


@pytest.mark.parametrize("text, holomorphic", [("exp(z)", True), ("log(z)", True), ("sqrt(z)", True),
                                               ("pow(z, 3) - 1/z", True), ("sin(z) * z", True),
                                               ("abs(z)", False), ("angle(z)", False), ("sgn(z)", False),
                                               ("conj(z)", False), ("real(z)", False)])
def test_holomorphy_is_cauchy_riemann(text, holomorphic):
    report = cx.holomorphy(_build(text))
    assert report.startswith("holomorphic" if holomorphic else "not holomorphic"), report


def test_wirtinger_derivatives_of_known_functions():
    out = _build("z * conj(z)")  # |z|^2: d/dz = conj(z), d/dz-bar = z
    x, y = out.symbols["z"]
    dz, dzbar = (sympy.simplify(d) for d in cx.wirtinger(out, "z"))
    assert sympy.simplify(dz - (x - sympy.I * y)) == 0 and sympy.simplify(dzbar - (x + sympy.I * y)) == 0


@settings(max_examples=200, deadline=None)
@given(complex_points(dtype="complex64", max_modulus=4.0))
def test_the_sampler_draws_genuinely_complex_points(z):
    assert z.real != 0 and z.imag != 0 and abs(z) <= 4.0 * (1 + 1e-6)
    assert np.float32(z.real) == z.real and np.float32(z.imag) == z.imag  # exact in complex64's parts


def test_sampled_complex_inputs_have_both_parts():
    (case,) = load_text("name: c\ninputs: {z: {shape: [200], sample: {uniform: [-2, 2]}}}\nexpr: exp(z)\n"
                        "checks: [value]\ndtype: complex128\n")
    re = [float(n.value) for n in case.inputs[0].points[0]]
    im = [float(n.value) for n in case.inputs[0].imag[0]]
    assert all(r != 0 and i != 0 for r, i in zip(re, im)) and len(set(re) & set(im)) == 0


@pytest.mark.parametrize("text, message", [
    ("name: c\ninputs: {x: 0.5}\nexpr: angle(x)\nchecks: [value]\n", "angle() needs a complex dtype"),
    ("name: c\ninputs: {z: 0.5}\nexpr: softplus(z)\nchecks: [value]\ndtype: complex128\n",
     "softplus() is not supported on complex inputs"),
    ("name: c\ninputs: {z: 0.5}\nexpr: exp(z)\nchecks: [value]\ndtype: [complex128, float64]\n",
     "either complex (complex64, complex128) or real"),
    ("name: c\ninputs: {z: {points: [{re: 1, imag: 2}]}}\nexpr: exp(z)\nchecks: [value]\ndtype: complex64\n",
     "a complex number is {re: a, im: b}"),
])
def test_bad_complex_cases_say_where_and_what(text, message):
    (case,) = load_text(text, file="c.yaml")
    assert isinstance(case, BadCase) and message in case.message and case.message.startswith("c.yaml:")


def test_a_complex64_case_is_compared_in_float32_ulps(run_case):
    (result,) = run_case("""
        name: c
        inputs: {z: {points: [{re: 0.5, im: -1.25}]}}
        expr: exp(z) * z
        checks: [value, vjp, grad2, wirtinger]
        dtype: complex64
    """)
    assert result.status == "pass", result.message
    parts = {c.part for c in result.comparisons}
    assert {"y.re", "y.im", "dy.re/dz.re", "dy.im/dz.im", "dy/dz.re", "dy/dz-bar.im"} <= parts
    for c in result.comparisons:  # errors are counted in float32's spacing at the exact value
        w = c.worst
        if w is not None and w.ulps > 0 and w.exact != 0:
            assert w.abs_error / w.ulps == pytest.approx(float(ulp(np.array([w.exact]), FORMATS["float32"])[0]))


def test_show_prints_parts_wirtinger_derivatives_and_holomorphy():
    from harness.show import show_case

    (case,) = load_text("name: s\ninputs: {z: {points: [{re: 1, im: 2}]}}\nexpr: exp(z)\nchecks: [wirtinger]\n"
                        "dtype: complex128\n")
    text = show_case(case)
    assert "re = exp(z.re)*cos(z.im)" in text and "dy/dz-bar = 0" in text
    assert "holomorphic (Cauchy-Riemann holds)" in text and "[complex128] pass" in text


def test_real_tensors_follow_real_semantics(run_case):
    # abs, real and imag give real tensors in torch: log, sqrt and non-integer powers of a negative
    # one are nan there (undefined), not the complex principal values
    (result,) = run_case("""
        name: c
        inputs: {z: {points: [{re: 1, im: 2}, {re: 3, im: 4}]}}
        outputs: {s: sqrt(abs(z) - 3), l: log(real(z) - 2), p: "pow(imag(z) - 3, 0.5)", q: sqrt(z * conj(z) - 9)}
        checks: [value, vjp, grad2]
        dtype: complex128
    """)
    assert result.status == "undefined", result.message
    assert not any(c.status in ("fail", "error") for c in result.comparisons)
    undefined = {c.part for c in result.comparisons if c.status == "undefined" and c.check == "value"}
    assert {"s", "l", "p"} <= undefined  # at z = 1 + 2i (and q: z * conj(z) is complex in torch: no nan)


def test_cancelling_terms_and_conjugate_views(run_case):
    # z/z is 1 to SymPy but (x*x + y*y)/(x*x + y*y) to torch: the unevaluated parts give the floor;
    # imag(conj(z / w)) needs a physical conjugate for torch.func.vmap
    (result,) = run_case("""
        name: c
        inputs: {z: {shape: [8], sample: {uniform: [-2, 2]}}, w: {shape: [8], sample: {uniform: [-2, 2]}}}
        outputs: {a: "reciprocal(2 / w + z / z)", b: imag(conj(z / w))}
        checks: [value, vjp, wirtinger]
        dtype: [complex128]
    """)
    assert result.status == "pass", result.message
