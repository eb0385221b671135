"""Preparing a case: targets need permission, devices, torch.compile."""

import shutil

import pytest
import torch


def statuses(results):
    return [r.status for r in results]


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

@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler")
@pytest.mark.skipif(any(c.isspace() for c in torch.__file__),
                    reason="torch 2.13's inductor passes its include paths to g++ unquoted: a torch installed"
                           " under a path with spaces cannot compile (the case reports BackendCompilerFailed)")
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


def test_compiled_paths_stay_compiled_past_dynamos_recompile_limit(load_one):
    """Every case's function is the same code object; past Dynamo's recompile limit (8) torch runs
    later "compiled" calls eagerly without a word. Each case compiles from a fresh Dynamo, so a
    backward that is wrong only while compiling is still caught in the tenth case."""
    from harness.run import Options, check_case

    statuses = []
    for size in range(1, 11):
        case = load_one(f"""
            name: c{size}
            inputs: {{x: {{shape: [{size}], sample: {{uniform: [-1, 1]}}}}}}
            expr: sin(x)
            target: meta_functions:sin_wrong_when_compiled
            compile: aot_eager
            checks: [vjp]
        """)
        (result,) = check_case(case, Options(allow_targets=True))
        statuses.append({c.status for c in result.comparisons if "torch.compile" in c.path})
    assert statuses == [{"fail"}] * 10


def test_critical_points_take_the_last_elements_over_the_points_and_at_most_half():
    import numpy as np

    from harness.prepare import _place

    points = [{"x": np.zeros(2)}, {"x": np.zeros(2)}, {"x": np.zeros(2)}]
    _place(points, "x", [1.0, 2.0, 3.0, 4.0, 5.0])  # 6 elements: room for 3, the last 3
    assert [list(p["x"]) for p in points] == [[0.0, 0.0], [0.0, 1.0], [2.0, 3.0]]
