"""`harness show`: the exact side the run built (through prepare), and the run's results beside it."""

from harness.cases import load_text
from harness.run import check_case
from harness.show import show


def test_show_prints_the_exact_side_the_run_used_and_the_results():
    (case,) = load_text("name: s\ninputs: {x: 0.5}\nconstants: {a: 3}\nexpr: a*sin(x)*x\n"
                        "checks: [value, grad, grad2]\n")
    text, statuses = show(case)
    lines = text.splitlines()
    assert lines[0].startswith("case s (")
    (result,) = check_case(case)
    assert lines[1] == f"y = {result.exact['y']}"  # the very expression the run compared against
    assert "  dy/dx = 3*x*cos(x) + 3*sin(x)" in [line.split("    [")[0] for line in lines]  # the constant folded in
    assert "  d2y/dx2 = -3*x*sin(x) + 6*cos(x)" in lines
    assert statuses == ("pass",) and "[float64] pass" in lines


def test_show_of_a_case_without_an_exact_side_says_why_and_still_lists_the_results():
    (case,) = load_text("name: s\ninputs: {x: [1, 2], y: [1, 2, 3]}\nexpr: x + y\nchecks: [value]\n")
    text, statuses = show(case)
    assert statuses == ("error",)
    assert "<text>:3: output 'out': inputs x (shape [2]), y (shape [3]) do not broadcast together" in text
    assert "[float64] error" in text


def test_show_prints_each_path_beside_the_exact_value():
    (case,) = load_text("name: s\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [grad]\nxfail: never mind\n")
    text, statuses = show(case)
    assert statuses == ("xpass",) and "[float64] xpass" in text  # the case's xfail did not fail
    assert "grad > y.backward() -> .grad > x: pass: torch 0.8775825618903728  exact 0.8775825618903728" in text
