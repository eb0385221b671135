"""The exact optimizer rules agree with torch.optim in float64, and a wrong rule is caught."""

from fractions import Fraction

import pytest
import torch
from flint import arb

from harness import replay
from harness.balls import precision
from harness.cases import load_file
from harness.checks import _trajectory_comparisons
from harness.prepare import Options, Prepared, prepare


def exact(q):
    return arb(float(q))


@pytest.mark.parametrize("name, hyper", [
    pytest.param("SGD", {"lr": Fraction(1, 10), "momentum": Fraction(9, 10), "nesterov": True}, id="sgd-nesterov"),
    pytest.param("Adam", {"lr": Fraction(1, 20), "weight_decay": Fraction(1, 100)}, id="adam"),
    pytest.param("AdamW", {"lr": Fraction(1, 20)}, id="adamw"),
    pytest.param("RMSprop", {"centered": True, "momentum": Fraction(1, 2)}, id="rmsprop"),
])
def test_rules_match_torch_in_float64(name, hyper):
    opt = replay.make(name, hyper, exact)
    x = torch.tensor([0.75, -1.25], dtype=torch.float64, requires_grad=True)
    torch_opt = getattr(torch.optim, name)([x], **opt.torch_kwargs())
    params, state = [arb(0.75), arb(-1.25)], {}
    for t in range(1, 20):
        torch_opt.zero_grad()
        (x**2 / 2 + x**4 / 4).sum().backward()
        torch_opt.step()
        with precision(300):
            grads = [p + p**3 for p in params]
            params, state = replay.step(opt, t, params, grads, state)
        for got, want in zip(x.detach().tolist(), params):
            assert abs(got - float(want)) <= 1e-12 * max(1.0, abs(float(want)))


def test_unknown_optimizer_and_hyperparameter():
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="did you mean 'Adam'"):
        replay.make("Adma", {}, exact)
    with pytest.raises(HarnessError, match="no hyper-parameter 'betas'"):
        replay.make("Adam", {"betas": Fraction(1)}, exact)


def test_a_replay_with_another_learning_rate_fails_the_step_check(write_case):
    (case,) = load_file(write_case("""
        name: sgd
        inputs: {x: 0.0}
        expr: (x - 1)**2
        checks: [{minimize: {optimizer: SGD, lr: 0.01, steps: 20}}]
    """))
    ctx: Prepared = prepare(case, "float64", Options())
    from harness import autodiff

    wrong = replay.make("SGD", {"lr": Fraction(1, 100) * (1 + Fraction(1, 10**12))}, exact)
    right = replay.make("SGD", {"lr": Fraction(1, 100)}, exact)
    trajectory = autodiff.run_optimizer(ctx.function, ctx.primals[0], 0, "SGD", right.torch_kwargs(), 20)
    check = case.checks[0]
    statuses = {c.path.split(" (")[0]: c.status for c in _trajectory_comparisons(ctx, check, wrong, trajectory, 0)}
    assert statuses["optimizer.step() vs exact step"] == "fail"
    statuses = {c.path.split(" (")[0]: c.status for c in _trajectory_comparisons(ctx, check, right, trajectory, 0)}
    assert statuses["optimizer.step() vs exact step"] == "pass"
