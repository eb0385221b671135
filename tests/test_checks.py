"""The checks: kinks and conventions, tolerances, undefined points, several outputs, compiled paths."""

import pytest


def statuses(results):
    return [r.status for r in results]


def test_kink_status_and_convention(run_case):
    (result,) = run_case("""
        name: relu
        inputs: {x: 0.0}
        expr: relu(x)
        checks: [grad]
    """)
    assert result.status == "kink"
    assert all(c.kinks == 1 for c in result.comparisons)

def test_a_pinned_tolerance_can_make_a_check_fail(run_case):
    # the same float32 sigmoid passes with defaults and fails with a 0-ulp tolerance
    text = """
        name: sig
        inputs: {x: {shape: [50], sample: {uniform: [-5, 5]}, edges: none}}
        expr: sigmoid(x) * 3
        checks: [%s]
        dtype: float32
    """
    assert statuses(run_case(text % "value")) == ["pass"]
    assert statuses(run_case(text % "{value: {tolerance: {ulps: 0, model: 0}}}")) == ["fail"]

def test_undefined_outside_the_domain(run_case):
    (result,) = run_case("""
        name: log
        inputs: {x: -1.0}
        expr: log(x)
        checks: [value, grad]
    """)
    assert result.status == "undefined"

@pytest.mark.parametrize("checks", ["[multi]", "[hessian]", "[jacobian]"])
def test_multi_hessian_jacobian_on_two_outputs(run_case, checks):
    (result,) = run_case(f"""
        name: two
        inputs: {{x1: 1.5, x2: -0.5}}
        outputs: {{y1: x1*x2 + exp(x1), y2: sin(x1) - x2**3}}
        checks: {checks}
    """)
    assert result.status == "pass", result.message

def test_combined_references_are_certified_in_float64(run_case):
    # VJPs, JVPs and Hessian products combine exact values: at the working precision, never at 53 bits
    (result,) = run_case("""
        name: sums
        inputs: {x: {shape: [50], sample: {uniform: [-3, 3]}}}
        expr: sin(x) * exp(x)
        checks: [vjp, jvp, grad2]
    """)
    assert result.status == "pass"
    assert all(c.uncertified == 0 for c in result.comparisons), [c.path for c in result.comparisons if c.uncertified]

def test_compile_runs_the_compiled_paths_beside_eager(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: {points: [0.5, -1.25]}, y: {points: [2.0, 0.75]}}
        expr: softplus(x * y) - gelu(y) / (1 + x**2)
        checks: [value, grad, vjp, grad2]
        compile: aot_eager
    """)
    assert result.status == "pass", result.message
    compiled = {(c.check, c.path) for c in result.comparisons if "[torch.compile aot_eager]" in c.path}
    assert {check for check, _ in compiled} == {"value", "grad", "vjp"}  # no double backward under compile
    assert len(compiled) == 1 + 2 + 3


def test_a_partial_that_is_zero_as_an_expression_is_undefined_where_the_function_is(run_case):
    # y / (x - x): SymPy's partial in x is 0, but the function is undefined there, and so is torch's
    # derivative (nan); the comparison is undefined, not a failure
    results = run_case("""
        name: c
        inputs: {x: 1.0, y: 2.0}
        expr: y / (x - x)
        checks: [value, grad, grad2, hessian]
    """)
    assert [r.status for r in results] == ["undefined"], results[0].message
    assert any(c.status == "undefined" and c.check == "grad" and c.part == "x" for c in results[0].comparisons)
