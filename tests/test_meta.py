"""Meta-tests: derivatives that are wrong on purpose must make the harness fail; their twins pass."""

import pytest

CASE = """
name: meta
inputs: {{{inputs}}}
expr: {expr}
target: meta_functions:{target}
checks: [value, vjp, jvp, grad2]
dtype: {dtype}
seed: 5
"""
SIN = ("x: {shape: [64], sample: {uniform: [-3, 3]}}", "sin(x)")
MUL = ("a: {shape: [16], sample: {uniform: [-3, 3]}}, b: {shape: [16], sample: {uniform: [-3, 3]}}", "a*b")


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("target, spec, failing", [
    pytest.param("sin_correct", SIN, set(), id="sin-correct"),
    pytest.param("sin_wrong_first", SIN, {"vjp", "jvp", "grad2"}, id="first-derivative-only"),
    pytest.param("sin_wrong_second", SIN, {"grad2"}, id="second-derivative-only"),
    pytest.param("sin_wrong_negative", SIN, {"vjp", "jvp", "grad2"}, id="wrong-for-negative-x"),
    pytest.param("sin_ignores_cotangent", SIN, {"vjp"}, id="vjp-ignores-cotangent-scale"),
    pytest.param("mul_correct", MUL, set(), id="mul-correct"),
    pytest.param("mul_wrong_second_input", MUL, {"vjp", "jvp", "grad2"}, id="wrong-for-second-input"),
])
def test_wrong_derivatives_fail_and_right_ones_pass(run_case, target, spec, failing, dtype):
    inputs, expr = spec
    (result,) = run_case(CASE.format(inputs=inputs, expr=expr, target=target, dtype=dtype))
    failed = {c.check for c in result.comparisons if c.status == "fail"}
    assert failed == failing, [c.message for c in result.comparisons if c.status != "pass"]
    assert result.status == ("fail" if failing else "pass")


def test_wrong_second_input_is_attributed_to_that_input(run_case):
    (result,) = run_case(CASE.format(inputs=MUL[0], expr=MUL[1], target="mul_wrong_second_input", dtype="float64"))
    vjp_parts = {c.part for c in result.comparisons if c.check == "vjp" and c.status == "fail"}
    assert vjp_parts == {"b"}


def test_the_harness_sees_what_finite_differences_miss():
    import torch
    from meta_functions import SinWrongFirst

    x = torch.linspace(-3, 3, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SinWrongFirst.apply, (x,))  # gradcheck passes the 1e-12 error


def test_a_compiled_backward_that_differs_from_eager_is_caught_and_attributed(run_case):
    case = CASE.format(inputs=SIN[0], expr=SIN[1], target="sin_wrong_when_compiled", dtype="float64")
    case = case.replace("checks: [value, vjp, jvp, grad2]", "checks: [value, vjp]\ncompile: aot_eager")
    (result,) = run_case(case)
    failed = {(c.check, c.path) for c in result.comparisons if c.status == "fail"}
    backward_paths = ("y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)", "(y * v).sum().backward()")
    assert failed == {("vjp", f"{path} [torch.compile aot_eager]") for path in backward_paths}
    eager = [c for c in result.comparisons if "torch.compile" not in c.path]
    assert eager and all(c.status == "pass" for c in eager)  # eager is right: the compiled graph is to blame
    (eager_only,) = run_case(case.replace("compile: aot_eager", ""))
    assert eager_only.status == "pass"


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("target, failing", [("complex_square_correct", set()),
                                             ("complex_square_unconjugated", {"vjp", "wirtinger"})])
def test_a_complex_backward_without_the_conjugate_fails(run_case, target, failing, dtype):
    (result,) = run_case(f"""
        name: complex-meta
        inputs: {{z: {{shape: [16], sample: {{uniform: [-2, 2]}}}}}}
        expr: square(z)
        target: meta_functions:{target}
        checks: [value, vjp, wirtinger]
        dtype: {dtype}
    """)
    assert {c.check for c in result.comparisons if c.status == "fail"} == failing, result.message
    assert result.status == ("fail" if failing else "pass")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("target, failing", [("sin_correct", set()), ("sin_wrong_second", {2, 3, 4})])
def test_higher_derivatives_by_repeated_backward(run_case, target, failing, dtype):
    case = CASE.format(inputs=SIN[0], expr=SIN[1], target=target, dtype=dtype).replace(
        "checks: [value, vjp, jvp, grad2]",
        "checks: [{derivative: {order: 2}}, {derivative: {order: 3}}, {derivative: {order: 4}}, hvp]")
    (result,) = run_case(case)
    failed = {order for order in (2, 3, 4)
              if any(c.status == "fail" for c in result.comparisons
                     if c.check == "derivative" and c.part.startswith(f"d{order} "))}
    # sin_wrong_second's cos has a backward off by (1 + eps): every derivative past the first is off
    # by it, since torch differentiates that backward again
    assert failed == failing, [c.message for c in result.comparisons if c.status == "fail"]
    assert any(c.check == "hvp" for c in result.comparisons)


@pytest.mark.parametrize("target, failing", [("sin_correct", set()), ("sin_wrong_first", {"vjp", "jvp"})])
def test_subnormal_inputs_still_catch_a_wrong_first_derivative(run_case, target, failing):
    """Roundings to subnormals are charged their absolute error; that must not hide a derivative
    that is 1e-12 off at subnormal inputs (where sin(x) is subnormal and cos(x) is 1)."""
    case = CASE.format(inputs="x: {points: [[1.0e-310, -3.0e-315, 2.5e-320, 4.9e-324]]}", expr="sin(x)",
                       target=target, dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, jvp, grad2]", "checks: [value, vjp, jvp]"))
    failed = {c.check for c in result.comparisons if c.status == "fail"}
    assert failed == failing, [c.message for c in result.comparisons if c.status != "pass"]


# ---------------------------------------------------------------- classic-style Functions, as people write them

CLASSIC = """
name: classic
inputs: {{{inputs}}}
expr: {expr}
target: classic_functions:{target}
checks: [value, vjp, grad2]
dtype: {dtype}
seed: 3
"""
SOFTPLUS = ("x: {shape: [32], sample: {uniform: [-5, 5]}}", "softplus(x)")
TWO = ("a: {shape: [16], sample: {uniform: [-3, 3]}}, b: {shape: [16], sample: {uniform: [-3, 3]}}", "a*b")
LEGENDRE = ("x: {shape: [32], sample: {uniform: [-1, 1]}}", "0.5 * (5 * x**3 - 3 * x)")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("target, spec, failing", [
    pytest.param("Softplus", SOFTPLUS, set(), id="correct"),
    pytest.param("LegendrePolynomial3", LEGENDRE, set(), id="tutorial-legendre"),
    pytest.param("Mul.apply", TWO, set(), id="correct-two-inputs"),
    pytest.param("SoftplusWrongFirst", SOFTPLUS, {"vjp", "grad2"}, id="first-derivative-only"),
    pytest.param("SoftplusWrongSecond", SOFTPLUS, {"grad2"}, id="double-backward-only"),
    pytest.param("SoftplusIgnoresCotangent", SOFTPLUS, {"vjp"}, id="ignores-cotangent-scale"),
    pytest.param("MulWrongSecondInput", TWO, {"vjp", "grad2"}, id="wrong-for-second-input"),
])
def test_classic_functions_get_a_verdict_on_every_path_they_support(run_case, target, spec, failing, dtype):
    inputs, expr = spec
    (result,) = run_case(CLASSIC.format(inputs=inputs, expr=expr, target=target, dtype=dtype))
    by_status = {s: {c.path for c in result.comparisons if c.status == s} for s in ("fail", "error", "unsupported")}
    assert result.comparisons and not by_status["error"], [c.message for c in result.comparisons if c.status == "error"]
    # the torch.func paths need setup_context: unsupported, in every one of these Functions
    assert by_status["unsupported"] == {"torch.func.vmap over the points", "torch.func.vjp",
                                        "torch.func.jvp(torch.func.grad(v.y), w)"}
    assert {c.check for c in result.comparisons if c.status == "fail"} == failing, result.message
    assert result.status == ("fail" if failing else "pass")
    unsupported = next(c for c in result.comparisons if c.status == "unsupported")
    assert "setup_context staticmethod" in unsupported.message and "extending.func.html" in unsupported.message


def test_a_wrong_double_backward_fails_on_its_path_and_names_the_input(run_case):
    (result,) = run_case(CLASSIC.format(inputs=TWO[0], expr=TWO[1], target="MulWrongSecondInput", dtype="float64"))
    assert {c.part for c in result.comparisons if c.check == "vjp" and c.status == "fail"} == {"b"}
    (failed,) = [c for c in result.comparisons if c.check == "grad2" and c.status == "fail"]
    assert failed.path == "autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)"


def test_a_check_no_path_of_which_can_run_says_so_and_is_not_a_pass(run_case):
    case = CLASSIC.format(inputs=SOFTPLUS[0], expr=SOFTPLUS[1], target="Softplus", dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, grad2]", "checks: [value, vjp, jvp, jacobian]"))
    assert result.status == "unsupported"
    assert result.message.startswith("check jvp: no torch path could run")
    jvp = {c.path: c.message for c in result.comparisons if c.check == "jvp"}
    assert "forward mode needs a jvp staticmethod" in jvp["forward_ad.make_dual"]
    assert all(c.status == "unsupported" for c in result.comparisons if c.check in ("jvp", "jacobian"))


def test_once_differentiable_makes_double_backward_unsupported_not_failed(run_case):
    case = CLASSIC.format(inputs=SOFTPLUS[0], expr=SOFTPLUS[1], target="SoftplusOnce", dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, grad2]", "checks: [vjp, grad2, hessian, "
                                      "{derivative: {order: 2}}]").replace("shape: [32]", "shape: [4]"))
    backward = {(c.check, c.status) for c in result.comparisons if c.check == "vjp"}
    assert backward == {("vjp", "pass"), ("vjp", "unsupported")}
    assert {c.status for c in result.comparisons if c.check == "forward"} == {"pass"}  # traced == expr
    second = [c for c in result.comparisons if c.check not in ("vjp", "forward")]
    assert second and all(c.status == "unsupported" for c in second), [c.message for c in second]
    assert "@once_differentiable" in second[0].message and "SoftplusOnce" in second[0].message
    assert result.status == "unsupported"


def test_an_exception_in_the_users_backward_stays_an_error_with_its_line(run_case):
    case = CLASSIC.format(inputs=SOFTPLUS[0], expr="sin(x)", target="BadBackward", dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, grad2]", "checks: [value, vjp]"))
    errors = [c for c in result.comparisons if c.status == "error"]
    assert {c.path for c in errors} == {"y.backward(gradient=v)", "autograd.grad(y, inputs, grad_outputs=v)",
                                        "(y * v).sum().backward()"}
    assert "classic_functions.py:" in errors[0].message
    assert result.status == "error"


def test_torchs_words_raised_by_user_code_are_an_error_not_unsupported(run_case):
    case = CLASSIC.format(inputs=SOFTPLUS[0], expr="x", target="RaisesTorchsWords", dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, grad2]", "checks: [value]"))
    forward = {c.path: c for c in result.comparisons}["forward"]
    assert forward.status == "error" and "classic_functions.py:" in forward.message


@pytest.mark.parametrize("target, unsupported, failing, status", [
    pytest.param("SoftplusNew", {"torch.func.vmap over the points", "torch.func.jvp", "forward_ad.make_dual",
                                 "torch.func.jvp(torch.func.grad(v.y), w)", "torch.func.jacfwd"}, set(),
                 "unsupported", id="new-style-no-vmap-no-jvp"),  # jvp: neither of its paths can run
    pytest.param("SoftplusNewFull", set(), set(), "pass", id="new-style-full"),
    # forward-over-reverse differentiates the backward's ops in forward mode: the jvp staticmethod is not used
    pytest.param("SoftplusNewWrongJvp", set(), {"torch.func.jvp", "forward_ad.make_dual", "torch.func.jacfwd"},
                 "fail", id="new-style-wrong-jvp"),
])
def test_new_style_functions_with_and_without_vmap_and_jvp(run_case, target, unsupported, failing, status):
    case = CLASSIC.format(inputs=SOFTPLUS[0], expr=SOFTPLUS[1], target=target, dtype="float64")
    (result,) = run_case(case.replace("checks: [value, vjp, grad2]", "checks: [value, vjp, jvp, jacobian, grad2]"))
    assert {c.path for c in result.comparisons if c.status == "unsupported"} == unsupported
    assert {c.path for c in result.comparisons if c.status == "fail"} == failing
    assert not [c for c in result.comparisons if c.status == "error"]
    assert result.status == status
