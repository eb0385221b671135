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
and the trace would silently specialise to them. The forward is traced at every point and again
at each point nudged by a relative 2^-12: the trees must all agree, so that a value that reaches
the forward's ops through numpy, `.tolist()` or `.data` (a constant here, but not there) is
refused too. Writes that alias (through a view, `.detach()`, `.data`, `out=`) are refused; a
computation in a wider dtype than the inputs' (a float64 constant in a float32 forward) is refused.
harness.forward then holds the traced tree to the outputs the forward returned, at every point.
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.catalogue import OPS, Arithmetic, Elementwise
from harness.catalogue.elementwise import SELU_ALPHA, SELU_SCALE
from harness.errors import HarnessError
from harness.expr import Call, Name, Node, Num, Seq, unparse, walk

aten = torch.ops.aten


class Untraceable(HarnessError):
    """The forward cannot be traced onto the catalogue; the message says which op, where, and what to do."""


@dataclass(frozen=True)
class Traced:
    """A forward's exact side: one tree per output, and how many ATen ops the forward ran."""

    outputs: tuple[tuple[str, Node], ...]
    aten_ops: int = field(compare=False)  # (torch may add a view where a mask selects one element)
    shapes: tuple[tuple[int, ...], ...] = ()  # each output's shape as the forward returned it
    returned: tuple[tuple[np.ndarray, ...], ...] = field(default=(), compare=False)  # per point, per output

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
    returned = []
    for index, primals in enumerate(points):
        for nudged in (False, True):
            traced = _trace_once(function, [_nudged(p) if nudged else p for p in primals], names, output_names)
            if first is None:
                first = traced
            elif traced != first:
                where = f"at point {index + 1}" + (", nudged by a relative 2^-12," if nudged else "")
                raise Untraceable(f"cannot trace the forward: it runs other ATen ops, or other constants, {where}"
                                  f" than at point 1 (a branch on the inputs' values, or values that reach it"
                                  f" through numpy, .tolist() or .data?); {ADVICE}")
            if not nudged:
                returned.append(traced.returned[0])
    if first is None:
        raise Untraceable("cannot trace the forward: the case has no points")
    return Traced(first.outputs, first.aten_ops, first.shapes, tuple(returned))


def _nudged(t: torch.Tensor) -> torch.Tensor:
    """The same inputs moved by a relative 2^-12 (zeros by 2^-12): any value that is a constant of
    the trace at one and not at the other came from the inputs by a path the trace cannot see."""
    if not t.is_floating_point():
        return t
    step = torch.where(t == 0, torch.full_like(t, 2.0**-12), t.abs() * 2.0**-12)
    return t + step


def _trace_once(function: Callable[..., tuple[torch.Tensor, ...]], primals: Sequence[torch.Tensor],
                names: Sequence[str], output_names: Sequence[str] | None) -> Traced:
    inputs = [p.detach().clone().requires_grad_(p.is_floating_point()) for p in primals]
    floating = [p.dtype for p in inputs if p.is_floating_point()]
    mode = _Tracer([(t, Name(n)) for t, n in zip(inputs, names)], floating[0] if floating else None)
    with torch.enable_grad(), mode:  # as the checks call it (a callable may look at requires_grad)
        results = function(*inputs)
    outputs, shapes = [], []
    labels = list(output_names) if output_names else _labels(len(results), set(names))
    for label, result in zip(labels, results):
        if not isinstance(result, torch.Tensor):
            raise Untraceable(f"cannot trace the forward: output {label!r} is a {type(result).__name__}, not a tensor")
        value = mode.value_of(result)
        if isinstance(value, _Masked):
            raise Untraceable(f"cannot trace the forward: output {label!r} is a masked selection x[m] of data-dependent"
                              f" size; {ADVICE}")
        value = _number_like(value)
        if any(n == EMPTY for n in walk(value)):
            raise Untraceable(f"cannot trace the forward: output {label!r} has elements of an empty tensor that the"
                              f" forward never writes (or reads before it writes them); {ADVICE}")
        if not any(isinstance(n, Name) for n in walk(value)):
            raise Untraceable(f"cannot trace the forward: output {label!r} does not depend on the inputs; {ADVICE}")
        outputs.append((label, value))
        shapes.append(tuple(result.shape))
    returned = tuple(r.detach().to("cpu", torch.float64).numpy() for r in results)
    return Traced(tuple(outputs), mode.count, tuple(shapes), (returned,))


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


class _Refuse(Exception):
    """Why an op cannot be mapped; the tracer adds the op and the source line."""


def _flat(args: Sequence[object]) -> list[object]:
    return [a for x in args for a in (x if isinstance(x, list | tuple) else [x])]


Key = tuple  # where a tensor's elements are: storage, offset, shape, strides, dtype


def _key(t: torch.Tensor) -> Key:
    """Tensors with one key hold the same elements (an alias: .detach(), .data, a view of the same
    layout): a value is kept per key, so a write through one alias is the value of all of them."""
    if not t.numel():
        return ("empty", id(t))
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


class _Tracer(TorchDispatchMode):
    """Maps each ATen op the forward runs onto the catalogue, keyed by the tensors it makes."""

    def __init__(self, known: list[tuple[torch.Tensor, Node]], dtype: torch.dtype | None) -> None:
        super().__init__()
        self.values: dict[Key, Value] = {}
        self.layouts: dict[int, set[Key]] = {}  # storage -> the keys of tracked tensors on it
        self.keep: list[torch.Tensor] = []  # every tensor tracked stays alive: its memory is never reused
        for t, node in known:
            self.track(t, node)
        self.snapshot: dict[int, torch.Tensor] = {}  # constants as they were before an op wrote into them
        self.before: dict[int, Value] = {}  # the values of an op's tracked operands, as they were before it
        self.dtype = dtype  # the inputs' floating dtype: what the forward computes in
        self.count = 0  # the ATen ops mapped (not the copies and aliases)

    def track(self, t: torch.Tensor, value: Value) -> None:
        self.keep.append(t)
        self.values[_key(t)] = value
        self.layouts.setdefault(_key(t)[0], set()).add(_key(t))

    def value_of(self, t: object, collapse: bool = False) -> Value:
        """A tensor's tree (a constant's exact values; equal values one number where `collapse`),
        or a Python number's exact value."""
        if isinstance(t, torch.Tensor):
            found = self.before.get(id(t), self.values.get(_key(t)))
            return found if found is not None else _constant(self.snapshot.get(id(t), t), collapse)
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise _Refuse(f"a {type(t).__name__} operand")
        return _number_node(float(t))

    def tracked(self, args: Sequence[object]) -> bool:
        return any(isinstance(a, torch.Tensor) and _key(a) in self.values for a in _flat(args))

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        try:
            return self._dispatch(func, args, kwargs)
        except _Refuse as exc:
            raise Untraceable(f"cannot trace the forward: {func} ({_source_line()}): {exc}; {ADVICE}") from None

    def _dispatch(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if func is aten._local_scalar_dense.default and self.tracked(args):
            raise Untraceable(f"cannot trace the forward: it reads a tensor's value into Python at {_source_line()}"
                              f" (an if on a tensor, .item()): the trace would hold only where that branch is"
                              f" taken; {ADVICE}")
        everything = [*args, *kwargs.values()]
        if func._schema.is_mutable:
            self._check_write(func, args, kwargs)
        tracked = self.tracked(everything)
        if tracked:  # the operands as they are before the op (an in-place op changes them)
            for a in _flat(everything):
                if isinstance(a, torch.Tensor) and _key(a) in self.values:
                    self.before[id(a)] = self.values[_key(a)]
                elif isinstance(a, torch.Tensor) and func._schema.is_mutable:
                    self.snapshot[id(a)] = a.detach().clone()
        before = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
        out = func(*args, **kwargs)
        if not tracked:
            return out  # a constant: read from its values where it is used
        name = func._schema.name.split("::")[-1].rstrip("_")
        self.count += name not in _IDENTITY
        self._check_dtypes(everything, out)
        try:
            value = _map(self, func, name, args, kwargs, out, before)
        except (HarnessError, KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
            raise _Refuse(str(exc)) from None
        finally:
            self.snapshot.clear()
            self.before.clear()
        if value is None:
            raise _Refuse("it has no catalogue op, or takes arguments the catalogue's does not (harness ops lists"
                          " them; if the forward's mathematics has no form in them, it cannot be checked exactly)")
        self.track(out if isinstance(out, torch.Tensor) else out[0], value)
        return out

    def _check_write(self, func: Any, args: tuple, kwargs: dict) -> None:
        """A write into a tensor is a new value of its elements, and of every alias of the same
        layout; not a write through a view of another layout (x[1:], x.t()), nor out=."""
        if "out" in kwargs or func._overloadname.startswith("out"):
            if self.tracked([*args, *kwargs.values()]):
                raise _Refuse("out= writes into a tensor the trace cannot follow")
            return
        target = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if target is None:
            return
        key = _key(target)
        if self.layouts.get(key[0], {key}) - {key}:
            raise _Refuse("an in-place write into elements that another tensor of another layout also holds (a view:"
                          " x.t(), x.unsqueeze(0), a slice)")

    def _check_dtypes(self, everything: list[object], out: object) -> None:
        if self.dtype is None:
            return
        tensors = [t for t in _flat([*everything, *(out if isinstance(out, tuple | list) else [out])])
                   if isinstance(t, torch.Tensor) and t.is_floating_point()]
        wider = [t.dtype for t in tensors if torch.finfo(t.dtype).bits > torch.finfo(self.dtype).bits]
        if wider:
            raise _Refuse(f"it computes in {wider[0]} inside a {self.dtype} forward (type promotion): a rounding"
                          " the exact side does not have")


def _number_node(v: float) -> Num:
    if v != v or v in (float("inf"), float("-inf")):
        raise _Refuse(f"the constant {v!r}")
    if v == 0 and math.copysign(1.0, v) < 0:
        raise _Refuse("the constant -0.0 (the exact side has no signed zero)")
    return Num(Fraction(v))


def _constant(t: torch.Tensor, collapse: bool) -> Node:
    """A tensor the forward made or captured, by its exact element values (a 0-d one, or equal
    values where the caller says broadcasting keeps the shape: one number)."""
    values = t.detach().to("cpu", torch.float64)
    if not values.numel():
        raise _Refuse("an empty constant tensor")
    flat = [_number_node(v) for v in values.reshape(-1).tolist()]
    if values.dim() == 0 or (collapse and all(v == flat[0] for v in flat)):
        return flat[0]
    return _stacked(values)


def _stacked(t: torch.Tensor) -> Node:
    if t.dim() == 0:
        return _number_node(t.item())
    return Call("stack", (Seq(tuple(_stacked(row) for row in t)),))


# ---------------------------------------------------------------- the map of ATen ops

_NEGATED = {"gt": "le", "ge": "lt", "lt": "ge", "le": "gt", "eq": "ne", "ne": "eq"}
_SCALAR_BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "fmax", "fmin", "atan2", "copysign",
                  "hypot", "xlogy", "logaddexp", "float_power"}
_EXTRAS = {"softplus": ("beta", "threshold"), "leaky_relu": ("negative_slope",), "hardtanh": ("min_val", "max_val"),
           "celu": ("alpha",), "hardshrink": ("lambd",), "softshrink": ("lambd",)}
_IDENTITY = {"clone", "alias", "detach", "lift_fresh", "lift_fresh_copy", "contiguous", "_to_copy", "view_as"}
_REDUCTIONS = {"sum", "mean", "prod", "amax", "amin", "logsumexp"}
_ALONG = {"_softmax": "softmax", "_log_softmax": "log_softmax", "cumsum": "cumsum", "cumprod": "cumprod"}
_SELU = (float(SELU_ALPHA), float(SELU_SCALE))  # the catalogue's selu constants, as F.selu passes them to elu


def _map(tr: _Tracer, func: Any, name: str, args: tuple, kwargs: dict, out: Any,
         before: tuple[int, ...]) -> Value | None:
    """The tree of one ATen op's result (None: the op has no catalogue counterpart)."""
    if kwargs.get("dtype") not in (None, tr.dtype) and name != "_to_copy":
        raise _Refuse(f"dtype={kwargs['dtype']}: a rounding the exact side does not have")
    handler = _HANDLERS.get(name)
    if handler is not None:
        return handler(tr, name, args, kwargs, out, before)
    found = _catalogue_name(name)
    return _elementwise(tr, found, args, out) if found and not kwargs else None


Handler = Callable[[_Tracer, str, tuple, dict, Any, tuple], Value | None]


def _comparison(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    return Call(name, tuple(_number_like(_full(tr, a, out, args)) for a in args[:2]))


def _where(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    if name == "masked_fill":  # masked_fill(x, m, v) = where(m, v, x)
        return Call("where", (_condition(tr, args[1]), _full(tr, args[2], out, args), _full(tr, args[0], out, args)))
    return Call("where", (_condition(tr, args[0]), *(_number_like(_full(tr, a, out, args)) for a in args[1:3])))


def _binary(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    return _elementwise(tr, name, args, out) if len(args) == 2 and not kwargs else None


def _shaped(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    if len(args) > 1 and isinstance(args[1], torch.dtype):
        raise _Refuse("a view as another dtype reinterprets the bits")
    return _reshape(tr, args[0], out, before)


def _along(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    return Call(_ALONG[name], (_whole(tr, args[0]),), (("dim", Fraction(int(args[1]))),))


def _product(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    return Call("dot" if name == "dot" else "matmul", (_whole(tr, args[0]), _whole(tr, args[1])))


def _gelu(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    variant = {"none": "gelu", "tanh": "gelu_tanh"}.get(kwargs.get("approximate", "none"))
    return _elementwise(tr, variant, args[:1], out) if variant else None


def _like(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    if name in ("empty_like", "empty"):
        return EMPTY  # elements the forward must write before it reads them (_indexed, and at the outputs)
    return _constant(out, collapse=False)  # its values do not depend on the inputs', only its shape


def _softplus(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    """F.softplus as torch computes it: x itself where beta * x > threshold (the catalogue's
    softplus is log(1 + exp(beta*x))/beta everywhere, torch's cut is a finding there)."""
    beta, threshold = (list(args[1:]) + [1, 20])[:2] if len(args) > 1 else (1, 20)
    smooth = _elementwise(tr, "softplus", args[:1], out, (("beta", _number(_number_node(beta))),
                                                           ("threshold", _number(_number_node(threshold)))))
    if isinstance(smooth, _Masked):
        raise _Refuse("softplus of a masked selection x[m]")
    x = _full(tr, args[0], out, args[:1])
    scaled = x if beta == 1 else Call("mul", (x, _number_node(beta)))
    return Call("where", (Call("gt", (scaled, _number_node(threshold))), x, smooth))  # type: ignore[arg-type]


def _affine(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    """addmm/addmv(bias, a, b) = bias + a @ b (nn.Linear with a bias), for beta = alpha = 1."""
    if kwargs.get("beta", 1) != 1 or kwargs.get("alpha", 1) != 1:
        return None
    return Call("add", (_whole(tr, args[0]), Call("matmul", (_whole(tr, args[1]), _whole(tr, args[2])))))


def _extreme(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    """x.max() and x.min() of a whole tensor are amax and amin (with a dim they return indices too)."""
    if len(args) != 1 or kwargs or not isinstance(out, torch.Tensor):
        return None
    return Call("a" + name, (_whole(tr, args[0]),))


def _polygamma(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value:
    return Call("polygamma", (Num(Fraction(int(args[0]))), _whole(tr, args[1])))


def _handlers() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    groups: list[tuple[Any, Handler]] = [
        (_IDENTITY, lambda tr, n, a, k, o, b: _identity(tr, n, a, k)),
        (("add", "sub", "rsub"), lambda tr, n, a, k, o, b: _add(tr, n, a, k, o)),
        (_NEGATED, _comparison),
        (("bitwise_not", "logical_not"), lambda tr, n, a, k, o, b: _negated(tr.value_of(a[0]))),  # type: ignore
        (("where", "masked_fill"), _where),
        (("index_put", "index"), lambda tr, n, a, k, o, b: _indexed(tr, n, a, k)),
        (("clamp", "clamp_min", "clamp_max"), lambda tr, n, a, k, o, b: _clamp(tr, n, a, k, o)),
        (_SCALAR_BINARY - {"add", "sub"}, _binary),
        (("view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten"), _shaped),
        (_REDUCTIONS, lambda tr, n, a, k, o, b: _reduction(tr, n, a, k, o)),
        (("var", "std"), lambda tr, n, a, k, o, b: _spread(tr, n, a, k, o)),
        (("cat", "stack"), _joined),
        (("max", "min"), _extreme),
        (_ALONG, _along),
        (("mm", "mv", "matmul", "dot", "bmm"), _product),
        (("t", "transpose", "permute"), lambda tr, n, a, k, o, b: _transposed(tr, n, a, b)),
        (("empty_like", "empty", "zeros_like", "ones_like", "full_like", "scalar_tensor"), _like),
        (("polygamma",), _polygamma),
        (("linalg_vector_norm",), lambda tr, n, a, k, o, b: _norm(tr, a, k, o)),
        (("elu",), lambda tr, n, a, k, o, b: _elu(tr, a, o)),
        (("gelu",), _gelu),
        (("softplus",), _softplus),
        (("addmm", "addmv"), _affine),
        (("log_sigmoid_forward",), lambda tr, n, a, k, o, b: _elementwise(tr, "logsigmoid", a[:1], o[0])),
    ]
    for names, handler in groups:
        table.update(dict.fromkeys(names, handler))
    return table


def _identity(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value:
    source = args[0]
    if name == "_to_copy" and kwargs.get("dtype") not in (None, source.dtype) and source.is_floating_point():
        raise _Refuse(f"a conversion from {source.dtype} to {kwargs['dtype']}, a rounding the exact side does not have")
    return tr.value_of(source)


def _catalogue_name(aten_name: str) -> str | None:
    """aten.sin -> sin, aten.special_i0e -> special.i0e: the catalogue's elementwise op of that name."""
    for candidate in (aten_name, aten_name.replace("special_", "special.", 1)):
        if isinstance(OPS.get(candidate), Elementwise | Arithmetic) and candidate != "where":
            return candidate
    return None


def _full(tr: _Tracer, a: object, out: Any = None, operands: Sequence[object] = ()) -> Node:
    """An elementwise operand's tree: a constant of equal values is one number when broadcasting
    the other operands already gives the result's shape."""
    value = tr.value_of(a, collapse=_collapsible(tr, a, out, operands))
    if isinstance(value, _Masked):
        raise _Refuse("a masked selection x[m] used with a whole tensor")
    return value


def _whole(tr: _Tracer, a: object) -> Node:
    """An operand of an op over whole tensors (reductions, products): constants keep their shape."""
    value = tr.value_of(a)
    if isinstance(value, _Masked):
        raise _Refuse("a reduction or product of a masked selection x[m], whose size depends on the values")
    return _number_like(value)


def _collapsible(tr: _Tracer, a: object, out: Any, operands: Sequence[object]) -> bool:
    if not isinstance(a, torch.Tensor) or _key(a) in tr.values or not isinstance(out, torch.Tensor):
        return False
    others = [o.shape for o in operands if isinstance(o, torch.Tensor) and o is not a]
    return tuple(torch.broadcast_shapes(*others)) == tuple(out.shape) if others else False


def _condition(tr: _Tracer, a: object) -> Node:
    value = tr.value_of(a)
    if not (isinstance(value, Call) and value.op in _NEGATED):
        raise _Refuse("a condition that is not one comparison")
    return value


def _number_like(value: Node) -> Node:
    """A comparison used as a number ((x > 0) * x) is 1 where it holds, else 0."""
    if isinstance(value, Call) and value.op in _NEGATED:
        return Call("where", (value, Num(Fraction(1)), Num(Fraction(0))))
    return value


def _elementwise(tr: _Tracer, name: str, operands: Sequence[object], out: Any, keywords: tuple = ()) -> Value | None:
    """An elementwise op, with restricted (masked) operands kept restricted to their mask."""
    op = OPS[name]
    tensors = operands[: op.arity]
    values = [tr.value_of(a, collapse=_collapsible(tr, a, out, tensors)) for a in tensors]
    extras = [tr.value_of(a) for a in operands[op.arity:]]
    if name in _EXTRAS:
        keywords = keywords + tuple((k, _number(v)) for k, v in zip(_EXTRAS[name], extras))
    elif extras:
        return None
    values = [v if isinstance(v, _Masked) else _number_like(v) for v in values]
    masks = {v.condition for v in values if isinstance(v, _Masked)}
    if len(masks) > 1:
        raise _Refuse("values selected by two different masks combined")
    if masks:
        for a, v in zip(tensors, values):
            if not isinstance(v, _Masked) and isinstance(a, torch.Tensor) and a.numel() > 1:
                raise _Refuse("a masked selection x[m] combined with a whole tensor")
        full = tuple(v.full if isinstance(v, _Masked) else v for v in values)
        return _Masked(Call(name, full, keywords), next(iter(masks)))
    return Call(name, tuple(values), keywords)  # type: ignore[arg-type]


def _number(value: Value) -> Fraction:
    if not isinstance(value, Num):
        raise _Refuse("an op's parameter is a tensor")
    return value.value  # type: ignore[return-value]


def _add(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any) -> Value | None:
    """add/sub(a, b, alpha) = a +- alpha * b; rsub(a, b, alpha) = b - alpha * a."""
    alpha = kwargs.get("alpha", args[2] if len(args) > 2 else 1)
    if alpha == 1:
        return _elementwise(tr, "sub" if name == "rsub" else name, [args[1], args[0]] if name == "rsub" else args[:2],
                            out)
    a, b = (args[1], args[0]) if name == "rsub" else (args[0], args[1])
    left, right = _full(tr, a, out, args[:2]), _full(tr, b, out, args[:2])
    return Call("sub" if name == "rsub" else name, (_number_like(left), Call("mul", (_number_like(right),
                                                                                       _number_node(alpha)))))


def _clamp(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any) -> Value | None:
    low = kwargs.get("min", args[1] if len(args) > 1 else None) if name != "clamp_max" else None
    high = kwargs.get("max", args[2] if len(args) > 2 else None) if name != "clamp_min" else None
    if name == "clamp_max":
        high = args[1]
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        return None
    if low is not None and high is not None and low > high:
        raise _Refuse("clamp with min > max (torch gives max everywhere)")
    bounds = [(k, v) for k, v in (("min", low), ("max", high)) if v is not None and abs(v) != float("inf")]
    keywords = tuple((k, _number(_number_node(v))) for k, v in bounds)
    return _elementwise(tr, "clamp", args[:1], out, keywords) if keywords else tr.value_of(args[0])


def _elu(tr: _Tracer, args: tuple, out: Any) -> Value | None:
    """aten.elu(x, alpha, scale, input_scale): elu, or selu with torch's constants."""
    alpha, scale, input_scale = (list(args[1:]) + [1.0, 1.0, 1.0])[:3] if len(args) > 1 else (1.0, 1.0, 1.0)
    if (alpha, scale, input_scale) == (*_SELU, 1):
        return _elementwise(tr, "selu", args[:1], out)
    if scale != 1 or input_scale != 1:
        raise _Refuse(f"elu with scale {scale} and input scale {input_scale} (only elu and selu are in the catalogue)")
    return _elementwise(tr, "elu", args[:1], out, (("alpha", _number(_number_node(alpha))),))


def _indexed(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Value | None:
    """x[m] with a boolean mask m (restricted), and out[m] = v (a where)."""
    indices = args[1]
    if len(indices) != 1 or indices[0] is None or indices[0].dtype != torch.bool or indices[0].shape != args[0].shape:
        return None
    condition = _condition(tr, indices[0])
    if name == "index":
        return _Masked(_whole(tr, args[0]), condition)
    if kwargs.get("accumulate") or (len(args) > 3 and args[3]):
        return None
    value = tr.value_of(args[2], collapse=True)
    if isinstance(value, _Masked):
        if value.condition != condition:
            raise _Refuse("out[m] = v with v selected by another mask")
        value = value.full
    elif isinstance(args[2], torch.Tensor) and args[2].numel() > 1:
        raise _Refuse("out[m] = v with a whole tensor v")
    dest = tr.value_of(args[0], collapse=True)
    if isinstance(dest, _Masked):
        raise _Refuse("out[m] = v into a masked selection")
    if isinstance(dest, Call) and dest.op == "where" and dest.args[2] == EMPTY and condition == _negated(dest.args[0]):
        return Call("where", (dest.args[0], dest.args[1], value))  # out[m] = a; out[~m] = b: every element written
    return Call("where", (condition, _number_like(value), dest))


def _negated(condition: Node) -> Node | None:
    if isinstance(condition, Call) and condition.op in _NEGATED:
        return Call(_NEGATED[condition.op], condition.args)
    return None


def _reshape(tr: _Tracer, a: object, out: torch.Tensor, before: tuple[int, ...]) -> Value:
    value = tr.value_of(a)
    if isinstance(value, _Masked):
        return value  # the selected elements, whatever their layout
    if before == tuple(out.shape):
        return value
    return Call("reshape", (_number_like(value), Seq(tuple(Num(Fraction(d)) for d in out.shape))))


def _transposed(tr: _Tracer, name: str, args: tuple, before: tuple[int, ...]) -> Value | None:
    if name == "permute":
        order = [d % len(before) for d in args[1]] if before else []
        if order == sorted(order):
            return tr.value_of(args[0])
        if order != [1, 0]:
            return None
        dims = (0, 1)
    elif name == "t":
        if len(before) < 2:
            return tr.value_of(args[0])
        dims = (0, 1)
    else:
        dims = tuple(sorted(d % len(before) for d in args[1:3]))
        if dims[0] == dims[1]:
            return tr.value_of(args[0])
    if len(before) != 2:
        return None
    return Call("transpose", (_whole(tr, args[0]), Num(Fraction(dims[0])), Num(Fraction(dims[1]))))


def _dims(args: tuple, kwargs: dict) -> tuple[tuple[str, Fraction], ...] | None:
    """The catalogue's dim= for a reduction over one axis or all of them (None: several axes)."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if dim is None or (isinstance(dim, list | tuple) and len(dim) == 0):
        return ()
    if isinstance(dim, list | tuple):
        if len(dim) != 1:
            return None
        dim = dim[0]
    return (("dim", Fraction(int(dim))),)


def _kept(reduced: Node, args: tuple, kwargs: dict, out: torch.Tensor, at: int = 2) -> Node:
    """keepdim=True: the reduction, reshaped to the kept axes' shape."""
    keepdim = kwargs.get("keepdim", args[at] if len(args) > at else False)
    if not keepdim:
        return reduced
    return Call("reshape", (reduced, Seq(tuple(Num(Fraction(d)) for d in out.shape))))


def _reduction(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any) -> Value | None:
    dims = _dims(args, kwargs)
    if dims is None:
        return None
    return _kept(Call(name, (_whole(tr, args[0]),), dims), args, kwargs, out)


def _spread(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any) -> Value | None:
    """var/std(x, dim, correction=, keepdim=) (aten's .correction overloads)."""
    dims = _dims(args, kwargs)
    correction = kwargs.get("correction", 1)
    if dims is None or len(args) > 2:
        return None
    keywords = (*dims, ("correction", _number(_number_node(correction))))
    return _kept(Call(name, (_whole(tr, args[0]),), keywords), (), kwargs, out)


def _joined(tr: _Tracer, name: str, args: tuple, kwargs: dict, out: Any, before: tuple) -> Value | None:
    """cat/stack([a, b, ...], dim)."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    items = tuple(_whole(tr, t) for t in args[0])
    return Call(name, (Seq(items),), (("dim", Fraction(int(dim))),))


def _norm(tr: _Tracer, args: tuple, kwargs: dict, out: Any) -> Value | None:
    order = kwargs.get("ord", args[1] if len(args) > 1 else 2)
    dims = _dims((args[0], *args[2:]), kwargs)
    if dims is None or order in (float("inf"), float("-inf")):
        return None
    norm = Call("linalg.vector_norm", (_whole(tr, args[0]),), (("ord", Fraction(order)), *dims))
    return _kept(norm, args, kwargs, out, at=3)


_HANDLERS = _handlers()  # ATen op name -> how its result's tree is built
