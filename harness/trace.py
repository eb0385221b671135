"""The exact side traced from a target's own forward: no expression to type.

A custom autograd.Function (or any torch callable) whose forward is written in torch ops says
exactly what it computes. `trace_forward` runs it at each of the case's points under a
TorchDispatchMode, which sees every ATen op the forward runs (inside Function.apply too, below
autograd), and maps each op onto the catalogue as it happens: the result is the harness's own
expression tree (harness.expr), the same one a case file's `expr:` parses to, so everything after
it (symbolic, reference, checks) is unchanged. Python numbers in the forward are their exact
binary values; tensors the forward makes or captures (buffers, `torch.tensor(...)`, a float32
buffer used in a float64 model) are constants with their exact element values.

Boolean masks: `x[m]` is x restricted to the comparison m, an elementwise op on restricted values
stays restricted, and `out[m] = v` becomes `where(m, v, out)`, so masked assignment maps onto
`where` whatever the number of elements the mask selects at a point.

What cannot be mapped is one line (`Untraceable`): the ATen op, the source line of the forward
that ran it, and what to do. A forward that reads a tensor's value into Python (an `if` on a
tensor, `.item()`) is refused: a branch taken in Python holds only at the points it was taken at,
and the trace would silently specialise to them. The trees of all points must agree.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.catalogue import OPS, Arithmetic, Elementwise
from harness.errors import HarnessError
from harness.expr import Call, Name, Node, Num, Seq, unparse, walk

aten = torch.ops.aten


class Untraceable(HarnessError):
    """The forward cannot be traced onto the catalogue; the message says which op, where, and what to do."""


@dataclass(frozen=True)
class Traced:
    """A forward's exact side: one tree per output, and how many ATen ops the forward ran."""

    outputs: tuple[tuple[str, Node], ...]
    aten_ops: int
    shapes: tuple[tuple[int, ...], ...] = ()  # each output's shape as the forward returned it

    @property
    def describe(self) -> str:
        return f"traced from forward: {self.aten_ops} ATen op{'s' * (self.aten_ops != 1)}"

    def text(self) -> dict[str, str]:
        """Each output in the case-file syntax, to copy into `expr:`."""
        return {name: unparse(tree) for name, tree in self.outputs}


@dataclass(frozen=True)
class _Masked:
    """A value restricted to the elements where `condition` holds (x[m]); `full` is the same
    expression over every element."""

    full: Node
    condition: Node


Value = Node | _Masked
EMPTY = Call("empty_like", ())  # the elements of torch.empty(_like) before the forward writes them

ADVICE = "give the case an expr: with the forward's mathematics"


def trace_forward(function: Callable[..., tuple[torch.Tensor, ...]], points: Sequence[Sequence[torch.Tensor]],
                  names: Sequence[str], output_names: Sequence[str] | None = None) -> Traced:
    """The exact side of `function` (f(*primals) -> tuple of tensors) at every point; Untraceable
    if an op has no catalogue counterpart, a value is read into Python, or points disagree."""
    first: Traced | None = None
    for index, primals in enumerate(points):
        traced = _trace_once(function, primals, names, output_names)
        if first is None:
            first = traced
        elif traced.outputs != first.outputs:
            raise Untraceable(f"cannot trace the forward: it runs other ATen ops at point {index + 1} than at point 1"
                              f" (a branch on the inputs' values?); {ADVICE}")
    if first is None:
        raise Untraceable("cannot trace the forward: the case has no points")
    return first


def _trace_once(function: Callable[..., tuple[torch.Tensor, ...]], primals: Sequence[torch.Tensor],
                names: Sequence[str], output_names: Sequence[str] | None) -> Traced:
    inputs = [p.detach().clone() for p in primals]
    mode = _Tracer({id(t): Name(n) for t, n in zip(inputs, names)}, inputs)
    with torch.no_grad(), mode:
        results = function(*inputs)
    outputs, shapes = [], []
    labels = list(output_names) if output_names else _labels(len(results), set(names))
    for label, result in zip(labels, results):
        value = mode.value_of(result)
        if isinstance(value, _Masked):
            raise Untraceable(f"cannot trace the forward: output {label!r} is a masked selection x[m] of data-dependent"
                              f" size; {ADVICE}")
        if any(n == EMPTY for n in walk(value)):
            raise Untraceable(f"cannot trace the forward: output {label!r} has elements of an empty tensor that the"
                              f" forward never writes (or reads before it writes them); {ADVICE}")
        if not any(isinstance(n, Name) for n in walk(value)):
            raise Untraceable(f"cannot trace the forward: output {label!r} does not depend on the inputs; {ADVICE}")
        outputs.append((label, value))
        shapes.append(tuple(result.shape))
    return Traced(tuple(outputs), mode.count, tuple(shapes))


def _labels(n: int, taken: set[str]) -> list[str]:
    """Output names as a case file's `expr:` gets them: y (or out, result, f, output: the first that
    is not an input's name); several outputs are y0, y1, ... ."""
    base = next(b for b in ("y", "out", "result", "f", "output", "output_") if b not in taken)
    return [base] if n == 1 else [f"{base}{i}" for i in range(n)]


def _source_line() -> str:
    """The innermost frame of the user's code (not torch's, not the harness's): 'file:line: code'."""
    here, torch_dir = os.path.dirname(__file__), os.path.dirname(torch.__file__)
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith((here, torch_dir)) and "<frozen" not in frame.filename:
            code = (frame.line or "").strip()
            return f"{frame.filename}:{frame.lineno}: {code if len(code) <= 100 else code[:97] + '...'}"
    return "an unknown line"


class _Tracer(TorchDispatchMode):
    """Maps each ATen op the forward runs onto the catalogue, keyed by the tensors it makes."""

    def __init__(self, known: dict[int, Node], keep: list[torch.Tensor]) -> None:
        super().__init__()
        self.values: dict[int, Value] = dict(known)
        self.keep = list(keep)  # every tensor seen stays alive: its id is never reused
        self.viewed: set[int] = set()  # tensors that have views: no in-place writes to them (nor to views)
        self.count = 0  # the ATen ops mapped (not the copies and aliases)

    def value_of(self, t: object) -> Value:
        if isinstance(t, torch.Tensor):
            found = self.values.get(id(t))
            return found if found is not None else _constant(t)
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise Untraceable(f"cannot trace the forward: a {type(t).__name__} argument; {ADVICE}")
        if t != t or t in (float("inf"), float("-inf")):
            raise Untraceable(f"cannot trace the forward: the constant {t!r} ({_source_line()}); {ADVICE}")
        return Num(Fraction(t))

    def depends(self, args: Sequence[object]) -> bool:
        flat = [a for x in args for a in (x if isinstance(x, list | tuple) else [x])]
        return any(isinstance(a, torch.Tensor) and id(a) in self.values for a in flat)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default:
            raise Untraceable(f"cannot trace the forward: it reads a tensor's value into Python at {_source_line()}"
                              f" (an if on a tensor, .item()): the trace would hold only where that branch is"
                              f" taken; {ADVICE}")
        mutated = func._schema.is_mutable
        if mutated and args and isinstance(args[0], torch.Tensor) and (
                args[0]._base is not None or id(args[0]) in self.viewed):
            raise Untraceable(f"cannot trace the forward: an in-place {func} on a view, or on a tensor with views"
                              f" ({_source_line()}); {ADVICE}")
        out = func(*args, **kwargs)
        if not self.depends([*args, *kwargs.values()]):
            return out  # a constant: read from its values where it is used
        name = func._schema.name.split("::")[-1].rstrip("_")
        self.count += name not in _IDENTITY
        if func.is_view and isinstance(args[0], torch.Tensor):  # (a view's own _base is set above this mode)
            self.viewed.add(id(args[0]))
        try:
            value = _map(self, func, args, kwargs, out)
        except Untraceable:
            raise
        except (HarnessError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise Untraceable(f"cannot trace the forward: {func} ({_source_line()}): {exc}; {ADVICE}") from None
        if value is None:
            raise Untraceable(f"cannot trace the forward: {func} ({_source_line()}) has no catalogue op; {ADVICE}")
        target = out if isinstance(out, torch.Tensor) else out[0]
        self.keep.append(target)
        self.values[id(target)] = value
        return out


def _constant(t: torch.Tensor) -> Node:
    """A tensor the forward made or captured, by its exact element values (equal ones: one number)."""
    values = t.detach().to("cpu", torch.float64).reshape(-1).tolist() if t.numel() else []
    if not values:
        raise Untraceable(f"cannot trace the forward: an empty constant tensor; {ADVICE}")
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise Untraceable(f"cannot trace the forward: a constant tensor holds inf or nan; {ADVICE}")
    if all(v == values[0] for v in values):
        return Num(Fraction(values[0]))
    return _stacked(t.detach().to("cpu", torch.float64))


def _stacked(t: torch.Tensor) -> Node:
    if t.dim() == 0:
        return Num(Fraction(t.item()))
    return Call("stack", (Seq(tuple(_stacked(row) for row in t)),))


# ---------------------------------------------------------------- the map of ATen ops

_NEGATED = {"gt": "le", "ge": "lt", "lt": "ge", "le": "gt", "eq": "ne", "ne": "eq"}
_SCALAR_BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "fmax", "fmin", "atan2", "copysign",
                  "hypot", "xlogy", "logaddexp", "float_power"}
_EXTRAS = {"softplus": ("beta", "threshold"), "leaky_relu": ("negative_slope",), "hardtanh": ("min", "max"),
           "elu": ("alpha",), "celu": ("alpha",), "hardshrink": ("lambd",), "softshrink": ("lambd",),
           "logit": ("eps",)}
_IDENTITY = {"clone", "alias", "detach", "lift_fresh", "lift_fresh_copy", "contiguous", "_to_copy", "view_as"}
_REDUCTIONS = {"sum", "mean", "prod", "amax", "amin", "logsumexp"}
_ALONG = {"_softmax": "softmax", "_log_softmax": "log_softmax", "cumsum": "cumsum", "cumprod": "cumprod"}


def _map(tr: _Tracer, func: Any, args: tuple, kwargs: dict, out: Any) -> Value | None:
    name = func._schema.name.split("::")[-1].rstrip("_")
    if name in _IDENTITY:
        if name == "_to_copy" and "dtype" in kwargs and kwargs["dtype"] != args[0].dtype:
            raise Untraceable(f"cannot trace the forward: it converts a value from {args[0].dtype} to {kwargs['dtype']}"
                              f" ({_source_line()}), a rounding with no exact counterpart; {ADVICE}")
        return tr.value_of(args[0])
    if name in ("add", "sub", "rsub"):
        return _add(tr, name, args, kwargs)
    if name in _NEGATED:
        return Call(name, (_full(tr, args[0]), _full(tr, args[1])))
    if name in ("bitwise_not", "logical_not"):
        return _negated(tr.value_of(args[0]))  # type: ignore[arg-type]
    if name == "where":
        return Call("where", tuple(_full(tr, a) for a in args[:3]))
    if name == "masked_fill":
        return Call("where", (_full(tr, args[1]), _full(tr, args[2]), _full(tr, args[0])))
    if name == "index_put" or name == "index":
        return _indexed(tr, name, args, kwargs)
    if name in ("clamp", "clamp_min", "clamp_max"):
        return _clamp(tr, name, args, kwargs)
    if name in _SCALAR_BINARY and len(args) == 2 and not kwargs:
        return _elementwise(tr, name, args)
    if name in ("view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten"):
        return _reshape(tr, args[0], out)
    if name in _REDUCTIONS:
        return _reduction(tr, name, args, kwargs)
    if name in _ALONG:
        return Call(_ALONG[name], (_full(tr, args[0]),), (("dim", Fraction(int(args[1]))),))
    if name in ("mm", "mv", "matmul", "dot", "bmm"):
        return Call("dot" if name == "dot" else "matmul", (_full(tr, args[0]), _full(tr, args[1])))
    if name in ("t", "transpose", "permute") and args[0].dim() <= 2:
        dims = (0, 1) if name in ("t", "permute") else (int(args[1]), int(args[2]))
        return Call("transpose", (_full(tr, args[0]), Num(Fraction(dims[0])), Num(Fraction(dims[1]))))
    if name in ("empty_like", "empty"):
        return EMPTY  # elements the forward must write before it reads them (below, and at the outputs)
    if name in ("zeros_like", "ones_like", "full_like", "scalar_tensor"):
        return _constant(out)
    if name == "polygamma":
        return Call("polygamma", (Num(Fraction(int(args[0]))), _full(tr, args[1])))
    if name == "linalg_vector_norm":
        return _norm(tr, args, kwargs)
    if name == "gelu":
        variant = {"none": "gelu", "tanh": "gelu_tanh"}.get(kwargs.get("approximate", "none"))
        return _elementwise(tr, variant, args[:1]) if variant else None
    found = _catalogue_name(name)
    return _elementwise(tr, found, args) if found and not kwargs else None


def _catalogue_name(aten_name: str) -> str | None:
    """aten.sin -> sin, aten.special_i0e -> special.i0e: the catalogue's elementwise op of that name."""
    for candidate in (aten_name, aten_name.replace("special_", "special.", 1)):
        if isinstance(OPS.get(candidate), Elementwise | Arithmetic) and candidate != "where":
            return candidate
    return None


def _full(tr: _Tracer, a: object) -> Node:
    value = tr.value_of(a)
    if isinstance(value, _Masked):
        raise Untraceable(f"cannot trace the forward: a masked selection x[m] used with a whole tensor"
                          f" ({_source_line()}); {ADVICE}")
    return value


def _elementwise(tr: _Tracer, name: str, operands: Sequence[object], keywords: tuple = ()) -> Value:
    """An elementwise op, with restricted (masked) operands kept restricted to their mask."""
    op = OPS[name]
    values = [tr.value_of(a) for a in operands]
    extras = values[op.arity:]
    if name in _EXTRAS:
        keywords = keywords + tuple((k, _number(v)) for k, v in zip(_EXTRAS[name], extras))
    elif extras:
        return None  # type: ignore[return-value]
    masks = {v.condition for v in values[: op.arity] if isinstance(v, _Masked)}
    if len(masks) > 1:
        raise Untraceable(f"cannot trace the forward: values selected by two masks combined ({_source_line()});"
                          f" {ADVICE}")
    if masks:
        for a, v in zip(operands, values[: op.arity]):
            if not isinstance(v, _Masked) and isinstance(a, torch.Tensor) and a.dim() > 0 and a.numel() > 1:
                raise Untraceable(f"cannot trace the forward: a masked selection x[m] combined with a whole tensor"
                                  f" ({_source_line()}); {ADVICE}")
        full = tuple(v.full if isinstance(v, _Masked) else v for v in values[: op.arity])
        return _Masked(Call(name, full, keywords), next(iter(masks)))
    return Call(name, tuple(values[: op.arity]), keywords)  # type: ignore[arg-type]


def _number(value: Node) -> Fraction:
    if not isinstance(value, Num):
        raise Untraceable(f"cannot trace the forward: an op's parameter is a tensor ({_source_line()}); {ADVICE}")
    return value.value  # type: ignore[return-value]


def _add(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value:
    """add/sub(a, b, alpha) = a +- alpha * b; rsub(a, b, alpha) = b - alpha * a."""
    a, b = args[0], args[1]
    alpha = kwargs.get("alpha", args[2] if len(args) > 2 else 1)
    if name == "rsub":
        a, b, name = b, a, "sub"
    if alpha != 1:
        scaled = _elementwise(tr, "mul", [b, alpha])
        return _combine(tr, name, a, scaled)
    return _elementwise(tr, name, [a, b])


def _combine(tr: _Tracer, name: str, a: object, b: Value) -> Value:
    left = tr.value_of(a)
    if isinstance(b, _Masked) or isinstance(left, _Masked):
        mask = b.condition if isinstance(b, _Masked) else left.condition  # type: ignore[union-attr]
        lf = left.full if isinstance(left, _Masked) else left
        bf = b.full if isinstance(b, _Masked) else b
        return _Masked(Call(name, (lf, bf)), mask)
    return Call(name, (left, b))


def _clamp(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value:
    low = kwargs.get("min", args[1] if len(args) > 1 else None) if name != "clamp_max" else None
    high = kwargs.get("max", args[2] if len(args) > 2 else None) if name != "clamp_min" else None
    if name == "clamp_max":
        high = args[1]
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        return None  # type: ignore[return-value]
    keywords = tuple((k, Fraction(v)) for k, v in (("min", low), ("max", high)) if v is not None)
    return _elementwise(tr, "clamp", args[:1], keywords)


def _indexed(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value | None:
    """x[m] with a boolean mask m (restricted), and out[m] = v (a where)."""
    indices = args[1]
    if len(indices) != 1 or indices[0] is None or indices[0].dtype != torch.bool or indices[0].shape != args[0].shape:
        return None
    condition = tr.value_of(indices[0])
    if not (isinstance(condition, Call) and condition.op in _NEGATED):
        raise Untraceable(f"cannot trace the forward: a mask that is not one comparison ({_source_line()}); {ADVICE}")
    if name == "index":
        return _Masked(_full(tr, args[0]), condition)
    if (kwargs.get("accumulate") or (len(args) > 3 and args[3])):
        return None
    value = tr.value_of(args[2])
    if isinstance(value, _Masked):
        if value.condition != condition:
            raise Untraceable(f"cannot trace the forward: out[m] = v with v selected by another mask"
                              f" ({_source_line()}); {ADVICE}")
        value = value.full
    elif isinstance(args[2], torch.Tensor) and args[2].numel() > 1:
        raise Untraceable(f"cannot trace the forward: out[m] = v with a whole tensor v ({_source_line()}); {ADVICE}")
    dest = _full(tr, args[0])
    if isinstance(dest, Call) and dest.op == "where" and dest.args[2] == EMPTY and condition == _negated(dest.args[0]):
        return Call("where", (dest.args[0], dest.args[1], value))  # out[m] = a; out[~m] = b: every element written
    return Call("where", (condition, value, dest))


def _negated(condition: Node) -> Node | None:
    if isinstance(condition, Call) and condition.op in _NEGATED:
        return Call(_NEGATED[condition.op], condition.args)
    return None


def _reshape(tr: _Tracer, a: object, out: torch.Tensor) -> Value:
    value = tr.value_of(a)
    if isinstance(value, _Masked):
        return value  # the selected elements, whatever their layout
    if isinstance(a, torch.Tensor) and tuple(a.shape) == tuple(out.shape):
        return value
    return Call("reshape", (value, Seq(tuple(Num(Fraction(d)) for d in out.shape))))


def _dims(args: tuple, kwargs: dict) -> tuple[tuple[str, Fraction], ...] | None:
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
    if keepdim:
        return None
    if dim is None or (isinstance(dim, list | tuple) and len(dim) == 0):
        return ()
    if isinstance(dim, list | tuple):
        if len(dim) != 1:
            return None
        dim = dim[0]
    return (("dim", Fraction(int(dim))),)


def _reduction(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value | None:
    if kwargs.get("dtype") is not None:
        return None
    dims = _dims(args, kwargs)
    if dims is None:
        return None
    return Call(name, (_full(tr, args[0]),), dims)


def _norm(tr: _Tracer, args: tuple, kwargs: dict) -> Value | None:
    order = kwargs.get("ord", args[1] if len(args) > 1 else 2)
    dims = _dims((args[0], *args[2:]), kwargs)
    if dims is None or order in (float("inf"), float("-inf")):
        return None
    return Call("linalg.vector_norm", (_full(tr, args[0]),), (("ord", Fraction(order)), *dims))
