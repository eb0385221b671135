"""The Python API: harness.check and harness.assert_derivatives, where gradcheck is used today."""

import warnings

import pytest
import torch
from classic_functions import Softplus, SoftplusOnce, SoftplusWrongFirst, divide
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
from harness.errors import HarnessError


class SoftplusAroundTorch(torch.autograd.Function):
    """A correct-looking Function around F.softplus, as most code writes it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class SoftplusOff1e9(SoftplusAroundTorch):
    """The same with a backward off by a relative 1e-9: gradcheck cannot see it."""

    @staticmethod
    def backward(ctx, grad):
        return SoftplusAroundTorch.backward(ctx, grad) * (1 + 1e-9)


X64 = torch.linspace(-8, 8, 41, dtype=torch.float64)


def test_a_correct_function_passes_in_the_tensors_dtype():
    for x in (X64, X64.float()):
        (result,) = harness.assert_derivatives(Softplus.apply, "softplus(x)", x=x)
        assert result.status == "pass" and result.dtype == str(x.dtype).removeprefix("torch.")


def test_it_catches_what_gradcheck_passes():
    x = X64.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(SoftplusOff1e9.apply, (x,))
    assert torch.autograd.gradgradcheck(SoftplusOff1e9.apply, (x,))
    with pytest.raises(AssertionError) as caught:
        harness.assert_derivatives(SoftplusOff1e9, "softplus(x)", x=X64)
    text = str(caught.value)
    assert text.splitlines()[0].startswith("SoftplusOff1e9: ")
    assert "SoftplusOff1e9 [float64] > vjp > y.backward(gradient=v) > point 0" in text
    assert "rel 1e-09" in text and "not close!" in text


def test_the_same_check_case_as_a_case_file(run_case):
    (api,) = harness.check(SoftplusWrongFirst, "softplus(x)", x=0.75, checks=["vjp"])
    (yaml,) = run_case("""
        name: SoftplusWrongFirst
        inputs: {x: 0.75}
        expr: softplus(x)
        target: classic_functions:SoftplusWrongFirst
        checks: [vjp]
    """)
    assert [(c.path, c.status, c.max_ulps) for c in api.comparisons] == [
        (c.path, c.status, c.max_ulps) for c in yaml.comparisons]
    assert api.status == yaml.status == "fail"


def test_inputs_by_name_numbers_and_specs():
    (result,) = harness.check(divide, "x / y", y=2.0, x=3.0, checks=["value", "grad"])
    assert result.status == "pass"
    (sampled,) = harness.check(Softplus, "softplus(x)", x={"shape": [50], "sample": {"uniform": [-5, 5]}},
                               dtype=torch.float32, seed=4)
    assert sampled.status == "pass" and sampled.dtype == "float32"
    assert sampled.comparisons[0].count == 50


def test_tolerance_and_paths_are_passed_on():
    (result,) = harness.check(Softplus, "softplus(x)", x=X64, checks="vjp", paths=["backward"], tolerance=0)
    assert {c.path for c in result.comparisons} == {  # and its forward, traced, against the expression
        "traced forward = expr", "y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)",
        "(y * v).sum().backward()"}
    (loose,) = harness.check(Softplus, "softplus(x)", x=X64, checks="vjp", paths={"skip": ["torch.func"]},
                             tolerance={"ulps": 1e6})
    assert loose.status == "pass"


def test_a_default_check_that_cannot_run_warns_an_asked_one_fails():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        harness.assert_derivatives(SoftplusOnce, "softplus(x)", x=X64)
    assert any(issubclass(w.category, harness.HarnessWarning) and "grad2: no torch path could run" in str(w.message)
               and "@once_differentiable" in str(w.message) for w in caught)
    with pytest.raises(AssertionError, match="grad2: no torch path could run"):
        harness.assert_derivatives(SoftplusOnce, "softplus(x)", x=X64, checks=["vjp", "grad2"])


def test_bad_arguments_say_where_in_the_callers_file():
    with pytest.raises(HarnessError, match=r"test_api.py:\d+: unknown name 'z'"):
        harness.check(Softplus, "softplus(z)", x=X64)
    with pytest.raises(HarnessError, match="tensor inputs have different dtypes"):
        harness.check(divide, "x / y", x=X64, y=X64.float())
    with pytest.raises(HarnessError, match="non-finite number"):
        harness.check(Softplus, "softplus(x)", x=float("nan"))
    with pytest.raises(HarnessError, match="is not callable"):
        harness.check(42, "x", x=1.0)


@settings(max_examples=15, deadline=None)
@given(st.floats(min_value=-20, max_value=20))
def test_with_hypothesis_drawing_points(x):
    """The README's example: Hypothesis draws the points, the harness judges each exactly."""
    harness.assert_derivatives(Softplus.apply, "softplus(x)", x=x)


def test_what_hypothesis_found_past_20_is_torchs_softplus_threshold():
    """Drawn from [-30, 30], the example above shrinks to x = 21: F.softplus returns x itself above
    its threshold (20), 7.6e-10 below the exact value (a relative 3.6e-11, 2e5 ulps in float64)."""
    found = r"value > forward > point 0 \(x=21.0\) > y\[\]: torch 21.0, exact 21.0000000007"
    with pytest.raises(AssertionError, match=found):
        harness.assert_derivatives(SoftplusAroundTorch.apply, "softplus(x)", x=21.0)


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"checks": 3}, "checks must be a check name or a non-empty list", id="checks"),
    pytest.param({"tolerance": "8"}, "tolerance must be ulps", id="tolerance"),
    pytest.param({"paths": 3}, "paths must be names", id="paths"),
    pytest.param({"seed": -1}, "seed must be a whole number >= 0", id="seed"),
    pytest.param({"dtype": []}, "dtype= is empty", id="no-dtype"),
])
def test_bad_keywords_are_one_line_at_the_callers_line(kwargs, message):
    with pytest.raises(HarnessError, match=rf"test_api.py:\d+: {message}"):
        harness.check(Softplus, "softplus(x)", x=0.5, **kwargs)


def test_a_huge_tensor_is_refused_before_it_is_converted():
    with pytest.raises(HarnessError, match="over the limit of 1000000"):
        harness.check(torch.exp, "exp(x)", x=torch.zeros(2_000_001, dtype=torch.float64))
    with pytest.raises(HarnessError, match="ordinary dense tensors"):
        harness.check(torch.exp, "exp(x)", x=torch.zeros(3, device="meta"))
