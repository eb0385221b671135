"""The criterion: each op a few ulps plus its conditioning, composition charged as written, a
target judged by its exact function alone; references never silently wrong."""

import pytest
import torch
from classic_functions import Softplus as StableSoftplus
from classic_functions import SoftplusSloppy as SloppySoftplus

import harness
from harness.cases import load_text
from harness.run import check_case


def run(text):
    (case,) = load_text(text)
    (result,) = check_case(case)
    return result


def case(expr, inputs, checks, dtype="float64"):
    return f"name: c\ninputs: {inputs}\nexpr: {expr}\nchecks: {checks}\ndtype: {dtype}\n"


SPELLINGS = ["softplus(x)", "log1p(exp(x))", "log(1 + exp(x))", "-logsigmoid(-x)"]
POINTS = torch.tensor([-30.0, -5.0, 0.5, 3.0, 15.0], dtype=torch.float64)
# exp(-softplus(-x)) is sigmoid(x) only while softplus(-x) is not cut at its threshold (|x| <= 20)
STABLE_POINTS = torch.tensor([-19.5, -5.0, 0.5, 3.0, 15.0], dtype=torch.float64)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_targets_verdict_does_not_depend_on_how_expr_is_spelled(spelling):
    (stable,) = harness.check(StableSoftplus, spelling, x=STABLE_POINTS, checks=["vjp", "grad2"],
                              paths=["backward", "double-backward"])
    (sloppy,) = harness.check(SloppySoftplus, spelling, x=POINTS, checks=["vjp"], paths=["backward"])
    assert stable.status == "pass", stable.message
    assert sloppy.status == "fail" and "x[0] at x=-30.0" in sloppy.message
    allowed = {c.worst.allowed_ulps for c in sloppy.comparisons if c.check == "vjp"}
    reference = harness.check(SloppySoftplus, "softplus(x)", x=POINTS, checks=["vjp"], paths=["backward"])[0]
    # the same allowance, every spelling
    assert allowed == {c.worst.allowed_ulps for c in reference.comparisons if c.check == "vjp"}
    # and every spelling is the function the forward computes (harness.forward)
    assert [c.status for c in sloppy.comparisons if c.check == "forward"] == ["pass"]


@pytest.mark.parametrize("expr, x", [
    pytest.param("sigmoid(x)", 40.0, id="sigmoid'(40)"),
    pytest.param("tanh(x)", 20.0, id="tanh'(20)"),
    pytest.param("expm1(x)", -40.0, id="expm1'(-40)"),
    pytest.param("gelu(x)", -10.0, id="gelu'(-10)"),
])
def test_a_cancelling_kernel_formula_earns_no_allowance(expr, x):
    """torch forms these derivatives as y*(1 - y), 1 - y*y, y + 1, ...: 0 or 1% off where the exact
    values are representable (checked with mpmath; kept in cases/core/findings.yaml)."""
    result = run(case(expr, f"{{x: {x}}}", "[grad]"))
    assert result.status == "fail", result.message


def test_silu_second_derivative_at_40_fails():
    assert run(case("silu(x)", "{x: 40.41}", "[grad2]")).status == "fail"


@pytest.mark.parametrize("expr, inputs, checks", [
    pytest.param("logaddexp(x, y)", "{x: {points: [-1.0, -2.0, -0.1]}, y: {points: [-0.45, -0.145, -2.35]}}",
                 "[value, grad]", id="logaddexp-cancelling"),
    pytest.param("special.erfcx(x)", "{x: {points: [-4.47, -3.9, -5.2]}}", "[value, vjp]", id="erfcx-negative"),
])
def test_ill_conditioned_points_where_torch_is_right_pass(expr, inputs, checks):
    result = run(case(expr, inputs, checks))
    assert result.status == "pass", result.message


@pytest.mark.parametrize("dtype, x", [("float64", -740.0), ("float32", -100.0)])
def test_a_subnormal_forward_value_reused_by_the_backward_is_no_false_alarm(dtype, x):
    result = run(case("exp(x) * 10000", f"{{x: {x}}}", "[value, grad]", dtype))
    assert result.status == "pass", result.message


def test_keyword_constants_are_rounded_to_the_dtype_like_positional_ones():
    clamp = run(case("clamp(x, min=0.11)", "{x: {points: [0.11, 0.2, 0.05]}}", "[value, grad]", "float32"))
    assert clamp.status in ("pass", "kink"), clamp.message  # torch clamps at float32(0.11), and so does the reference
    assert run(case("maximum(x, 0.11)", "{x: {points: [0.2, 0.05]}}", "[value]", "float32")).status == "pass"


def test_log_ndtr_far_tail_is_held_to_its_exact_derivatives():
    """log_ndtr'(-1e4) = 10000.0001 and log_ndtr''(-1e4) = -0.99999999 (mpmath); the reference keeps
    erfc(-t) whole instead of SymPy's 2 - erfc(t), and exp(-5e7) is computed, not rounded to 0."""
    result = run(case("special.log_ndtr(x)", "{x: {points: [-10000.0, -100000.0]}}", "[grad, grad2]"))
    by_check = {c.check: c for c in result.comparisons if c.path.startswith("autograd.grad")}
    grad = by_check["grad"]
    assert grad.status == "fail"
    assert grad.worst.exact in (pytest.approx(10000.0000999999981, rel=1e-15), pytest.approx(100000.00001, rel=1e-15))
    assert all(abs(c.worst.allowed_ulps) < 1e6 for c in result.comparisons)
    second = by_check["grad2"]
    assert second.status == "fail" and second.worst.exact == pytest.approx(-1.0, rel=1e-6)


def test_an_error_model_past_the_dtypes_range_says_so():
    """An element held to no finite allowance (an infinite one would pass anything) is one whose
    value past the dtype's range makes the error model infinite, and the message says so. Every
    bundled case is held to this in tests/test_bundled.py; here the ones past the range on purpose
    (exp's critical point at 88.7 in float32, log' at the smallest subnormal) must have some."""
    from pathlib import Path

    from harness.cases import load_paths
    from harness.run import Options

    root = Path(__file__).resolve().parent.parent / "cases" / "core" / "elementwise.yaml"
    chosen = [c for c in load_paths([str(root)]) if c.name in ("exp-sampled", "log-sampled")]
    unbounded = [x for c in chosen for r in check_case(c, Options()) if r.dtype == "float32"
                 for x in r.comparisons if x.unbounded]
    assert {x.check for x in unbounded} >= {"value", "vjp"}
    for x in unbounded:
        assert "allowed any error" in x.message and "past the dtype's range" in x.message, x.message


def test_a_reference_that_cannot_be_certified_is_an_error_not_a_pass(monkeypatch):
    from harness import reference

    monkeypatch.setattr(reference, "MAX_PRECISION", 64)  # too few bits for float64 ever to certify
    monkeypatch.setattr(reference, "start_precision", lambda fmt: 64)
    import harness.checks as checks

    monkeypatch.setattr(checks, "MAX_PRECISION", 64)
    result = run(case("sin(x)", "{x: {points: [1.0e+300]}}", "[value]"))
    errors = [c for c in result.comparisons if c.status == "error"]
    assert errors and "could not be certified at 64 bits" in errors[0].message, result.message


def test_the_message_names_the_worst_element_not_the_first():
    """sin in float32 with no tolerance: several elements fail; the message names the largest."""
    result = run(case("sin(x)", "{x: {shape: [64], sample: {uniform: [-3, 3]}}}",
                      "[{value: {tolerance: {ulps: 0, model: 0}}}]", "float32"))
    forward = next(c for c in result.comparisons if c.path == "forward")
    assert forward.status == "fail" and forward.mismatched > 1
    assert forward.worst.ulps == pytest.approx(forward.max_ulps)
