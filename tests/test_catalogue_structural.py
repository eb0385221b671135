"""Structural ops' exact sides against torch: var/std, cdist for p = 1, 2, inf, numbers in cat/stack."""

import math

import pytest


def statuses(results):
    return [r.status for r in results]


@pytest.mark.parametrize("expr", [
    "var(x)", "var(x, dim=1)", "var(x, dim=0, correction=0)", "std(x)", "std(x, dim=1, correction=0)",
])
def test_var_and_std_agree_with_torch_and_its_derivatives(run_case, expr):
    (result,) = run_case(f"""
        name: v
        inputs: {{x: [[1.5, -2.0, 0.25], [3.0, 0.5, -1.0]]}}
        expr: {expr}
        checks: [value, vjp, jvp, grad2]
    """)
    assert result.status == "pass", result.message


def test_var_needs_more_elements_than_the_correction(run_case):
    (result,) = run_case("""
        name: v
        inputs: {x: [2.0]}
        expr: var(x)
        checks: [value]
    """)
    assert result.status == "error" and "correction=1: no value" in result.message


@pytest.mark.parametrize("p", ["1", "2", "'inf'"])
def test_cdist_for_p_1_2_and_inf(run_case, p):
    (result,) = run_case(f"""
        name: d
        inputs:
          a: [[0.5, -1.25], [2.0, 0.75], [-0.5, 0.0]]
          b: [[1.0, 2.0], [-1.5, 0.25]]
        expr: cdist(a, b, p={p})
        checks: [value, vjp]
    """)
    assert result.status == "pass", result.message
    values = result.comparisons[0].exact_values
    expected = {"1": 0.5 + 3.25, "2": math.hypot(0.5, 3.25), "'inf'": 3.25}[p]  # rows a[0], b[0]
    assert values[0] == pytest.approx(expected)


def test_cdist_for_another_p_is_a_clear_error(run_case):
    (result,) = run_case("""
        name: d
        inputs: {a: [[0.5, -1.25]], b: [[1.0, 2.0]]}
        expr: cdist(a, b, p=3)
        checks: [value]
    """)
    assert result.status == "error" and "p = 1, 2 or inf" in result.message


def test_numbers_inside_stack_and_cat_are_tensors_like_the_others(run_case):
    (result,) = run_case("""
        name: s
        inputs: {a: [0.5, -1.25, 2.0], s: 2.5}
        outputs:
          st: stack([a, 1.5, a * 2], dim=0)
          ct: cat([a, 0.5], dim=0)
          sc: stack([s, 1.5, s * s])
        checks: [value, vjp, jvp]
    """)
    assert result.status == "pass", result.message
    shown = {c.part: c.exact_values for c in result.comparisons if c.check == "value" and c.path == "forward"}
    assert shown["st"][3:6] == (1.5, 1.5, 1.5) and shown["ct"][-1] == 0.5 and shown["sc"] == (2.5, 1.5, 6.25)
