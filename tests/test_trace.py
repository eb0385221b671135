"""The exact side traced from a target's own forward (harness.trace): the trees it builds, what it
refuses and how it says so, and whole cases without `expr:` (files, the Python API, `harness show`)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import traced_functions as tf

import harness
import harness.cli
from harness.cases import load_file
from harness.catalogue import OPS
from harness.expr import Call, Name, Num, parse
from harness.forward import exact_values, unreproduced
from harness.numbers import FORMATS
from harness.prepare import Options
from harness.reference import fold
from harness.run import check_case
from harness.show import show_case
from harness.symbolic import build_output
from harness.trace import Untraceable, trace_forward

X = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64)
Y = torch.tensor([1.5, 2.0, -0.5], dtype=torch.float64)
LINE = {text: i + 1 for i, text in enumerate(Path(tf.__file__).read_text().splitlines())}


def _tree(function, *inputs, names=("x", "y")):
    traced = trace_forward(lambda *a: (function.apply(*a),), [inputs], list(names)[: len(inputs)])
    ((_, tree),) = traced.outputs
    return tree, traced


def _expr(text, names=("x", "y")):
    return parse(text, ops=set(OPS), names=set(names))


def _line_of(code: str) -> int:
    """The line of traced_functions.py that holds this code."""
    return next(n for text, n in LINE.items() if code in text)


def test_an_elementwise_forward_is_its_ops_with_its_constant_exactly():
    tree, traced = _tree(tf.ScaledSin, X, Y)
    c = Fraction(tf.SCALE)  # the double the forward multiplies by, not the decimal 1.2345678901
    assert c != Fraction("1.2345678901")
    assert tree == Call("mul", (Call("mul", (Call("sin", (Name("x"),)), Num(c))), Name("y")))  # sin(x) * c * y
    assert traced.describe == "traced from forward: 3 ATen ops" and traced.shapes == ((3,),)


def test_where_branches_and_a_float32_buffer_in_a_float64_model():
    tree, _ = _tree(tf.Branches, X, names=("x",))
    w = [Fraction(float(v)) for v in tf.Branches.weight]  # the float32 values, exactly
    assert w[0] == Fraction(1, 2) and tree.op == "mul"
    assert tree.args[0] == _expr("where(x > 0, x * x, expm1(x))", ("x",))
    assert tree.args[1].op == "stack" and [a.value for a in tree.args[1].args[0].items] == w


def test_masked_assignment_becomes_where():
    tree, _ = _tree(tf.Masked, X, names=("x",))
    assert tree == _expr("where(x > 0, log1p(x), sin(x))", ("x",))  # out[m] = f(x[m]); out[~m] = g(x[~m])
    tree, _ = _tree(tf.Clamped, X, names=("x",))
    assert tree == _expr("where(x < 0, 0, x)", ("x",))  # out = x.clone(); out[x < 0] = 0


def test_a_reduction():
    tree, _ = _tree(tf.SumSquares, X, names=("x",))
    assert tree == _expr("sum(x * x) / 3", ("x",))


def test_an_op_without_a_catalogue_entry_is_one_line_with_its_source_line():
    with pytest.raises(Untraceable) as caught:
        _tree(tf.Bessel, X, names=("x",))
    message = str(caught.value)
    assert "\n" not in message and "aten.special_bessel_j0.default" in message
    assert f"traced_functions.py:{_line_of('torch.special.bessel_j0(x)')}: return torch.special.bessel_j0(x)" in message
    assert message.endswith("give the case an expr: with the forward's mathematics")


def test_a_branch_in_python_on_a_tensor_value_is_refused_not_specialised():
    with pytest.raises(Untraceable, match="reads a tensor's value into Python at .*traced_functions.py:"
                                          f"{_line_of('if x.sum() > 0:')}: if x.sum"):
        _tree(tf.PythonBranch, X, names=("x",))


def test_points_that_trace_to_different_trees_are_refused():
    calls = []

    def moody(x):
        calls.append(1)
        return torch.sin(x) if len(calls) == 1 else torch.cos(x)

    with pytest.raises(Untraceable, match="other ATen ops, or other constants, at point 1, nudged"):
        trace_forward(lambda x: (moody(x),), [(X,), (X + 1,)], ["x"])


def test_values_that_reach_the_forward_through_numpy_are_refused():
    # the constant exp(x) is read through numpy: a constant at each point, another one at the next
    def through_numpy(x):
        return torch.sin(x) * torch.from_numpy(np.exp(x.detach().numpy()))

    with pytest.raises(Untraceable, match="other constants, at point 1, nudged by a relative 2\\^-12"):
        trace_forward(lambda x: (through_numpy(x),), [(X,)], ["x"])


def _agrees(forward, *inputs, names=("x", "y")):
    """The traced tree, held by the harness's own certified evaluation to what the forward returned."""
    names = list(names)[: len(inputs)]
    traced = trace_forward(lambda *a: (forward(*a),), [inputs], names)
    fmt = FORMATS["float64"]
    shapes = {n: tuple(t.shape) for n, t in zip(names, inputs)}
    outputs = {n: build_output(n, fold(tree, fmt, {}), shapes, {}) for n, tree in traced.outputs}
    points = [{n: np.array([Fraction(v) for v in t.reshape(-1).tolist()], dtype=object).reshape(t.shape)
               for n, t in zip(names, inputs)}]
    assert unreproduced(exact_values(outputs, points, fmt), traced.returned, points, fmt) == "", traced.text()
    return traced.outputs[0][1]


W3 = torch.tensor([[0.5, -1.0, 1.0], [2.0, 0.25, 1.0], [-0.75, 1.5, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("forward", [
    pytest.param(lambda x: torch.nn.functional.selu(x), id="selu-as-elu-with-scale"),
    pytest.param(lambda x: torch.nn.functional.elu(x, 0.5), id="elu"),
    pytest.param(lambda x: torch.nn.functional.relu6(x * 3), id="relu6-as-hardtanh"),
    pytest.param(lambda x: torch.nn.functional.hardtanh(x, -0.5, 0.5), id="hardtanh"),
    pytest.param(lambda x: (x > 0) * x, id="a-comparison-as-a-number"),
    pytest.param(lambda x: (x + torch.ones(2, 3, dtype=x.dtype)).sum(), id="a-constant-that-broadcasts"),
    pytest.param(lambda x: (torch.full((2, 3), 2.0, dtype=x.dtype) * x).sum(), id="full-that-broadcasts"),
    pytest.param(lambda x: _mutated_constant(x), id="a-constant-written-by-a-traced-op"),
    pytest.param(lambda x: (torch.softmax(x @ W3, 0) * x).sum(), id="matmul-of-a-vector"),
    pytest.param(lambda x: torch.where(x > 0, x, 0.0).permute(0) * 2, id="identity-permute"),
    pytest.param(lambda x: _unsqueezed(x), id="in-place-shape-op"),
])
def test_forwards_the_attack_found_are_traced_to_what_they_compute(forward):
    _agrees(forward, X, names=("x",))


def test_a_mask_that_selects_one_element_at_one_point_and_two_at_another(write_case):
    # torch views a one-element selection as a scalar before writing it: the trees agree all the same
    (result,) = _run(write_case, "Masked", "{x: {points: [[0.3, -1.2, 2.5], [1.0, 0.5, 2.0]]}}", "[value, vjp]")
    assert result.status == "pass", result.message


def test_softplus_is_traced_as_torch_computes_it_above_its_threshold(write_case):
    tree = _agrees(lambda x: torch.nn.functional.softplus(x, threshold=1.0), X * 3, names=("x",))
    assert tree == _expr("where(x > 1, x, softplus(x, beta=1, threshold=1))", ("x",))
    _agrees(lambda x: torch.nn.functional.softplus(x * 10), X * 3, names=("x",))  # x*10 = 25 > 20: x*10 itself


@pytest.mark.parametrize("forward", [
    pytest.param(lambda x: torch.nn.functional.linear(x, W3, W3[0].clone()), id="linear-with-bias"),
    pytest.param(lambda x: torch.nn.functional.logsigmoid(x), id="logsigmoid"),
    pytest.param(lambda x: (x > 0).double(), id="a-comparison-as-the-output"),
    pytest.param(lambda x: x * x.max() - x.min(), id="max-and-min-of-the-whole-tensor"),
    pytest.param(lambda x: x / x.sum(-1, keepdim=True), id="sum-keepdim"),
    pytest.param(lambda x: x - torch.linalg.vector_norm(x, dim=0, keepdim=True), id="norm-keepdim"),
    pytest.param(lambda x: torch.cat([x, x * 2]) * torch.stack([x, x]).sum(0).sum(), id="cat-and-stack"),
    pytest.param(lambda x: x.var() + x.std(correction=0), id="var-and-std"),
    pytest.param(lambda x: x * torch.tensor(1.5, dtype=torch.float64).item(), id="item-of-a-constant"),
    pytest.param(lambda x: torch.zeros_like(x, dtype=x.dtype) + x.mean(dtype=torch.float64), id="dtype-its-own"),
])
def test_common_forwards_the_second_attack_listed(forward):
    _agrees(forward, X, names=("x",))


def test_an_output_that_is_not_a_tensor_is_one_line():
    with pytest.raises(Untraceable, match="output 'y' is a NoneType, not a tensor"):
        trace_forward(lambda x: (None,), [(X,)], ["x"])


def _mutated_constant(x):
    c = torch.ones(3, dtype=x.dtype)
    c.mul_(x)  # c is x now: the exact side reads c as it was before the write
    return c * 2


def _unsqueezed(x):
    y = x * 2
    y.unsqueeze_(0)
    return (y * torch.ones(2, 1, dtype=x.dtype)).sum()


@pytest.mark.parametrize(("forward", "expected"), [
    pytest.param(lambda x: torch.cumsum(x, 0, dtype=torch.float32), "dtype=torch.float32", id="cumsum-dtype"),
    pytest.param(lambda x: (x.view(torch.int64) + 1).view(torch.float64), "reinterprets the bits", id="view-dtype"),
    pytest.param(lambda x: torch.clamp(x, 2.0, 1.0), "min > max", id="clamp-min-above-max"),
    pytest.param(lambda x: torch.copysign(x, -0.0), "-0.0", id="signed-zero"),
    pytest.param(lambda x: _out_into(x), "out=", id="out"),
    pytest.param(lambda x: x.reshape(3, 1).sum((0, 1)), "takes arguments the catalogue's does not", id="several-dims"),
    pytest.param(lambda x: torch.logit(x.abs() / 3, eps=1e-6), "takes arguments the catalogue's does not",
                 id="logit-eps"),
    pytest.param(lambda x: x * True, "a bool operand", id="bool-scalar"),
    pytest.param(lambda x: torch.nn.functional.elu(x, 1.0) * 1.0 + torch.ops.aten.elu(x, 1.0, 2.0), "scale",
                 id="elu-scale"),
])
def test_what_the_attack_found_mapped_wrongly_is_refused_with_op_and_line(forward, expected):
    with pytest.raises(Untraceable) as caught:
        trace_forward(lambda x: (forward(x),), [(X,)], ["x"])
    message = str(caught.value)
    assert expected in message and "\n" not in message and "aten." in message and "test_trace.py:" in message


def test_a_float64_constant_in_a_float32_forward_is_refused():
    threshold = torch.tensor([0.1, 0.1, 0.1], dtype=torch.float64)
    with pytest.raises(Untraceable, match="computes in torch.float64 inside a torch.float32 forward"):
        trace_forward(lambda x: (torch.where(x > threshold, x, 0.0),), [(X.float(),)], ["x"])


def _out_into(x):
    y = x * 0 + 1
    with torch.no_grad():  # (autograd refuses out= on tensors that require grad)
        torch.add(x, 1, out=y)
    return y * x


def test_a_trace_that_does_not_give_the_forwards_output_is_refused_before_any_verdict(write_case, monkeypatch):
    import harness.trace as tr

    monkeypatch.setattr(tr, "_catalogue_name", lambda name: "cos" if name == "sin" else name)  # a wrong map
    (result,) = _run(write_case, "ScaledSin", XY, "[value, vjp]")
    assert result.status == "error" and "its traced expression does not give the output 'out' it returned" \
           in result.message and "please report it" in result.message


@pytest.mark.parametrize(("forward", "expected"), [
    pytest.param(lambda x: x.float().double(), "converts a value from torch.float64 to torch.float32", id="rounding"),
    pytest.param(lambda x: torch.zeros(3, dtype=x.dtype), "does not depend on the inputs", id="constant"),
    pytest.param(lambda x: torch.nonzero(x > 0).double(), "aten.nonzero.default", id="nonzero"),
    pytest.param(lambda x: x[x > 0], "masked selection", id="selection-as-output"),
    pytest.param(lambda x: _write_through_view(x), "in-place", id="view"),
    pytest.param(lambda x: _half_written(x), "never writes", id="empty"),
    pytest.param(lambda x: torch.div(x, 2.0, rounding_mode="floor"), "has no catalogue op", id="rounding-mode"),
    pytest.param(lambda x: x * torch.tensor(float("inf")), "inf or nan", id="infinite-constant"),
])
def test_what_cannot_be_mapped_is_refused(forward, expected):
    with pytest.raises(Untraceable, match=expected):
        trace_forward(lambda x: (forward(x),), [(X,)], ["x"])


def _write_through_view(x):
    y = x.clone()
    y.unsqueeze(0).mul_(2)  # a view of another layout
    return y


@pytest.mark.parametrize("alias", [
    pytest.param(lambda y: y.detach(), id="detach"),
    pytest.param(lambda y: y.data, id="data"),
    pytest.param(lambda y: y.view(-1), id="view-of-the-same-layout"),
])
def test_a_write_through_an_alias_is_the_value_of_every_alias(alias):
    def forward(x):
        y = x * 1.5
        alias(y).mul_(2)
        return y

    (_, tree), = trace_forward(lambda x: (forward(x),), [(X,)], ["x"]).outputs
    assert tree == _expr("x * 1.5 * 2", ("x",))


def _half_written(x):
    out = torch.empty_like(x)
    out[x > 0] = 1.0
    return out


# ---------------------------------------------------------------- whole cases without expr:

CASE = """
name: {name}
target: traced_functions:{target}
inputs: {inputs}
checks: {checks}
dtype: {dtype}
"""
XY = "{x: [0.3, -1.2, 2.5], y: [1.5, 2.0, -0.5]}"
XS = "{x: {shape: [16], sample: {uniform: [-2, 2]}}}"
X3 = "{x: {points: [[0.3, -1.2, 2.5], [1.0, 0.5, -0.25]]}}"


def _run(write_case, target, inputs=XS, checks="[value, vjp]", dtype="float64", extra=""):
    text = CASE.format(name=target.lower(), target=target, inputs=inputs, checks=checks, dtype=dtype) + extra
    (case,) = load_file(write_case(text))
    return check_case(case, Options(allow_targets=True))


@pytest.mark.parametrize(("target", "inputs", "checks"), [
    pytest.param("ScaledSin", XY, "[value, vjp, grad2]", id="classic-elementwise"),
    pytest.param("Branches", X3, "[value, vjp]", id="new-style-where-buffer"),
    pytest.param("Masked", XS, "[value, vjp]", id="masked-assignment"),
    pytest.param("Clamped", XS, "[value, vjp]", id="masked-constant"),
    pytest.param("SumSquares", XS, "[value, grad, grad2]", id="reduction"),
])
def test_correct_functions_pass_without_an_expression(write_case, target, inputs, checks):
    for result in _run(write_case, target, inputs, checks, dtype="[float32, float64]"):
        assert result.status == "pass", result.message  # (torch.func paths of classic Functions: unsupported)
        assert result.exact_side.startswith("traced from forward: ") and result.exact_side.endswith(" ATen ops")
        assert {c.check for c in result.comparisons} == set(checks.strip("[]").split(", "))


def test_a_backward_constant_off_by_1e_11_is_caught_in_float64_without_expr(write_case):
    (result,) = _run(write_case, "ScaledSinOff", XY, "[value, vjp]")
    vjp = [c for c in result.comparisons if c.check == "vjp" and c.status == "fail"]
    assert result.status == "fail" and vjp
    assert all(c.worst.rel_error == pytest.approx(1e-11, rel=0.01) and c.max_ulps > 1e4 for c in vjp)
    assert "pass" in [c.status for c in result.comparisons if c.check == "value"]  # the forward is its own exact side


def test_sampled_inputs_get_the_critical_points_of_the_traced_ops(write_case):
    # selu's kink at 0 is one of its critical points: the forward is traced again there, and held to it
    (result,) = _run(write_case, "Selu", "{x: {shape: [8], sample: {uniform: [-2, 2]}}}", "[value, vjp]")
    assert result.status == "kink" and result.exact_side == "traced from forward: 1 ATen op", result.message
    assert any(c.kinks for c in result.comparisons if c.check == "vjp")


def test_an_untraceable_forward_without_expr_is_the_cases_one_line_error(write_case):
    (result,) = _run(write_case, "Bessel", checks="[value]")
    assert result.status == "error" and result.bad_input and "\n" not in result.message
    assert "case.yaml:3: cannot trace the forward: aten.special_bessel_j0.default (" in result.message


def test_with_expr_too_the_forward_is_compared_with_it_apart_from_the_derivatives(write_case):
    (same,) = _run(write_case, "Threshold", "{x: [0.3, 0.55, 2.5]}", "[vjp]", extra="expr: where(x > 0.5, x, 0)\n")
    assert same.status == "pass" and same.exact_side == "expr; forward traced: 2 ATen ops, compared with it"
    assert [(c.check, c.status) for c in same.comparisons if c.check == "forward"] == [("forward", "pass")]
    (other,) = _run(write_case, "Threshold", "{x: [0.3, 0.55, 2.5]}", "[vjp]", extra="expr: where(x > 0.6, x, 0)\n")
    (forward,) = [c for c in other.comparisons if c.check == "forward"]
    assert forward.status == "fail" and forward.mismatched == 1 and forward.count == 3
    assert "the traced forward differs from expr: at 1 of 3 element(s) by more than one ulp; the most at point 1" \
           " (x=[0.3, 0.55, 2.5]) element 1: forward 0.55, expr 0.0" in forward.message
    # a forward that cannot be traced leaves the case to its expression, and says why
    (alone,) = _run(write_case, "Bessel", checks="[value]", extra="expr: x\n")
    assert alone.exact_side == "expr; forward not traced" and "aten.special_bessel_j0" in alone.untraced
    assert not [c for c in alone.comparisons if c.check == "forward"]


def test_a_forward_within_one_ulp_of_expr_is_the_same_function_at_this_precision(write_case):
    # x / 10 against 0.1 * x: 0.1 is float64(0.1), 5.5e-17 relative from a tenth; exactly, they differ
    (result,) = _run(write_case, "tenth", "{x: {shape: [64], sample: {uniform: [-100, 100]}}}", "[value, vjp]",
                     extra="expr: 0.1 * x\n")
    (forward,) = [c for c in result.comparisons if c.check == "forward"]
    assert result.status == "pass" and forward.status == "pass" and 0 < forward.max_ulps < 1
    assert "agrees with expr: within" in forward.message and "(under one)" in forward.message
    (off,) = _run(write_case, "tenth", "{x: {shape: [64], sample: {uniform: [-100, 100]}}}", "[value]",
                  extra="expr: 0.1000001 * x\n")
    (forward,) = [c for c in off.comparisons if c.check == "forward"]
    assert forward.status == "fail" and forward.mismatched == 64 and forward.max_ulps > 1e8


def test_show_prints_the_traced_forward_in_case_syntax_that_reads_back_to_it(write_case):
    (case,) = load_file(write_case(CASE.format(name="m", target="Masked", inputs=XS, checks="[value]",
                                               dtype="float64")))
    text = show_case(case, Options(allow_targets=True))
    assert "  exact side: traced from forward: 10 ATen ops" in text
    line = next(s for s in text.splitlines() if "traced forward, as a case's expr: " in s)
    expr = line.split("expr: ", 1)[1]
    assert expr == "where(x > 0, log1p(x), sin(x))"
    (again,) = _run(write_case, "Masked", checks="[value, vjp]", extra=f"expr: {expr}\n")
    assert again.status == "pass" and [c.status for c in again.comparisons if c.check == "forward"] == ["pass"]


def test_the_python_api_needs_no_expression():
    (result,) = harness.check(tf.ScaledSin, x=X, y=Y, checks=["value", "vjp"])
    assert result.status == "pass" and result.exact_side == "traced from forward: 3 ATen ops"
    with pytest.raises(AssertionError, match="vjp"):
        harness.assert_derivatives(tf.ScaledSinOff, x=X, y=Y, checks=["vjp"])


def test_the_json_report_says_which_exact_side(write_case, tmp_path):
    path = write_case(CASE.format(name="s", target="ScaledSin", inputs=XY, checks="[value]", dtype="float64"))
    reports = tmp_path / "reports"
    assert harness.cli.main(["run", str(path), "--allow-target", "--reports", str(reports)]) == 0
    (result,) = json.loads((reports / "report.json").read_text())["results"]
    assert result["exact_side"] == "traced from forward: 3 ATen ops"
