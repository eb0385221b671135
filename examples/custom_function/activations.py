"""Custom autograd Functions as they are usually written (classic style: forward(ctx, ...) and
backward(ctx, grad), ctx.save_for_backward, no setup_context, vmap rule or jvp).

`harness run --allow-target examples/custom_function` checks them against the exact derivatives
in cases.yaml. SoftplusSloppy has a real precision bug that gradcheck does not see; Softplus
inherits two from torch: F.softplus returns x itself above 20, and torch.sigmoid's backward
cancels in the double backward. SoftplusStable avoids both.
"""

import torch
import torch.nn.functional as F


def softplus(x):
    """log(1 + exp(x)) to a few ulps everywhere: x + log1p(exp(-x)) for x > 0, log1p(exp(x)) else.
    (F.softplus returns x itself above its threshold of 20, 2e-9 off at 20.000000000000004.) Each
    branch sees only its own side's x, so neither overflows, and autograd through it (the double
    backward) has no kink at 0 and no nan leaking from the branch not taken."""
    up = x > 0
    pos, neg = torch.where(up, x, 0.0), torch.where(up, 0.0, x)
    return torch.where(up, pos + torch.log1p(torch.exp(-pos)), torch.log1p(torch.exp(neg)))


class Softplus(torch.autograd.Function):
    """log(1 + exp(x)), with the stable derivative sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.softplus(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


class SoftplusStable(torch.autograd.Function):
    """The same without F.softplus's threshold, and with sigmoid(x) written exp(-softplus(-x)):
    torch then forms the second derivative sigmoid(x)*sigmoid(-x) without cancelling, where
    torch.sigmoid's backward computes y*(1 - y)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.exp(-softplus(-x))


class SoftplusSloppy(torch.autograd.Function):
    """The same, with the derivative written 1 - sigmoid(-x): equal in exact arithmetic, but for
    x << 0 it subtracts two numbers near 1 and keeps only the rounding error."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.softplus(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (1 - torch.sigmoid(-x))


class LegendrePolynomial3(torch.autograd.Function):
    """The PyTorch tutorial's example: P3(x) = (5x^3 - 3x) / 2."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def safe_divide(x, y):
    """A plain function around torch ops: inputs are passed by name, whatever order the case lists."""
    return torch.where(y == 0, torch.zeros_like(x), x / y)
