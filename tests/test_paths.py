"""Path selection: per case, per check, on the command line."""

import pytest

from harness.cases import BadCase
from harness.cli import main
from harness.paths import Selection
from harness.registry import lookup

SCALAR = """
name: scalar
inputs: {x: {shape: [3], sample: {uniform: [0.5, 2]}}, y: {shape: [3], sample: {uniform: [0.5, 2]}}}
outputs: {a: sum(x * y), b: sum(exp(x) + y)}
checks: [value, grad, vjp, jvp, jacobian, grad2, hvp, hessian, multi, minimize]
"""
ELEMENTWISE = """
name: elementwise
inputs: {x: {shape: [3], sample: {uniform: [0.5, 2]}}}
expr: exp(x) * x
checks: [{derivative: {order: 3}}]
"""


def _paths(result, check=None):
    return {c.path for c in result.comparisons if check is None or c.check == check}


SELECTED = """
name: selected
inputs: {x: {shape: [3], sample: {uniform: [0.5, 2]}}, y: {shape: [3], sample: {uniform: [0.5, 2]}}}
outputs: {a: x * y, b: exp(x) + y}
checks: %s
paths: %s
"""
BACKWARD = {"y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)", "(y * v).sum().backward()",
            "autograd.grad([outputs], inputs)"}
DOUBLE = {"autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)",
          "autograd.grad per row (create_graph=True)", "autograd.grad 3 times (create_graph=True)"}
ALL = "[value, vjp, grad2, hessian, multi, {derivative: {order: 3}}]"
SECOND = "[value, grad2, hessian, {derivative: {order: 3}}]"


@pytest.mark.parametrize("checks, paths, kept", [
    pytest.param(ALL, "[backward, double-backward, forward]", BACKWARD | DOUBLE | {"forward"}, id="only-families"),
    pytest.param(SECOND, "{only: [double-backward, forward, torch.func], skip: ['torch.func.hessian(v.y)', vmap]}",
                 DOUBLE | {"forward", "torch.func.jvp(torch.func.grad(v.y), w)", "torch.func.grad nested 3 times"},
                 id="only-and-skip"),
    pytest.param(ALL, "{skip: [torch.func]}", BACKWARD | DOUBLE | {"forward"}, id="skip-a-family"),
])
def test_a_case_selects_paths_by_family_and_name(run_case, checks, paths, kept):
    (result,) = run_case(SELECTED % (checks, paths))
    assert _paths(result) == kept, result.message


def test_a_check_skips_paths_by_name_and_the_case_by_family(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: {shape: [4], sample: {uniform: [-2, 2]}}}
        expr: sin(x)
        paths: {skip: [vmap]}
        checks: [value, {vjp: {paths: {skip: [torch.func.vjp, "(y * v).sum().backward()"]}}}, jacobian]
    """)
    assert _paths(result, "value") == {"forward"}
    assert _paths(result, "vjp") == {"y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)"}
    assert _paths(result, "jacobian") == {"torch.func.jacrev"}


def test_compiled_paths_are_a_family(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: 0.5}
        expr: sin(x)
        compile: aot_eager
        checks: [{vjp: {paths: [compiled]}}]
    """)
    assert _paths(result) == {f"{p} [torch.compile aot_eager]" for p in
                              ("y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)",
                               "(y * v).sum().backward()")}


@pytest.mark.parametrize("paths, line, message", [
    pytest.param("[torch.func.vjpp]", 5, "paths: 'torch.func.vjpp' is no torch path of value, vjp nor a family"
                                         " (did you mean 'torch.func.vjp'?)", id="misspelled-path"),
    pytest.param("[fowrard-ad]", 5, "(did you mean 'forward-ad'?)", id="misspelled-family"),
    pytest.param("[forward-ad]", 6, "paths: check value has no torch path left to run", id="nothing-left"),
    pytest.param("{skip: [forward], keep: [x]}", 5, "paths takes 'only:' and 'skip:', not 'keep'", id="bad-key"),
])
def test_bad_selections_say_where_and_what(load_one, paths, line, message):
    case = load_one(f"""
        name: c
        inputs: {{x: 0.5}}
        expr: sin(x)
        paths: {paths}
        checks: [value, vjp]
    """)
    assert isinstance(case, BadCase)
    assert f"case.yaml:{line}: " in case.message and message in case.message, case.message


def test_a_derivative_path_is_named_with_its_order(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: {shape: [3], sample: {uniform: [-2, 2]}}}
        expr: sin(x)
        checks: [{derivative: {order: 3, paths: ["autograd.grad 3 times (create_graph=True)"]}}]
    """)
    assert _paths(result) == {"autograd.grad 3 times (create_graph=True)"}


def test_the_command_line_selects_and_refuses_unknown_names(tmp_path, capsys):
    import json

    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value, vjp, jvp]\n")
    reports = tmp_path / "r"
    assert main(["run", str(case), "--reports", str(reports), "--skip-paths", "torch.func",
                 "--paths", "backward", "--paths", "forward", "--paths", "forward-ad"]) == 0
    (result,) = json.loads((reports / "report.json").read_text())["results"]
    assert {c["path"] for c in result["comparisons"]} == {
        "forward", "y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)", "(y * v).sum().backward()",
        "forward_ad.make_dual"}
    assert main(["run", str(case), "--reports", str(reports), "--paths", "backwards"]) == 2
    assert "'backwards' is no torch path nor a family" in capsys.readouterr().out


def test_a_selection_keeps_what_all_its_terms_allow():
    assert Selection(skip=("vmap",)).keeps(lookup("value", "forward"))
    assert not Selection(skip=("vmap",)).keeps(lookup("value", "torch.func.vmap over the points"))
    assert not Selection(only=("backward",)).keeps(lookup("value", "forward"))
    assert Selection(only=("y.backward(gradient=v)",)).keeps(lookup("vjp", "y.backward(gradient=v) [torch.compile x]"))


def test_harness_ops_lists_the_paths(capsys):
    assert main(["ops", "--paths"]) == 0
    out = capsys.readouterr().out
    assert "grad2: torch.func.jvp(torch.func.grad(v.y), w) [forward-ad, torch.func]\n" in out
    assert "derivative: autograd.grad n times (create_graph=True) [double-backward]\n" in out
    assert "double-backward: reverse over reverse" in out


def test_a_run_selection_that_leaves_a_check_nothing_is_not_a_pass(tmp_path):
    import json

    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: exp(x)\nchecks: [value, vjp]\n")
    reports = tmp_path / "r"
    assert main(["run", str(case), "--reports", str(reports), "--paths", "forward-ad"]) == 0
    (result,) = json.loads((reports / "report.json").read_text())["results"]
    assert result["status"] == "unsupported" and "no torch path of value is selected" in result["message"]


@pytest.mark.parametrize("paths, message", [
    pytest.param("[]", "paths: is empty", id="empty-list"),
    pytest.param("{}", "paths: is empty", id="empty-mapping"),
    pytest.param("[compiled]", "check value has no torch path left to run (compiled paths need compile:)",
                 id="compiled-without-compile"),
])
def test_selections_that_mean_nothing_are_errors(load_one, paths, message):
    case = load_one(f"name: c\ninputs: {{x: 0.5}}\nexpr: sin(x)\npaths: {paths}\nchecks: [value]\n")
    assert isinstance(case, BadCase) and message in case.message, case.message


def test_a_bare_name_and_the_compiled_suffix_are_accepted(run_case):
    (result,) = run_case("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\npaths: forward\nchecks: [value]\n")
    assert {c.path for c in result.comparisons} == {"forward"}
    (compiled,) = run_case("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\ncompile: aot_eager\n"
                           "paths: ['forward [torch.compile aot_eager]']\nchecks: [value]\n")
    assert {c.path for c in compiled.comparisons} == {"forward [torch.compile aot_eager]"}


def test_two_checks_of_one_kind_are_judged_apart(run_case):
    (result,) = run_case("""
        name: c
        inputs: {x: {points: [0.5, 1.0]}}
        expr: softplus(x)
        target: classic_functions:Softplus
        checks: [vjp, {vjp: {v: ones, paths: [torch.func]}}]
    """)
    assert result.status == "unsupported" and result.message.startswith("check vjp: no torch path could run")
