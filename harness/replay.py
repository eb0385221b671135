"""Torch optimizers' update rules in exact arithmetic (Arb balls), for the `minimize` check.

Each rule is the one torch documents for `torch.optim.SGD`, `Adam`, `AdamW` and `RMSprop`,
applied to one parameter's elements. `step` advances exact parameters and state by one update
from an exact gradient; the state holds what torch keeps in `optimizer.state` under the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from flint import arb

from harness.errors import HarnessError

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop")
DEFAULTS: dict[str, dict[str, Fraction | bool]] = {
    "SGD": {"lr": Fraction(1, 1000), "momentum": Fraction(0), "dampening": Fraction(0),
            "weight_decay": Fraction(0), "nesterov": False},
    "Adam": {"lr": Fraction(1, 1000), "beta1": Fraction(9, 10), "beta2": Fraction(999, 1000),
             "eps": Fraction(1, 10**8), "weight_decay": Fraction(0)},
    "AdamW": {"lr": Fraction(1, 1000), "beta1": Fraction(9, 10), "beta2": Fraction(999, 1000),
              "eps": Fraction(1, 10**8), "weight_decay": Fraction(1, 100)},
    "RMSprop": {"lr": Fraction(1, 100), "alpha": Fraction(99, 100), "eps": Fraction(1, 10**8),
                "weight_decay": Fraction(0), "momentum": Fraction(0), "centered": False},
}

State = dict[str, list[arb]]


@dataclass(frozen=True)
class Optimizer:
    """An optimizer and its hyper-parameters, as torch receives them (already rounded)."""

    name: str
    hyper: dict[str, arb | bool]

    def torch_kwargs(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in self.hyper.items():
            if key in ("beta1", "beta2"):
                continue
            out[key] = value if isinstance(value, bool) else float(value)
        if self.name in ("Adam", "AdamW"):
            out["betas"] = (float(self.hyper["beta1"]), float(self.hyper["beta2"]))  # type: ignore[arg-type]
        return out


def _h(opt: Optimizer, key: str) -> arb:
    return opt.hyper[key]  # type: ignore[return-value]


def step(opt: Optimizer, t: int, params: list[arb], grads: list[arb], state: State) -> tuple[list[arb], State]:
    """One update (t counts from 1), elementwise over one parameter's elements."""
    rule = _RULES[opt.name]
    out_p, out_s = [], {k: list(v) for k, v in state.items()}
    for i, (p, g) in enumerate(zip(params, grads)):
        local = {k: v[i] for k, v in state.items()}
        new_p, new_local = rule(opt, t, p, g, local)
        out_p.append(new_p)
        for k, v in new_local.items():
            out_s.setdefault(k, [arb(0)] * len(params))[i] = v
    return out_p, out_s


def _sgd(opt: Optimizer, t: int, p: arb, g: arb, s: dict[str, arb]) -> tuple[arb, dict[str, arb]]:
    g = g + _h(opt, "weight_decay") * p
    mu = _h(opt, "momentum")
    if mu != 0:
        b = g if t == 1 else mu * s["momentum_buffer"] + (1 - _h(opt, "dampening")) * g
        s = {"momentum_buffer": b}
        g = g + mu * b if opt.hyper["nesterov"] else b
    return p - _h(opt, "lr") * g, s


def _adam(opt: Optimizer, t: int, p: arb, g: arb, s: dict[str, arb]) -> tuple[arb, dict[str, arb]]:
    lr, b1, b2, eps, wd = (_h(opt, k) for k in ("lr", "beta1", "beta2", "eps", "weight_decay"))
    if opt.name == "AdamW":
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = b1 * s.get("exp_avg", arb(0)) + (1 - b1) * g
    v = b2 * s.get("exp_avg_sq", arb(0)) + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return p - lr * m_hat / (v_hat.sqrt() + eps), {"exp_avg": m, "exp_avg_sq": v}


def _rmsprop(opt: Optimizer, t: int, p: arb, g: arb, s: dict[str, arb]) -> tuple[arb, dict[str, arb]]:
    lr, alpha, eps, wd, mu = (_h(opt, k) for k in ("lr", "alpha", "eps", "weight_decay", "momentum"))
    g = g + wd * p
    v = alpha * s.get("square_avg", arb(0)) + (1 - alpha) * g * g
    new: dict[str, arb] = {"square_avg": v}
    if opt.hyper["centered"]:
        ga = alpha * s.get("grad_avg", arb(0)) + (1 - alpha) * g
        new["grad_avg"] = ga
        avg = (v - ga * ga).sqrt() + eps
    else:
        avg = v.sqrt() + eps
    if mu != 0:
        buf = mu * s.get("momentum_buffer", arb(0)) + g / avg
        new["momentum_buffer"] = buf
        return p - lr * buf, new
    return p - lr * g / avg, new


_RULES: dict[str, Callable[..., tuple[arb, dict[str, arb]]]] = {
    "SGD": _sgd, "Adam": _adam, "AdamW": _adam, "RMSprop": _rmsprop}


def make(name: str, given: dict[str, Fraction | bool], rounder: Callable[[Fraction], arb]) -> Optimizer:
    """The optimizer with defaults filled in and every number rounded as torch receives it."""
    if name not in OPTIMIZERS:
        from harness.expr import did_you_mean

        choices = ", ".join(OPTIMIZERS)
        raise HarnessError(f"unknown optimizer {name!r}{did_you_mean(name, OPTIMIZERS)} (one of {choices})")
    values = dict(DEFAULTS[name])
    for key, value in given.items():
        if key not in values:
            from harness.expr import did_you_mean

            raise HarnessError(f"{name} has no hyper-parameter {key!r}{did_you_mean(key, list(values))}")
        values[key] = value
    if name == "SGD" and values["nesterov"] and (values["momentum"] == 0 or values["dampening"] != 0):
        raise HarnessError("SGD's nesterov needs a momentum and zero dampening (as torch requires)")
    return Optimizer(name, {k: v if isinstance(v, bool) else rounder(v) for k, v in values.items()})
