"""Custom autograd Functions whose forward the harness traces for its exact side (no `expr:`).

Written as people write them: classic `forward(ctx, ...)`/`backward(ctx, g)` with
`ctx.save_for_backward` (and one new-style Function with `setup_context`); `torch.where` branches,
masked assignment, reductions, a constant captured from the module. The wrong ones are wrong on
purpose, in one way each.
"""

from __future__ import annotations

import torch

SCALE = 1.2345678901  # a constant the forward and the backward share


class ScaledSin(torch.autograd.Function):
    """SCALE * sin(x) * y: elementwise, two inputs."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return SCALE * torch.sin(x) * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * SCALE * torch.cos(x) * y, g * SCALE * torch.sin(x)


class ScaledSinOff(ScaledSin):
    """ScaledSin's forward, but its backward's constant is off by a relative 1e-11 from its forward's."""

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        c = SCALE * (1 + 1e-11)
        return g * c * torch.cos(x) * y, g * c * torch.sin(x)


class Branches(torch.autograd.Function):
    """where(x > 0, x**2, exp(x) - 1) with a captured float32 buffer in a float64 model; new style."""

    weight = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float32)

    @staticmethod
    def forward(x):
        w = Branches.weight.to(x.dtype)
        return torch.where(x > 0, x * x, torch.expm1(x)) * w

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        w = Branches.weight.to(x.dtype)
        return g * torch.where(x > 0, 2 * x, torch.exp(x)) * w


class Masked(torch.autograd.Function):
    """A piecewise function by masked assignment: log1p(x) where x > 0, sin(x) elsewhere."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        out = torch.empty_like(x)
        up = x > 0
        out[up] = torch.log1p(x[up])
        out[~up] = torch.sin(x[~up])
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = torch.zeros_like(x)
        up = x > 0
        d[up] = 1 / (1 + x[up])
        d[~up] = torch.cos(x[~up])
        return g * d


class Clamped(torch.autograd.Function):
    """clamp(x, min=0) (the relu family), with the backward torch itself uses: 1 where x > 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        out = x.clone()
        out[x < 0] = 0.0
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class SumSquares(torch.autograd.Function):
    """A reduction: sum(x**2) / n, the mean square."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).sum() / x.numel()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x / x.numel()


class Bessel(torch.autograd.Function):
    """A forward in an op the catalogue does not have (J0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.special.bessel_j0(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * torch.special.bessel_j1(x)


class PythonBranch(torch.autograd.Function):
    """A branch in Python on a tensor's value: which formula runs depends on the point."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        if x.sum() > 0:
            return torch.sin(x)
        return torch.cos(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (torch.cos(x) if x.sum() > 0 else -torch.sin(x))


class Threshold(torch.autograd.Function):
    """where(x > 0.5, x, 0): a branch threshold that a case's expr: may mean as 0.6."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0.5, x, 0.0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0.5).to(g.dtype)


def tenth(x):
    """x / 10, which a case may write 0.1 * x (0.1 rounded to the dtype, as torch rounds it)."""
    return x / 10


class Selu(torch.autograd.Function):
    """F.selu, which torch runs as elu with its alpha and scale; a kink at 0 (a critical point)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.selu(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        return g * torch.where(x > 0, scale, scale * alpha * torch.exp(x))
