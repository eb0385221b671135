"""The bundled cases: no false alarm, and the tutorial's numbers."""

import pytest
from tests_support import ROOT_CASES

from harness.cases import BadCase, load_paths
from harness.run import Options, check_case

CASES = load_paths([str(ROOT_CASES)])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bundled_case_has_no_failure(case):
    """No false alarm; and no element is allowed any error without saying why (an infinite
    allowance passes anything: only a value past the dtype's range makes the error model infinite)."""
    assert not isinstance(case, BadCase), case.message
    for result in check_case(case, Options()):
        assert result.status in ("pass", "kink", "undefined", "xfail"), result.message
        for x in result.comparisons:
            if x.unbounded:
                assert "allowed any error" in x.message and "past the dtype's range" in x.message, x.message


@pytest.mark.parametrize("name, check, path, torch_values", [
    pytest.param("tutorial-1-scalar-backward", "grad", "y.backward() -> .grad", (-2.0,), id="step-1"),
    pytest.param("tutorial-2-3-matrix-vjp", "vjp", "y.backward(gradient=v)", (-2.0, -2.0, 0.0, 2.0), id="step-2"),
    pytest.param("tutorial-2-3-matrix-vjp", "vjp", "(y * v).sum().backward()", (-2.0, -2.0, 0.0, 2.0), id="step-3"),
    pytest.param("tutorial-4-create-graph", "grad2",
                 "autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)", (2.0,), id="step-4"),
    pytest.param("tutorial-5-two-inputs", "grad", "autograd.grad(y, inputs)", (2.0,), id="step-5-x1"),
    pytest.param("tutorial-6-several-outputs", "multi", "autograd.grad([outputs], inputs)", (3.0,), id="step-6-x1"),
])
def test_tutorial_reproduces_torch_and_exact_values(name, check, path, torch_values):
    (case,) = [c for c in CASES if c.name == name]
    (result,) = check_case(case)
    comparison = next(c for c in result.comparisons if c.check == check and c.path == path)
    assert comparison.status == "pass"
    assert comparison.torch_values == torch_values
    assert comparison.exact_values == torch_values


def test_tutorial_step_7_optimizer_against_its_exact_replay():
    (case,) = [c for c in CASES if c.name == "tutorial-7-sgd"]
    (result,) = check_case(case)
    assert result.status == "pass", result.message
    by_path = {c.path.split(" (")[0]: c for c in result.comparisons}
    replay = by_path["trajectory vs exact replay"]
    assert replay.count == 500 and replay.max_ulps < 8 and len(replay.point_ulps) == 500  # ulps per step
    assert replay.point_ulps[-1] < 1  # the tutorial: torch's x_500 is 0.27 ulp from the exact replay
    final = by_path["last iterate vs exact stationary point"]
    assert final.worst.torch == pytest.approx(0.99995899, abs=1e-8)  # what torch prints
    assert final.worst.exact == 1.0 and "a minimum" in final.part
    f_last = by_path["f at the last iterate"]
    assert f_last.worst.torch == 0.0  # float32 cancellation
    assert f_last.worst.exact == pytest.approx(1.68e-9, rel=0.01)  # the exact f at torch's iterate
