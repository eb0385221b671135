from fractions import Fraction

import numpy as np
import pytest

from harness.numbers import FORMATS, round_exactly, round_to_format, ulp


@pytest.mark.parametrize("fmt, np_type", [pytest.param("float32", np.float32, id="float32"),
                                          pytest.param("float64", np.float64, id="float64")])
def test_rounding_matches_numpy_on_doubles(fmt, np_type):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 500) * 10.0 ** rng.integers(-45, 39, 500),
                             [1e-45, 7e-46, 1.5e-45, 3.4028235e38, 3.4028236e38, 0.1, -0.1]])
    with np.errstate(over="ignore"):
        for v in values:
            expected = float(np_type(v))
            got = round_to_format(Fraction(float(v)), FORMATS[fmt])
            assert float(got) == expected, v


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_the_quick_path_for_doubles_agrees_with_integer_rounding(fmt):
    # sampled inputs are doubles, rounded by numpy's conversions; the integer path is the reference
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 400) * 2.0 ** rng.integers(-1080, 1020, 400),
                             [5e-324, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 65504.0, 65520.0, 65519.99,
                              1 + 2.0**-11, 1 + 3 * 2.0**-12, 3.4028235e38, 1.7976931348623157e308, -0.1]])
    for v in values:
        q = Fraction(float(v))
        assert round_to_format(q, FORMATS[fmt]) == round_exactly(q, FORMATS[fmt]), v


def test_rounding_is_not_double_rounding():
    # 1 + 2**-24 + 2**-60 is above the float32 midpoint: rounding through float64 would land on
    # the midpoint 1 + 2**-24 and then round to even (1.0); exact rounding gives 1 + 2**-23.
    q = 1 + Fraction(1, 2**24) + Fraction(1, 2**60)
    assert round_to_format(q, FORMATS["float32"]) == 1 + Fraction(1, 2**23)
    assert float(np.float32(float(q))) == 1.0


def test_decimal_is_rounded_exactly():
    assert round_to_format(Fraction(1, 10), FORMATS["float64"]) == Fraction(0.1)
    assert round_to_format(Fraction(-1, 3), FORMATS["float32"]) == Fraction(float(np.float32(-1 / 3)))


def test_overflow_gives_infinity():
    assert round_to_format(Fraction(10) ** 39, FORMATS["float32"]) == float("inf")
    assert round_to_format(-(Fraction(10) ** 309), FORMATS["float64"]) == float("-inf")


@pytest.mark.parametrize("x, fmt, expected", [
    pytest.param(1.0, "float64", 2.0**-52, id="one-f64"),
    pytest.param(1.0, "float32", 2.0**-23, id="one-f32"),
    pytest.param(3.0, "float32", 2.0**-22, id="three-f32"),
    pytest.param(0.0, "float64", 2.0**-1074, id="zero-f64"),
    pytest.param(1e-40, "float32", 2.0**-149, id="subnormal-f32"),
])
def test_ulp(x, fmt, expected):
    assert ulp(np.array([x]), FORMATS[fmt])[0] == expected


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16"])
def test_inputs_are_rounded_as_torch_rounds_them(fmt):
    # torch receives a double and rounds it to the dtype; the reference is exact at our rounding
    import torch

    kind = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[fmt]
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0, 1, 300) * 2.0 ** rng.integers(-30, 20, 300),
                             [1 + 2.0**-8, 1 + 3 * 2.0**-9, 65519.99, 65520.0, 1e-8, 3e38, 3.4e38]])
    for v in values:
        expected = round_exactly(Fraction(float(v)), FORMATS[fmt])
        got = float(torch.tensor(float(v), dtype=torch.float64).to(kind).double())
        assert got == float(expected), v
