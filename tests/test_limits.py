"""Honest statuses at the edges: undefined points, exact infinities, signed zeros and infinite
inputs, conventions per kink and per derivative mode, and the critical points of `edges: critical`."""

import numpy as np
import pytest

from harness.cases import load_text
from harness.numbers import FORMATS
from harness.prepare import _points


def statuses(results):
    return [r.status for r in results]


def failing(result):
    return [c for c in result.comparisons if c.status == "fail"]


def test_a_finite_torch_value_where_the_derivative_is_undefined_is_undefined_and_says_so(run_case):
    # d/dx x**y at (0, 0): no limit; torch's 0 is neither right nor wrong
    (result,) = run_case("""
        name: pow00
        inputs: {x: 0.0, y: 0.0}
        expr: x ** y
        checks: [grad]
    """)
    assert result.status == "undefined"
    message = result.comparisons[0].message
    assert "torch 0.0" in message and "undefined" in message and "not close" not in message


@pytest.mark.parametrize("text, status", [
    ("log(x)", "pass"),  # torch -inf, the exact limit -inf
    ("log(x) * 0.5", "pass"),
])
def test_an_exact_infinity_is_compared_as_one(run_case, text, status):
    (result,) = run_case(f"""
        name: edge
        inputs: {{x: 0.0}}
        expr: {text}
        checks: [value]
    """)
    assert result.status == status
    assert all(c.worst.exact == -np.inf for c in result.comparisons)


def test_negative_zero_reaches_torch_and_the_reference(run_case):
    (result,) = run_case("""
        name: negzero
        inputs: {y: -0.0, x: -1.0}
        outputs:
          a: atan2(y, x)
          b: copysign(x, y)
        checks: [value]
    """)
    assert result.status == "pass"
    worst = {c.part: c.worst for c in result.comparisons}
    assert worst["a"].exact == -np.pi and worst["b"].exact == -1.0
    (positive,) = run_case("""
        name: poszero
        inputs: {y: 0.0, x: -1.0}
        expr: atan2(y, x)
        checks: [value]
    """)
    assert positive.status == "pass" and positive.comparisons[0].worst.exact == np.pi


def test_the_loader_keeps_negative_zero_and_reads_infinities_only_as_input_values():
    (case,) = load_text("name: a\ninputs: {x: {points: [-0.0, .inf, -.inf]}}\nexpr: x\nchecks: [value]\n", "a.yaml")
    values = [p["x"].item() for p in _points(case, FORMATS["float64"])]
    assert np.signbit(values[0]) and values[1:] == [np.inf, -np.inf]
    (bad,) = load_text("name: a\ninputs: {x: 1.0}\nexpr: x\nchecks: [value]\ntolerance: {ulps: .inf}\n", "a.yaml")
    assert "must be a finite number" in bad.message


def test_infinite_inputs_are_compared_with_the_limits(run_case):
    (result,) = run_case("""
        name: inf
        inputs: {x: {points: [.inf, -.inf]}}
        outputs:
          a: exp(x)
          b: tanh(x)
          c: erf(x)
          d: 2 * x
        checks: [value]
    """)
    assert result.status == "pass"
    (periodic,) = run_case("""
        name: sin-inf
        inputs: {x: .inf}
        expr: sin(x)
        checks: [value]
    """)
    assert periodic.status == "undefined"  # sin has no limit at infinity


def test_a_limit_that_depends_on_the_direction_is_undefined(run_case):
    # x - y at (inf, inf): 0 along x = y, anything along other paths; torch's nan is not wrong
    (result,) = run_case("""
        name: inf-inf
        inputs: {x: .inf, y: .inf}
        expr: x - y
        checks: [value]
    """)
    assert result.status == "undefined"


def test_a_wrong_answer_at_infinity_fails(run_case):
    # tanh(-inf) is -1 and torch says so, within half an ulp (the limit is exact, not a rounding);
    # and 1/x is 0
    (result,) = run_case("""
        name: tanh-inf
        inputs: {x: -.inf}
        outputs:
          y: tanh(x)
          z: 1 / x
        checks: [value]
        tolerance: {ulps: 0.5, model: 0}
    """)
    worst = {c.part: c.worst for c in result.comparisons}
    assert worst["y"].exact == -1.0 and worst["z"].exact == 0.0
    assert {c.part for c in failing(result)} == set()


def test_conventions_per_kink_location(run_case):
    # torch's hardswish' is 0 at -3 and 1 at 3; pinning 1 at -3 only must fail at -3 only
    text = """
        name: hs
        inputs: {x: {points: [-3.0, 3.0]}}
        expr: hardswish(x)
        checks: [grad]
        conventions: {hardswish: %s}
    """
    (ok,) = run_case(text % "[{at: -3, value: 0}, {at: 3, value: 1}]")
    assert ok.status == "kink"
    (wrong,) = run_case(text % "[{at: -3, value: 1}]")
    assert wrong.status == "fail"
    assert all(c.worst.point == 0 for c in failing(wrong))


def test_conventions_per_derivative_mode(run_case):
    text = """
        name: relu
        inputs: {x: 0.0}
        expr: relu(x)
        checks: [grad, jvp]
        conventions: {relu: [{value: 1, mode: forward}]}
    """
    (result,) = run_case(text)
    assert result.status == "fail"
    assert {c.check for c in failing(result)} == {"jvp"}


def test_atan2_forward_mode_at_the_origin_is_not_a_failure(run_case):
    (result,) = run_case("""
        name: atan2
        inputs: {x: 0.0, y: 0.0}
        expr: atan2(y, x)
        checks: [grad, jvp]
    """)
    assert result.status == "kink"
    assert {c.status for c in result.comparisons if c.check == "jvp"} == {"undefined"}


@pytest.mark.parametrize("rule, message", [
    ("[{at: 2, value: 0}]", "hardswish has no kink at 2"),
    ("[{value: 0, mode: sideways}]", "mode must be one of reverse, forward"),
    ("[{at: 3}]", "needs 'value:'"),
    ("[{value: 0, odrer: 1}]", "unknown convention key 'odrer'"),
])
def test_bad_convention_rules_are_load_errors(rule, message):
    (bad,) = load_text(f"name: a\ninputs: {{x: 3.0}}\nexpr: hardswish(x)\nchecks: [grad]\n"
                       f"conventions: {{hardswish: {rule}}}\n", "a.yaml")
    assert message in bad.message


def test_the_message_names_the_element_at_the_kink(run_case):
    (result,) = run_case("""
        name: relu
        inputs: {x: [[1.5, 0.0, 2.5]]}
        expr: relu(x) * 3
        checks: [vjp]
    """)
    assert result.status == "kink"
    assert all(c.worst.component.startswith("[0, 1]") for c in result.comparisons)


def test_critical_edges_put_the_ops_thresholds_into_the_sample():
    text = """
        name: sig
        inputs: {x: {shape: [32], sample: {uniform: [-1, 1]}, edges: %s}}
        expr: sigmoid(x)
        checks: [grad]
    """
    (case,) = load_text(text % "critical", "a.yaml")
    (plain,) = load_text(text % "none", "a.yaml")
    x = _points(case, FORMATS["float64"])[0]["x"]
    assert np.abs(x).max() > 36  # where sigmoid rounds to 1 (53 ln 2)
    assert np.abs(x[:16]).max() <= 1  # at most half of the draw is replaced
    assert np.abs(_points(plain, FORMATS["float64"])[0]["x"]).max() <= 1


def test_critical_edges_find_sigmoid_backward_losing_everything(run_case):
    # sigmoid'(x) = y*(1 - y) is 0 once y rounds to 1, though the exact value is a normal number
    (result,) = run_case("""
        name: sig
        inputs: {x: {shape: [32], sample: {uniform: [-1, 1]}, edges: critical}}
        expr: sigmoid(x)
        checks: [vjp]
    """)
    assert result.status == "fail"
    # every digit lost: torch's 0 where y rounded to 1, or twice the value where it rounded to
    # 1 - 2^-53 (the same error: which of the two the message names is a tie)
    worst = failing(result)[0].worst
    assert worst.exact != 0 and worst.rel_error == pytest.approx(1.0, rel=1e-6)
    assert worst.torch == 0.0 or worst.torch == pytest.approx(2 * worst.exact, rel=1e-6)


@pytest.mark.parametrize("expr, check", [
    ("sigmoid(x)", "vjp"),  # sigmoid'(40.7) = 0 from y*(1 - y)
    ("tanh(x)", "vjp"),  # tanh'(20.7) = 0 from 1 - y^2
    ("expm1(x)", "vjp"),  # expm1'(-40.7) = 0 from y + 1
    ("silu(x)", "grad2"),  # silu'' past 37
    ("gelu(x)", "vjp"),  # gelu'(-10.4), 1% off
    ("special.log_ndtr(x)", "vjp"),  # log_ndtr'(-1e4), relative 5.4e-9
    ("exp2(x)", "vjp"),  # exp2'(1024) = inf, exact 1.246e308
    ("sigmoid(x)", "value"),  # sigmoid(-709.78) = 0, exact 5.6e-309
])
def test_known_defects_are_found_by_a_sample_that_does_not_aim_at_them(run_case, expr, check):
    text = f"""
        name: unaimed
        inputs: {{x: {{shape: [32], sample: {{uniform: [-1, 1]}}%s}}}}
        expr: {expr}
        checks: [{check}]
    """
    (found,) = run_case(text % "")
    assert found.status == "fail", found.message
    (plain,) = run_case(text % ", edges: none")
    assert plain.status == "pass"
