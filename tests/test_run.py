"""check_case: one result per dtype, statuses, xfail, isolation of errors."""

from harness.cases import BadCase
from harness.run import check_case


def statuses(results):
    return [r.status for r in results]


def test_one_result_per_dtype(run_case):
    results = run_case("""
        name: sin
        inputs: {x: {shape: [20], sample: {uniform: [-3, 3]}}}
        expr: sin(x)
        checks: [value, vjp, jvp, grad2]
        dtype: [float32, float64]
    """)
    assert [(r.dtype, r.status) for r in results] == [("float32", "pass"), ("float64", "pass")]
    paths = {(c.check, c.path) for c in results[0].comparisons}
    assert ("vjp", "y.backward(gradient=v)") in paths and ("jvp", "forward_ad.make_dual") in paths

def test_xfail_and_xpass(run_case):
    base = """
        name: xf
        inputs: {x: {shape: [64], sample: {uniform: [-3, 3]}}}
        expr: sin(x)
        checks: [{value: {tolerance: {ulps: %s, model: 0}}}]
        xfail: %s
    """
    assert statuses(run_case(base % ("0", "no sin is exact at 64 points"))) == ["xfail"]
    assert statuses(run_case(base % ("4", "nothing is wrong"))) == ["xpass"]
    assert statuses(run_case(base % ("4", "{reason: nothing is wrong, strict: true}"))) == ["fail"]

def test_check_errors_are_isolated(run_case):
    (result,) = run_case("""
        name: vector-grad
        inputs: {x: [1.0, 2.0]}
        expr: x * 2
        checks: [grad, value]
    """)
    assert result.status == "error"
    by_check = {c.check: c.status for c in result.comparisons}
    assert by_check == {"grad": "error", "value": "pass"}
    assert "grad needs a scalar output" in result.message and ".yaml:5:" in result.message

def test_bad_case_becomes_an_error_result():
    (result,) = check_case(BadCase("b", "x.yaml", 3, "x.yaml:3: unknown op 'foo'"))
    assert result.status == "error" and result.bad_input and result.message == "x.yaml:3: unknown op 'foo'"


def test_a_failure_shows_in_the_case_status_with_errors_beside_it(run_case):
    (result,) = run_case("""
        name: both
        inputs: {x: {shape: [64], sample: {uniform: [-3, 3]}}}
        expr: sin(x)
        checks: [{value: {tolerance: {ulps: 0, model: 0}}}, grad]
        dtype: float32
    """)
    statuses = {c.check: c.status for c in result.comparisons}
    assert statuses == {"value": "fail", "grad": "error"}  # no float32 sin is exact at 64 points; grad: not scalar
    assert result.status == "fail"
    assert "not close!" in result.message and "(and 1 error: " in result.message and "grad needs a scalar" in (
        result.message)
