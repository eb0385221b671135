"""Custom autograd Functions for the meta-tests: each wrong one is wrong on purpose, in one way.

A relative error of 1e-12 in float64 and 1e-5 in float32 is what the harness must catch and what
finite differences (gradcheck) cannot see; in float16 3e-2 and bfloat16 0.25 (30 and 32 ulps).
The correct twins must pass.
"""

from __future__ import annotations

import torch


def _eps(t: torch.Tensor) -> float:
    """A few dozen ulps of the dtype (half precisions: ulps are large, 2**-10 and 2**-7)."""
    return {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 3e-2, torch.bfloat16: 0.25}[t.dtype]


class _Sin(torch.autograd.Function):
    """sin with a configurable backward; forward mode and vmap work (torch.func needs both)."""

    generate_vmap_rule = True
    scale_first = False  # backward off by (1 + eps)
    negative_only = False  # ... only where x < 0
    ignore_cotangent = False  # backward drops the cotangent's size

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        (ctx.x,) = inputs
        ctx.save_for_backward(inputs[0])

    @classmethod
    def _derivative(cls, x: torch.Tensor) -> torch.Tensor:
        d = cls.cos(x)
        if cls.scale_first:
            factor = 1 + _eps(x)
            d = torch.where(x < 0, d * factor, d) if cls.negative_only else d * factor
        return d

    @staticmethod
    def cos(x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)

    @classmethod
    def _backward(cls, ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        if cls.ignore_cotangent:
            return cls._derivative(x) * torch.sign(grad)
        return grad * cls._derivative(x)

    @classmethod
    def _jvp(cls, ctx, x_t: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return x_t * cls._derivative(ctx.x)


class _CosWrongDerivative(torch.autograd.Function):
    """cos whose own derivative is -sin * (1 + eps): sin's second derivative is wrong, not its first."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        (ctx.x,) = inputs
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return -grad * torch.sin(x) * (1 + _eps(x))

    @staticmethod
    def jvp(ctx, x_t: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return -x_t * torch.sin(ctx.x) * (1 + _eps(ctx.x))


def _sin_class(name: str, **flags: object) -> type[torch.autograd.Function]:
    body = dict(flags)
    body["backward"] = classmethod(lambda cls, ctx, grad: cls._backward(ctx, grad)).__func__
    body["jvp"] = classmethod(lambda cls, ctx, x_t: cls._jvp(ctx, x_t)).__func__
    cls = type(name, (_Sin,), body)
    cls.backward = staticmethod(lambda ctx, grad: cls._backward(ctx, grad))
    cls.jvp = staticmethod(lambda ctx, x_t: cls._jvp(ctx, x_t))
    return cls


SinCorrect = _sin_class("SinCorrect")
SinWrongFirst = _sin_class("SinWrongFirst", scale_first=True)
SinWrongNegative = _sin_class("SinWrongNegative", scale_first=True, negative_only=True)
SinIgnoresCotangent = _sin_class("SinIgnoresCotangent", ignore_cotangent=True)
SinWrongSecond = _sin_class("SinWrongSecond", cos=staticmethod(lambda x: _CosWrongDerivative.apply(x)))


class _Mul(torch.autograd.Function):
    generate_vmap_rule = True
    second_factor = 0.0

    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        ctx.a, ctx.b = inputs
        ctx.save_for_backward(*inputs)


def _mul_class(name: str, wrong_second: bool) -> type[torch.autograd.Function]:
    cls = type(name, (_Mul,), {})

    def factor(t: torch.Tensor) -> float:
        return 1 + _eps(t) if wrong_second else 1.0

    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        a, b = ctx.saved_tensors
        return grad * b, grad * a * factor(a)

    def jvp(ctx, a_t, b_t):  # type: ignore[no-untyped-def]
        return a_t * ctx.b + b_t * ctx.a * factor(ctx.a)

    cls.backward = staticmethod(backward)
    cls.jvp = staticmethod(jvp)
    return cls


MulCorrect = _mul_class("MulCorrect", wrong_second=False)
MulWrongSecondInput = _mul_class("MulWrongSecondInput", wrong_second=True)

# the targets the meta-test cases name (meta_functions:sin_correct, ...)
sin_correct = SinCorrect.apply
sin_wrong_first = SinWrongFirst.apply
sin_wrong_second = SinWrongSecond.apply
sin_wrong_negative = SinWrongNegative.apply
sin_ignores_cotangent = SinIgnoresCotangent.apply
mul_correct = MulCorrect.apply
mul_wrong_second_input = MulWrongSecondInput.apply


class _SinCompiledWrong(torch.autograd.Function):
    """sin whose backward is wrong only inside torch.compile: a compiler bug in the backward graph."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        factor = 1 + _eps(x) if torch.compiler.is_compiling() else 1.0
        return grad * torch.cos(x) * factor

sin_wrong_when_compiled = _SinCompiledWrong.apply


class _ComplexSquare(torch.autograd.Function):
    """z**2 with torch's convention for complex backward (grad * conj(dz**2/dz)), or the classic
    mistake of leaving out the conjugate."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        return z * z

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        ctx.save_for_backward(inputs[0])


def _complex_square(name: str, conjugate: bool) -> type[torch.autograd.Function]:
    cls = type(name, (_ComplexSquare,), {})

    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        slope = 2 * z
        return grad * (slope.conj() if conjugate else slope)

    cls.backward = staticmethod(backward)
    return cls


ComplexSquareCorrect = _complex_square("ComplexSquareCorrect", conjugate=True)
ComplexSquareUnconjugated = _complex_square("ComplexSquareUnconjugated", conjugate=False)

complex_square_correct = ComplexSquareCorrect.apply
complex_square_unconjugated = ComplexSquareUnconjugated.apply
