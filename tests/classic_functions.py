"""Custom autograd Functions written the way tutorials and most real code write them.

Classic style: `forward(ctx, ...)` and `backward(ctx, grad)` with `ctx.save_for_backward`; no
`setup_context`, no vmap rule, no `jvp`. Each wrong one is wrong on purpose, in one way, by a
relative 1e-12 in float64 and 1e-5 in float32 (what finite differences cannot see). The last
ones are new style, with and without the vmap rule and jvp.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) to a few ulps everywhere: x + log1p(exp(-x)) for x > 0, log1p(exp(x)) else.
    (F.softplus returns x itself above its threshold of 20, 2e-9 off at 20.000000000000004.) Each
    branch sees only its own side's x, so neither overflows, and autograd through it (the double
    backward) has no kink at 0 and no nan leaking from the branch not taken."""
    up = x > 0
    pos, neg = torch.where(up, x, 0.0), torch.where(up, 0.0, x)
    return torch.where(up, pos + torch.log1p(torch.exp(-pos)), torch.log1p(torch.exp(neg)))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """sigmoid(x) as exp(-softplus(-x)): its derivative, sigmoid(x)*sigmoid(-x), is then formed
    by torch without cancelling (torch.sigmoid's own backward, y*(1 - y), loses up to 1e8 ulps
    near x = 18 in float64: harness finding, see the README), so double backward is accurate."""
    return torch.exp(-softplus(-x))


def _off(t: torch.Tensor) -> float:
    """1 + a relative error of a few thousand ulps of the dtype."""
    return 1 + (1e-12 if t.dtype == torch.float64 else 1e-5)


class Softplus(torch.autograd.Function):
    """A correct, stable softplus."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x)


class SoftplusWrongFirst(torch.autograd.Function):
    """Its first derivative is off by a relative 1e-12 (float64) / 1e-5 (float32)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x) * _off(x)


class _Sigmoid(torch.autograd.Function):
    """sigmoid whose own backward is off: right when used once, wrong when differentiated again."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x) * sigmoid(-x) * _off(x)


class SoftplusWrongSecond(torch.autograd.Function):
    """Right first derivative; its double backward goes through _Sigmoid's wrong backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * _Sigmoid.apply(x)


class SoftplusIgnoresCotangent(torch.autograd.Function):
    """A backward that keeps the cotangent's sign but drops its size (right only for v = 1)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.sign(grad) * sigmoid(x)


class SoftplusSloppy(torch.autograd.Function):
    """Backward 1 - sigmoid(-x): equal in exact arithmetic, a relative 1e-3 off at x = -30."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - torch.sigmoid(-x))


class SoftplusOnce(torch.autograd.Function):
    """A correct softplus whose backward is @once_differentiable: no double backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x)


class Mul(torch.autograd.Function):
    """a * b, correct."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a


class MulWrongSecondInput(torch.autograd.Function):
    """a * b whose gradient for b only is off."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a * _off(a)


class Div(torch.autograd.Function):
    """x / y: its inputs are not symmetric, so binding them by position in the wrong order shows."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad / y, -grad * x / (y * y)


def divide(x, y):
    """A plain wrapper, as people write them around .apply."""
    return Div.apply(x, y)


def divide_all(*args):
    """*args: the inputs in the case's order."""
    return Div.apply(*args)


class LegendrePolynomial3(torch.autograd.Function):
    """The PyTorch tutorial's custom Function: P3(x) = (5x^3 - 3x) / 2."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class BadBackward(torch.autograd.Function):
    """A backward with a bug that raises: an error of the user's code, with its line."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.cos(x)[: x.numel() // 2]  # wrong shape


class RaisesTorchsWords(torch.autograd.Function):
    """User code that raises with the very words torch uses for a missing jvp: still an error."""

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError("You must implement the jvp function for custom autograd.Function to use it with"
                                  " forward mode AD.")

    @staticmethod
    def backward(ctx, grad):
        return grad


class SoftplusNew(torch.autograd.Function):
    """New style (setup_context), no vmap rule and no jvp: torch.func.vjp runs, vmap and forward mode don't."""

    @staticmethod
    def forward(x):
        return softplus(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x)


class SoftplusNewFull(torch.autograd.Function):
    """New style with generate_vmap_rule and jvp: every path runs."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return softplus(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.x = inputs[0]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sigmoid(x)

    @staticmethod
    def jvp(ctx, x_t):
        return x_t * sigmoid(ctx.x)


class SoftplusNewWrongJvp(SoftplusNewFull):
    """Right backward, forward mode off: only the forward-mode paths fail."""

    @staticmethod
    def jvp(ctx, x_t):
        return x_t * sigmoid(ctx.x) * _off(ctx.x)


class Holder:
    """An object whose attribute is the target (module:obj.attr)."""

    def __init__(self) -> None:
        self.softplus = Softplus.apply


holder = Holder()


# a case of Softplus with a check (jvp) that a classic Function cannot run on any path
CLASSIC_CASE = """
name: classic
inputs: {x: {points: [-1.0, 0.5, 2.0]}}
expr: softplus(x)
target: classic_functions:Softplus
checks: [value, vjp, jvp]
"""
