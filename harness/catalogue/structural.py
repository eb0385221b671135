"""The structural ops (reductions, linear algebra, reshaping): their exact builders and entries.

Each builder takes the built arguments (SymPy scalars, numpy object arrays of SymPy expressions,
or lists for list arguments), the op's numeric keywords, and `evaluate`: False builds the
unevaluated tree that mirrors torch's operations (for the error model), True lets SymPy simplify.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from harness.catalogue.elementwise import BY_NAME, WHERE, X
from harness.catalogue.markers import amax_fn, amin_fn, as_sympy, no_grad, norm2
from harness.catalogue.spec import Kink, Op, Structural, T, TorchRef, kw, kw_with
from harness.errors import HarnessError


def _arr(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object)


def _out(arr: np.ndarray) -> Any:
    return arr.item() if arr.ndim == 0 else arr


def _chain(kind: type[sympy.Add] | type[sympy.Mul], items: Sequence[sympy.Expr], evaluate: bool) -> sympy.Expr:
    """A sum or product: SymPy's when evaluated, else left to right as torch accumulates it."""
    if evaluate:
        return kind(*items)
    total = items[0]
    for item in items[1:]:
        total = kind(total, item, evaluate=False)
    return total


def _add(terms: Sequence[sympy.Expr], evaluate: bool) -> sympy.Expr:
    return _chain(sympy.Add, terms, evaluate)


def _mul(factors: Sequence[sympy.Expr], evaluate: bool) -> sympy.Expr:
    return _chain(sympy.Mul, factors, evaluate)


def _div(a: sympy.Expr, b: sympy.Expr, evaluate: bool) -> sympy.Expr:
    return sympy.Mul(a, sympy.Pow(b, -1, evaluate=evaluate), evaluate=evaluate)


def _axis(arr: np.ndarray, dim: Any, name: str) -> int:
    axis = int(dim)
    ndim = max(arr.ndim, 1)
    if not -ndim <= axis < ndim or arr.ndim == 0:
        raise HarnessError(f"{name}(dim={axis}) is out of range for a {arr.ndim}-d input")
    return axis % arr.ndim


def _rows(value: Any, dim: Any, name: str, fn: Callable[[list[sympy.Expr]], sympy.Expr]) -> Any:
    """Apply fn to every 1-d slice along dim (all elements when dim is None)."""
    arr = _arr(value)
    if dim is None:
        return fn(list(arr.ravel()))
    moved = np.moveaxis(arr, _axis(arr, dim, name), -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.empty(rows.shape[0], dtype=object)
    for i, row in enumerate(rows):
        out[i] = fn(list(row))
    return _out(out.reshape(moved.shape[:-1]))


def _along(value: Any, dim: Any, name: str, fn: Callable[[list[sympy.Expr]], list[sympy.Expr]]) -> Any:
    """Map every 1-d slice along dim to a slice of the same length (softmax, cumsum)."""
    arr = _arr(value)
    if arr.ndim == 0:
        return fn([arr.item()])[0]
    axis = _axis(arr, dim, name)
    moved = np.moveaxis(arr, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.empty(rows.shape, dtype=object)
    for i, row in enumerate(rows):
        out[i, :] = fn(list(row))
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def sum_(args: list, kw: tuple, evaluate: bool) -> Any:
    return _rows(args[0], kw[0], "sum", lambda r: _add(r, evaluate))


def mean(args: list, kw: tuple, evaluate: bool) -> Any:
    return _rows(args[0], kw[0], "mean", lambda r: _div(_add(r, evaluate), len(r), evaluate))


def _var_row(row: list[sympy.Expr], correction: Any, evaluate: bool) -> sympy.Expr:
    n = len(row)
    if n - int(correction) <= 0:
        raise HarnessError(f"var/std of {n} element{'s' * (n != 1)} with correction={int(correction)}: no value")
    mean_ = _div(_add(row, evaluate), n, evaluate)
    squares = [sympy.Pow(sympy.Add(x, sympy.Mul(-1, mean_, evaluate=evaluate), evaluate=evaluate), 2,
                         evaluate=evaluate) for x in row]
    return _div(_add(squares, evaluate), n - int(correction), evaluate)


def var(args: list, kw: tuple, evaluate: bool) -> Any:
    dim, correction = kw
    return _rows(args[0], dim, "var", lambda r: _var_row(r, correction, evaluate))


def std(args: list, kw: tuple, evaluate: bool) -> Any:
    dim, correction = kw
    return _rows(args[0], dim, "std", lambda r: sympy.sqrt(_var_row(r, correction, evaluate), evaluate=evaluate))


def prod(args: list, kw: tuple, evaluate: bool) -> Any:
    return _rows(args[0], kw[0], "prod", lambda r: _mul(r, evaluate))


def amax(args: list, kw: tuple, evaluate: bool) -> Any:
    return _rows(args[0], kw[0], "amax", lambda r: amax_fn(*r) if len(r) > 1 else r[0])


def amin(args: list, kw: tuple, evaluate: bool) -> Any:
    return _rows(args[0], kw[0], "amin", lambda r: amin_fn(*r) if len(r) > 1 else r[0])


def _exp(x: sympy.Expr, evaluate: bool) -> sympy.Expr:
    return BY_NAME["exp"].apply((x,), (), evaluate)


def _log(x: sympy.Expr, evaluate: bool) -> sympy.Expr:
    return BY_NAME["log"].apply((x,), (), evaluate)


def _shifted(row: list[sympy.Expr], evaluate: bool) -> tuple[list[sympy.Expr], sympy.Expr]:
    """x - m with m = max(x) held constant, as torch's stable kernels compute."""
    m = no_grad(amax_fn(*row)) if len(row) > 1 else no_grad(row[0])
    return [sympy.Add(e, sympy.Mul(-1, m, evaluate=evaluate), evaluate=evaluate) for e in row], m


def logsumexp(args: list, kw: tuple, evaluate: bool) -> Any:
    def one(row: list[sympy.Expr]) -> sympy.Expr:
        shifted, m = _shifted(row, evaluate)
        return sympy.Add(m, _log(_add([_exp(s, evaluate) for s in shifted], evaluate), evaluate), evaluate=evaluate)

    return _rows(args[0], kw[0], "logsumexp", one)


def softmax(args: list, kw: tuple, evaluate: bool) -> Any:
    def one(row: list[sympy.Expr]) -> list[sympy.Expr]:
        shifted, _ = _shifted(row, evaluate)
        exps = [_exp(s, evaluate) for s in shifted]
        total = _add(exps, evaluate)
        return [_div(e, total, evaluate) for e in exps]

    return _along(args[0], kw[0], "softmax", one)


def log_softmax(args: list, kw: tuple, evaluate: bool) -> Any:
    def one(row: list[sympy.Expr]) -> list[sympy.Expr]:
        shifted, _ = _shifted(row, evaluate)
        lse = _log(_add([_exp(s, evaluate) for s in shifted], evaluate), evaluate)
        return [sympy.Add(s, sympy.Mul(-1, lse, evaluate=evaluate), evaluate=evaluate) for s in shifted]

    return _along(args[0], kw[0], "log_softmax", one)


def cumsum(args: list, kw: tuple, evaluate: bool) -> Any:
    return _along(args[0], kw[0], "cumsum", lambda r: [_add(r[: i + 1], evaluate) for i in range(len(r))])


def cumprod(args: list, kw: tuple, evaluate: bool) -> Any:
    return _along(args[0], kw[0], "cumprod", lambda r: [_mul(r[: i + 1], evaluate) for i in range(len(r))])


def _p_norm(row: list[sympy.Expr], p: Any, evaluate: bool) -> sympy.Expr:
    def absolute(e: sympy.Expr, evaluate: bool) -> sympy.Expr:
        return BY_NAME["abs"].apply((e,), (), evaluate)

    if p == 2:
        return norm2(*row)
    if p == 1:
        return _add([absolute(e, evaluate=evaluate) for e in row], evaluate)
    if p == sympy.oo:
        values = [absolute(e, evaluate=evaluate) for e in row]
        return amax_fn(*values) if len(values) > 1 else values[0]
    if p > 1:
        terms = [sympy.Pow(absolute(e, evaluate=evaluate), p, evaluate=evaluate) for e in row]
        return sympy.Pow(_add(terms, evaluate), 1 / as_sympy(p), evaluate=evaluate)
    raise HarnessError(f"vector norms of order {p} are not supported (1, 2, inf or p > 1)")


def vector_norm(args: list, kw: tuple, evaluate: bool) -> Any:
    p, dim = kw
    return _rows(args[0], dim, "linalg.vector_norm", lambda r: _p_norm(r, p, evaluate))


def norm(args: list, kw: tuple, evaluate: bool) -> Any:
    return vector_norm(args, kw, evaluate)


def dot(args: list, kw: tuple, evaluate: bool) -> Any:
    a, b = _arr(args[0]), _arr(args[1])
    if a.ndim != 1 or b.shape != a.shape:
        raise HarnessError(f"dot takes two 1-d tensors of one length, got shapes {list(a.shape)} and {list(b.shape)}")
    return _add([sympy.Mul(x, y, evaluate=evaluate) for x, y in zip(a, b)], evaluate)


def outer(args: list, kw: tuple, evaluate: bool) -> Any:
    a, b = _arr(args[0]), _arr(args[1])
    if a.ndim != 1 or b.ndim != 1:
        raise HarnessError("outer takes two 1-d tensors")
    out = np.empty((a.size, b.size), dtype=object)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = sympy.Mul(x, y, evaluate=evaluate)
    return out


def matmul(args: list, kw: tuple, evaluate: bool) -> Any:
    a, b = _arr(args[0]), _arr(args[1])
    if a.ndim == 0 or b.ndim == 0 or a.ndim > 2 or b.ndim > 2:
        raise HarnessError(f"matmul takes 1-d or 2-d operands here, got {a.ndim}-d and {b.ndim}-d")
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[1] != b2.shape[0]:
        raise HarnessError(f"matmul shapes {list(a.shape)} and {list(b.shape)} do not match")
    out = np.empty((a2.shape[0], b2.shape[1]), dtype=object)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = _add([sympy.Mul(a2[i, k], b2[k, j], evaluate=evaluate) for k in range(a2.shape[1])], evaluate)
    if a.ndim == 1:
        out = out[0]
    if b.ndim == 1:
        out = out[..., 0]
    return _out(out)


def _int(value: Any, what: str) -> int:
    if not (isinstance(value, sympy.Integer) or isinstance(value, int)):
        raise HarnessError(f"{what} must be an integer literal")
    return int(value)


def transpose(args: list, kw: tuple, evaluate: bool) -> Any:
    arr = _arr(args[0])
    d0, d1 = _int(args[1], "transpose's dim0"), _int(args[2], "transpose's dim1")
    try:
        return np.swapaxes(arr, d0, d1)
    except Exception:
        raise HarnessError(f"transpose({d0}, {d1}) is out of range for a {arr.ndim}-d input") from None


def reshape(args: list, kw: tuple, evaluate: bool) -> Any:
    arr = _arr(args[0])
    if not isinstance(args[1], list):
        raise HarnessError("reshape takes a shape list, as reshape(x, [2, 3])")
    shape = [_int(d, "a dimension") for d in args[1]]
    try:
        return _out(arr.reshape(shape))
    except ValueError:
        raise HarnessError(f"cannot reshape {list(arr.shape)} to {shape}") from None


def _tensors(value: Any, name: str) -> list[np.ndarray]:
    if not isinstance(value, list) or not value:
        raise HarnessError(f"{name} takes a list of tensors, as {name}([a, b], dim=0)")
    return [_arr(v) for v in value]


def _join(name: str, join: Callable[..., np.ndarray], args: list, kw: tuple) -> Any:
    parts = _numbers_as_tensors(_tensors(args[0], name), name, kw[0])
    try:
        return join(parts, axis=int(kw[0]))
    except (ValueError, np.exceptions.AxisError) as exc:
        raise HarnessError(f"{name}: {exc}") from None


def _numbers_as_tensors(parts: list[np.ndarray], name: str, dim: Any) -> list[np.ndarray]:
    """A number among tensors, as torch.full of the tensors' shape (stack) or of their shape with
    one element along dim (cat): how the case means stack([x, 1.0]) (harness.autodiff does the same)."""
    shaped = [p for p in parts if p.ndim > 0]
    if not shaped or len(shaped) == len(parts):
        return parts
    shape = list(shaped[0].shape)
    if name == "cat":
        shape[int(dim) % len(shape)] = 1
    return [p if p.ndim > 0 else np.full(shape, p.item(), dtype=object) for p in parts]


def cat(args: list, kw: tuple, evaluate: bool) -> Any:
    return _join("cat", np.concatenate, args, kw)


def stack(args: list, kw: tuple, evaluate: bool) -> Any:
    return _join("stack", np.stack, args, kw)


def _square(value: Any, name: str) -> sympy.Matrix:
    arr = _arr(value)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise HarnessError(f"{name} takes a square matrix, got shape {list(arr.shape)}")
    if arr.shape[0] > 4:
        raise HarnessError(f"{name} of a {arr.shape[0]}x{arr.shape[0]} matrix is over the exact limit of 4x4")
    return sympy.Matrix(arr.tolist())


def det(args: list, kw: tuple, evaluate: bool) -> Any:
    return _square(args[0], "linalg.det").det(method="berkowitz")


def inv(args: list, kw: tuple, evaluate: bool) -> Any:
    m = _square(args[0], "linalg.inv")
    d = m.det(method="berkowitz")
    adj = m.adjugate(method="berkowitz")
    out = np.empty(m.shape, dtype=object)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            out[i, j] = adj[i, j] / d
    return out


def trace(args: list, kw: tuple, evaluate: bool) -> Any:
    arr = _arr(args[0])
    if arr.ndim != 2:
        raise HarnessError("trace takes a 2-d tensor")
    return _add([arr[i, i] for i in range(min(arr.shape))], evaluate)


def cdist(args: list, kw: tuple, evaluate: bool) -> Any:
    a, b = _arr(args[0]), _arr(args[1])
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise HarnessError(f"cdist takes [P, M] and [R, M], got {list(a.shape)} and {list(b.shape)}")
    p = kw[0]
    if p not in (1, 2, sympy.oo):
        raise HarnessError(f"cdist is supported for p = 1, 2 or inf, not {p}")
    out = np.empty((a.shape[0], b.shape[0]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = _p_norm([sympy.Add(x, sympy.Mul(-1, y, evaluate=evaluate), evaluate=evaluate)
                                 for x, y in zip(a[i], b[j])], p, evaluate)
    return out


# ---------------------------------------------------------------- the entries


def _reduce(name: str) -> TorchRef:
    """A reduction over all elements, or over `dim` when given."""
    return T(name, lambda fn: lambda x, dim=None: fn(x) if dim is None else fn(x, dim=dim))


def _positional_dim(name: str) -> TorchRef:
    """prod, amax, amin: over all elements, or over `dim` given positionally."""
    return kw_with(name, lambda fn: lambda x, dim=None: fn(x) if dim is None else fn(x, dim), "dim")


def _norm(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda x, ord=None, dim=None: fn(x, 2 if ord is None else ord, dim=dim)


def _with_dim(name: str, default: int) -> TorchRef:
    """softmax, cumsum, cat & co.: `dim` by keyword, the catalogue's default when not given."""
    return kw_with(name, lambda fn: lambda x, dim=default: fn(x, dim=dim), "dim")


def _corrected(name: str) -> TorchRef:
    """var and std: `dim` and an integer `correction` (1 unless given)."""
    return kw_with(name, lambda fn: lambda x, dim=None, correction=1: fn(x, dim=dim, correction=int(correction)),
                    "dim", "correction")


def _logsumexp(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda x, dim=None: fn(x, dim=tuple(range(x.dim())) if dim is None else dim)


DIM = ("dim", None)
STRUCTURAL: tuple[Op, ...] = (
    Structural("sum", _reduce("sum"), sum_, X, ulps=0.5, keywords=(DIM,),
       doc="sum of the elements (dim= one axis)"),
    Structural("mean", _reduce("mean"), mean, X, ulps=0.5, keywords=(DIM,)),
    Structural("var", _corrected("var"), var, "more elements than correction",
       keywords=(DIM, ("correction", Fraction(1))), doc="sum((x - mean)^2)/(n - correction); correction 1 by default"),
    Structural("std", _corrected("std"), std, "more elements than correction; not all equal (the derivative)",
       keywords=(DIM, ("correction", Fraction(1))), doc="sqrt(var(x))"),
    Structural("prod", _positional_dim("prod"), prod,
       X, ulps=0.5, keywords=(DIM,), doc="product (zeros included)"),
    Structural("amax", _positional_dim("amax"), amax,
       X, ulps=0.0, keywords=(DIM,),
       kinks=(Kink("ties for the maximum", "the gradient split evenly among the tied elements"),)),
    Structural("amin", _positional_dim("amin"), amin,
       X, ulps=0.0, keywords=(DIM,),
       kinks=(Kink("ties for the minimum", "the gradient split evenly among the tied elements"),)),
    Structural("logsumexp", kw_with("logsumexp", _logsumexp, "dim"), logsumexp, X,
       keywords=(DIM,)),
    Structural("softmax", _with_dim("softmax", -1), softmax, X,
       keywords=(("dim", Fraction(-1)),)),
    Structural("log_softmax", _with_dim("log_softmax", -1), log_softmax, X,
       keywords=(("dim", Fraction(-1)),)),
    Structural("cumsum", _with_dim("cumsum", 0), cumsum, X,
       ulps=0.5, keywords=(("dim", Fraction(0)),)),
    Structural("cumprod", _with_dim("cumprod", 0), cumprod, X,
       ulps=0.5, keywords=(("dim", Fraction(0)),), doc="cumulative product (zeros included)"),
    Structural("linalg.vector_norm", kw_with("linalg.vector_norm", _norm, "ord", "dim"), vector_norm, X,
       keywords=(("ord", Fraction(2)), DIM),
       kinks=(Kink("the zero vector", "0 (torch masks the 0/0)"),),
       doc="(sum |x|^ord)^(1/ord); ord 1, 2, inf or p > 1"),
    Structural("norm", kw_with("norm", lambda norm: lambda x, p=2, dim=None: norm(x, p=p, dim=dim), "p", "dim"),
       norm, X,
       keywords=(("p", Fraction(2)), DIM), kinks=(Kink("the zero vector", "0"),),
       doc="torch.norm(x, p)"),
    Structural("dot", T("dot"), dot, X, arity=2, ulps=0.5),
    Structural("outer", T("outer"), outer, X, arity=2, ulps=0.5),
    Structural("matmul", T("matmul"), matmul, X, arity=2, ulps=0.5, doc="a @ b"),
    Structural("transpose", T("transpose"), transpose, X, arity=3, ulps=0.0,
       doc="transpose(x, dim0, dim1)"),
    Structural("reshape", T("reshape"), reshape, X, arity=2, ulps=0.0,
       doc="reshape(x, [d0, d1, ...])"),
    Structural("cat", _with_dim("cat", 0), cat, X,
       ulps=0.0, keywords=(("dim", Fraction(0)),), doc="cat([a, b, ...], dim=0)"),
    Structural("stack", _with_dim("stack", 0), stack, X,
       ulps=0.0, keywords=(("dim", Fraction(0)),), doc="stack([a, b, ...], dim=0)"),
    Structural("linalg.det", T("linalg.det"), det, "square matrices"),
    Structural("linalg.inv", T("linalg.inv"), inv, "invertible square matrices"),
    Structural("trace", T("trace"), trace, "2-d", ulps=0.5),
    Structural("cdist", kw("cdist", "p"), cdist, "p = 1, 2 or inf",
       arity=2, keywords=(("p", Fraction(2)),),
       kinks=(Kink("two equal points", "0 (torch masks the 0/0)"),
              Kink("p = 1, equal coordinates", "0 (sign(0))"),
              Kink("p = inf, ties for the largest difference", "the reference splits the gradient evenly")),
       doc="pairwise distances of the rows of a and b"),
    WHERE,
)
