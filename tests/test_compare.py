import numpy as np
import pytest

from harness.compare import Piece, compare, default_tolerance, describe, summarize
from harness.numbers import FORMATS
from harness.results import Comparison, Expected, Tolerance, Worst

F64, F32 = FORMATS["float64"], FORMATS["float32"]


def expected(values, lo=None, bound=0.0, kink=False, undefined=False):
    hi = np.asarray(values, dtype=np.float64)
    n = hi.shape
    return Expected(hi, np.zeros(n) if lo is None else np.asarray(lo), np.full(n, bound), np.full(n, kink),
                    np.full(n, undefined), np.isinf(hi) & ~np.full(n, undefined))


def test_error_in_ulps_uses_the_low_part():
    e = compare(np.array([1.0]), expected([1.0], lo=[2.0**-60]), F64, Tolerance(ulps=4))
    assert e.ulps[0] == pytest.approx(2.0**-60 / 2.0**-52)
    assert e.status[0] == "pass"


@pytest.mark.parametrize("actual, exp, status", [
    pytest.param(1.0 + 8 * 2**-52, expected([1.0]), "fail", id="8-ulps-over-4"),
    pytest.param(1.0 + 3 * 2**-52, expected([1.0]), "pass", id="3-ulps"),
    pytest.param(0.0, expected([1e-20], bound=1e-16), "pass", id="absolute-floor-from-model"),
    pytest.param(np.nan, expected([1.0]), "fail", id="nan-where-finite"),
    pytest.param(np.inf, expected([np.nan], undefined=True), "undefined", id="inf-where-undefined"),
    pytest.param(2.0, expected([np.nan], undefined=True), "undefined", id="finite-where-undefined"),
    # an exact infinity (a pole, log at 0): nan, +inf, -inf and finite values are distinct answers,
    # whatever the error model allows
    pytest.param(-np.inf, expected([-np.inf], bound=np.inf), "pass", id="the-same-infinity"),
    pytest.param(np.nan, expected([-np.inf], bound=np.inf), "fail", id="nan-where-minus-inf"),
    pytest.param(np.inf, expected([-np.inf], bound=np.inf), "fail", id="plus-inf-where-minus-inf"),
    pytest.param(-1e308, expected([-np.inf], bound=np.inf), "fail", id="finite-where-minus-inf"),
    pytest.param(0.0, expected([0.0], kink=True), "kink", id="kink-convention-holds"),
    pytest.param(0.5, expected([0.0], kink=True), "fail", id="kink-convention-broken"),
])
def test_element_statuses(actual, exp, status):
    assert compare(np.array([actual]), exp, F64, Tolerance(ulps=4)).status[0] == status


def test_overflow_to_infinity_matches_the_rounded_exact_value():
    e = compare(np.array([np.inf, 3.4e38]), expected([1e39, 1e39]), F32, Tolerance(ulps=4))
    assert list(e.status) == ["pass", "fail"]


def test_subnormal_results_are_compared_in_absolute_terms():
    e = compare(np.array([0.0]), expected([1e-46]), F32, Tolerance(ulps=4))
    assert e.status[0] == "pass"  # below half the smallest float32 subnormal


def test_summary_points_at_the_worst_element_with_the_message_template():
    pieces = [Piece(0, "x: shape [3]", np.array([1.0, 2.0 + 2**-40, 3.0]), expected([1.0, 2.0, 3.0]),
                    ["[0] at x=0.5", "[1] at x=1.5", "[2] at x=2.5"])]
    c = summarize("grad", "y.backward() -> .grad", "x", pieces, F64, default_tolerance(1), "sin [float64]")
    assert c.status == "fail" and c.mismatched == 1 and c.count == 3
    assert c.worst.component == "[1] at x=1.5"
    assert c.message == (
        "sin [float64] > grad > y.backward() -> .grad > point 0 (x: shape [3]) > x[1] at x=1.5: "
        "torch 2.0000000000009095, exact 2.0, error 2.05e+03 ulps (abs 9.09e-13, rel 4.55e-13), "
        "allowed 8 ulps; not close! 1 of 3 elements mismatched")


def test_describe_without_a_worst_element():
    text = describe(Comparison("value", "forward", "y", "pass"), "c [float32]")
    assert text == "c [float32] > value > forward > y: pass"


def test_default_tolerances_catch_the_required_relative_errors():
    # 1e-12 in float64 and 1e-5 in float32 must exceed the default first-order tolerance
    for fmt, rel in ((F64, 1e-12), (F32, 1e-5)):
        x = np.array([1.9999])  # just below 2: the ulp is smallest relative to the value
        e = compare(x * (1 + rel), expected(x), fmt, default_tolerance(1))
        assert e.status[0] == "fail", fmt.name


def test_worst_is_a_dataclass_with_numbers():
    w = Worst(0, "x=1.0", "[]", 1.0, 1.0, 0.0, 0.0, 0.0, 4.0)
    assert w.allowed_ulps == 4.0
