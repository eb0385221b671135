import shutil

import pytest

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
        inputs: {x: {shape: [50], sample: {uniform: [-5, 5]}}}
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


def test_targets_need_permission(run_case):
    text = """
        name: t
        inputs: {x: 0.5}
        expr: sin(x)
        target: meta_functions:sin_correct
        checks: [value]
    """
    (refused,) = run_case(text, allow_targets=False)
    assert refused.status == "error" and "--allow-target" in refused.message
    assert statuses(run_case(text)) == ["pass"]


def test_bad_case_becomes_an_error_result():
    (result,) = check_case(BadCase("b", "x.yaml", 3, "x.yaml:3: unknown op 'foo'"))
    assert result.status == "error" and result.bad_input and result.message == "x.yaml:3: unknown op 'foo'"


@pytest.mark.parametrize("checks", ["[multi]", "[hessian]", "[jacobian]"])
def test_multi_hessian_jacobian_on_two_outputs(run_case, checks):
    (result,) = run_case(f"""
        name: two
        inputs: {{x1: 1.5, x2: -0.5}}
        outputs: {{y1: x1*x2 + exp(x1), y2: sin(x1) - x2**3}}
        checks: {checks}
    """)
    assert result.status == "pass", result.message


def test_a_cuda_case_without_a_gpu_is_a_clear_error(run_case):
    import torch

    results = run_case("""
        name: on-gpu
        inputs: {x: 0.5}
        expr: exp(x)
        checks: [value, grad]
        device: [cpu, cuda]
    """)
    assert [(r.device, r.status) for r in results][0] == ("cpu", "pass")
    if not torch.cuda.is_available():
        assert results[1].status == "error" and "device 'cuda' is not available here" in results[1].message
    else:
        assert results[1].status == "pass"


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


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler")
def test_compile_true_uses_inductor(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: {shape: [8], sample: {uniform: [-2, 2]}}}
        expr: tanh(x) * exp(x)
        checks: [value, vjp]
        compile: true
    """)
    assert result.status == "pass", result.message
    assert any("[torch.compile inductor]" in c.path for c in result.comparisons)


def test_the_command_line_compiles_every_case(tmp_path):
    from harness.cli import main

    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: exp(x) * sin(x)\nchecks: [value, grad]\n")
    assert main(["run", str(case), "--compile", "aot_eager", "--no-cache", "--reports", str(tmp_path / "r")]) == 0
    report = (tmp_path / "r" / "report.json").read_text()
    assert "y.backward() -> .grad [torch.compile aot_eager]" in report
