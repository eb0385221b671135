"""Tree to torch callable, and every autograd path that the checks name.

The torch interpreter calls the real torch op of each catalogue entry (the thing under test);
nothing is re-derived. Each path function takes the callable and primals and returns what torch
computed, as float64 numpy arrays (exact: every float32 is a float64).
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch.autograd import forward_ad

from harness.catalogue import Elementwise, Predicate, numeric_keywords, resolve
from harness.expr import Call, Index, Name, Node, Num, Seq

Primals = tuple[torch.Tensor, ...]
Function = Callable[..., tuple[torch.Tensor, ...]]

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


def scalar(q: Fraction) -> int | float:
    """A folded literal as the Python number torch receives (exact: it is already rounded)."""
    return int(q) if q.denominator == 1 and abs(q) < 2**53 else float(q)


def build_function(outputs: dict[str, Node], inputs: Sequence[str]) -> Function:
    """f(*primals) -> one tensor per output, running the catalogue's torch ops."""

    def run(node: Node, env: dict[str, torch.Tensor]) -> torch.Tensor | int | float:
        if isinstance(node, Num):
            return scalar(node.value)
        if isinstance(node, Name):
            return env[node.id]
        if isinstance(node, Index):
            key = tuple(slice(*i) if isinstance(i, tuple) else i for i in node.items)
            return run(node.value, env)[key]  # type: ignore[index]
        if isinstance(node, Seq):
            return [run(item, env) for item in node.items]  # type: ignore[return-value]
        assert isinstance(node, Call)
        op, values = resolve(node.op, node.keywords)
        args = [run(a, env) for a in node.args]
        kwargs = {name: _keyword(name, v) for name, v in zip(numeric_keywords(op), values)}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if op.leading:
            lead = [int(a) for a in args[: len(op.leading)]]
            return op.torch(*lead, *[_tensor(a, env) for a in args[len(op.leading):]])
        if op.name == "where":
            return op.torch(args[0], _tensor(args[1], env), _tensor(args[2], env))
        if isinstance(op, Elementwise | Predicate):  # torch.maximum & co. take no Python numbers
            args = [_tensor(a, env) for a in args]
        if op.name in ("cat", "stack"):  # numbers in the list: tensors of the others' shape
            args = [_full_like(args[0], env, op.name, dict(kwargs).get("dim", 0))]
        return op.torch(*args, **kwargs)

    def function(*primals: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env = dict(zip(inputs, primals))
        dtype = primals[0].dtype if primals else torch.get_default_dtype()
        device = primals[0].device if primals else None
        return tuple(torch.as_tensor(run(tree, env), dtype=dtype, device=device) for tree in outputs.values())

    return function


def _keyword(name: str, value: object) -> int | float | None:
    """A keyword as torch takes it: None stays unset; an infinite bound (clamp's default) too."""
    if value is None:
        return None
    if isinstance(value, Fraction):
        return int(value) if name == "dim" else scalar(value)
    number = float(value)  # type: ignore[arg-type]
    return number if name in ("ord", "p") or number not in (float("inf"), float("-inf")) else None


def _full_like(items: list, env: dict[str, torch.Tensor], name: str, dim: int) -> list[torch.Tensor]:
    """stack([x, 1.0]): the number as torch.full of x's shape (cat: one element along dim), as
    harness.catalogue.structural builds the exact side."""
    shaped = [t for t in items if isinstance(t, torch.Tensor) and t.dim() > 0]
    if not shaped:
        return [_tensor(t, env) for t in items]
    like = shaped[0]
    shape = list(like.shape)
    if name == "cat":
        shape[dim % len(shape)] = 1
    return [t if isinstance(t, torch.Tensor) else torch.full(shape, t, dtype=like.dtype, device=like.device)
            for t in items]


def _tensor(value: object, env: dict[str, torch.Tensor]) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    first = next(iter(env.values()), None)
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    return torch.as_tensor(value, dtype=dtype, device=first.device if first is not None else None)


def as_outputs(result: object, n_outputs: int | None,
               names: Sequence[str] | None = None) -> tuple[torch.Tensor, ...]:
    """What a user's callable returned (a tensor, a tuple or list, a dict keyed by the case's
    output names), as one tensor per output (n_outputs None: as many as it returned)."""
    if isinstance(result, dict):
        if names is not None and n_outputs is not None and n_outputs > 1:
            if set(result) != set(names):
                raise ValueError(f"target returned a dict with keys {sorted(map(str, result))[:8]}, the case's outputs"
                                 f" are {list(names)}")
            result = tuple(result[n] for n in names)
        else:
            result = tuple(result.values())
    if isinstance(result, torch.Tensor):
        result = (result,)
    if not isinstance(result, tuple | list):
        raise TypeError(f"target returned {type(result).__name__}, expected a tensor (or a tuple, list or dict of"
                        " tensors)")
    result = tuple(result)
    if n_outputs is not None and len(result) != n_outputs:
        raise ValueError(f"target returned {len(result)} outputs, the case declares {n_outputs}")
    return result


# ------------------------------------------------------------------ paths a target cannot run


@dataclass(frozen=True)
class _Rule:
    """A torch exception that says a path is not supported by the Function by construction: its
    type and message, the torch function that raises it, and the path families it can happen on."""

    kind: type[BaseException]
    message: re.Pattern[str]
    raised_in: tuple[str, ...]  # (file under torch/, function) pairs joined by ':'
    families: frozenset[str]
    needs: str
    docs: str


_FUNC_DOCS = "https://pytorch.org/docs/stable/notes/extending.func.html"
_EXTENDING = "https://pytorch.org/docs/stable/notes/extending.html"
UNSUPPORTED_RULES = (
    _Rule(RuntimeError, re.compile(r"In order to use an autograd\.Function with functorch transforms .*"
                                   r"must override the setup_context staticmethod"),
          ("autograd/function.py:apply",), frozenset({"torch.func"}),
          "torch.func transforms need a setup_context staticmethod (and forward without ctx)", _FUNC_DOCS),
    _Rule(RuntimeError, re.compile(r"You tried to vmap over \w+, but it does not have vmap support"),
          ("_functorch/autograd_function.py:custom_function_call_vmap",), frozenset({"vmap"}),
          "vmap needs a vmap staticmethod or generate_vmap_rule = True", _FUNC_DOCS),
    _Rule(NotImplementedError, re.compile(r"To use autograd\.Function with vmap, you must either override the "
                                          r"vmap staticmethod or set generate_vmap_rule=True"),
          ("autograd/function.py:vmap",), frozenset({"vmap"}),
          "vmap needs a vmap staticmethod or generate_vmap_rule = True", _FUNC_DOCS),
    _Rule(NotImplementedError, re.compile(r"You must implement the jvp function for custom autograd\.Function "
                                          r"to use it with forward mode AD"),
          ("autograd/function.py:jvp",), frozenset({"forward-ad"}),
          "forward mode needs a jvp staticmethod", _EXTENDING + "#forward-mode-ad"),
    _Rule(RuntimeError, re.compile(r"trying to differentiate twice a function that was marked with "
                                   r"@once_differentiable"),
          ("harness:_raise_delayed",), frozenset({"double-backward"}),
          "double backward needs a differentiable backward (this one is @once_differentiable)", _EXTENDING),
)
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def unsupported(exc: BaseException, families: frozenset[str], function: str | None = None) -> str | None:
    """Why a path cannot run by construction, when torch itself raised one of the errors that say
    so: matched by type, by message, by the torch function that raised it, and by the path being
    one of the families that error belongs to. None for anything else (user code that raises the
    same words, or calls torch.func itself), which stays an error. `function` names the Function
    when torch's frames do not (a @once_differentiable backward's delayed error)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return None
    last = frames[-1]
    if last.filename == __file__:
        raised = f"harness:{last.name}"
    elif last.filename.startswith(_TORCH_DIR):
        raised = f"{last.filename[len(_TORCH_DIR):]}:{last.name}"
    else:
        return None
    for rule in UNSUPPORTED_RULES:
        if (type(exc) is rule.kind and raised in rule.raised_in and families & rule.families
                and rule.message.search(str(exc))):
            named = _function_named(exc) or function
            return f"{named or 'an autograd.Function'}: {rule.needs} (see {rule.docs})"
    return None


def _function_named(exc: BaseException) -> str | None:
    """The autograd.Function torch was applying when it raised: a local of one of its frames."""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            cls = getattr(value, "_forward_cls", value)
            if isinstance(cls, type) and issubclass(cls, torch.autograd.Function) and cls.__module__ != (
                    "torch.autograd.function"):
                return cls.__qualname__
    return None


def _raise_delayed(grads: Sequence[torch.Tensor | None]) -> None:
    """A gradient computed by a @once_differentiable backward carries torch's delayed-error node
    instead of a graph; torch raises its error only when a backward pass reaches that node, and
    autograd.grad never does. Run the node, so that torch raises what it would."""
    for g in grads:
        if g is not None and g.grad_fn is not None and type(g.grad_fn).__name__ == "Error":
            g.grad_fn(torch.ones_like(g))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    if t._is_zerotensor():  # abs's double backward returns torch's lazy ZeroTensor
        return np.zeros(tuple(t.shape))
    return t.detach().resolve_conj().resolve_neg().to("cpu", torch.float64).numpy().copy()


def _differentiable(t: torch.Tensor) -> torch.Tensor:
    """A cotangent or tangent that requires grad, so that a @once_differentiable backward it is fed
    to marks its result (see _raise_delayed); it changes no value."""
    return t.detach().clone().requires_grad_(True)


def _leaves(primals: Primals) -> Primals:
    return tuple(p.detach().clone().requires_grad_(True) for p in primals)


def _zeros_for_none(grads: Sequence[torch.Tensor | None], primals: Primals) -> list[np.ndarray]:
    return [to_numpy(g) if g is not None else np.zeros(p.shape) for g, p in zip(grads, primals)]


# ------------------------------------------------------------------ paths: value and first order


def value(f: Function, primals: Primals) -> list[np.ndarray]:
    with torch.no_grad():
        return [to_numpy(y) for y in f(*primals)]


def value_vmap(f: Function, batch: list[Primals]) -> list[list[np.ndarray]]:
    """torch.func.vmap over the points, stacked on a new leading dimension: [point][output]."""
    stacked = tuple(torch.stack(list(column)) for column in zip(*batch))
    with torch.no_grad():
        outs = torch.func.vmap(f)(*stacked)
    return [[to_numpy(y[p]) for y in outs] for p in range(len(batch))]


def grad_backward(f: Function, primals: Primals, output: int) -> list[np.ndarray]:
    """y.backward(), then read each input's .grad."""
    leaves = _leaves(primals)
    f(*leaves)[output].backward()
    return _zeros_for_none([x.grad for x in leaves], leaves)


def grad_autograd(f: Function, primals: Primals, output: int) -> list[np.ndarray]:
    leaves = _leaves(primals)
    return _zeros_for_none(torch.autograd.grad(f(*leaves)[output], leaves, allow_unused=True), leaves)


def vjp_backward(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[np.ndarray]:
    """y.backward(gradient=v)."""
    leaves = _leaves(primals)
    f(*leaves)[output].backward(gradient=v)
    return _zeros_for_none([x.grad for x in leaves], leaves)


def vjp_autograd(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[np.ndarray]:
    """torch.autograd.grad(y, inputs, grad_outputs=v)."""
    leaves = _leaves(primals)
    y = f(*leaves)[output]
    return _zeros_for_none(torch.autograd.grad(y, leaves, grad_outputs=v, allow_unused=True), leaves)


def vjp_sum(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[np.ndarray]:
    """(y * v).sum().backward(): the same product as a scalar loss."""
    leaves = _leaves(primals)
    (f(*leaves)[output] * v).sum().backward()
    return _zeros_for_none([x.grad for x in leaves], leaves)


def vjp_func(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[np.ndarray]:
    """torch.func.vjp."""
    _, pullback = torch.func.vjp(lambda *xs: f(*xs)[output], *primals)
    return [to_numpy(g) for g in pullback(v)]


def jvp_func(f: Function, primals: Primals, tangents: Primals) -> list[np.ndarray]:
    """torch.func.jvp: forward mode, one tangent per input."""
    _, out = torch.func.jvp(f, primals, tangents)
    return [to_numpy(t) for t in out]


def jvp_forward_ad(f: Function, primals: Primals, tangents: Primals) -> list[np.ndarray]:
    """torch.autograd.forward_ad dual tensors."""
    with forward_ad.dual_level():
        duals = tuple(forward_ad.make_dual(p, t) for p, t in zip(primals, tangents))
        outs = f(*duals)
        return [to_numpy(forward_ad.unpack_dual(y).tangent if forward_ad.unpack_dual(y).tangent is not None
                         else torch.zeros_like(y)) for y in outs]


def jacobian_rev(f: Function, primals: Primals, output: int) -> list[np.ndarray]:
    """torch.func.jacrev: one block (output shape + input shape) per input."""
    argnums = tuple(range(len(primals)))
    return [to_numpy(j) for j in torch.func.jacrev(lambda *xs: f(*xs)[output], argnums=argnums)(*primals)]


def jacobian_fwd(f: Function, primals: Primals, output: int) -> list[np.ndarray]:
    argnums = tuple(range(len(primals)))
    return [to_numpy(j) for j in torch.func.jacfwd(lambda *xs: f(*xs)[output], argnums=argnums)(*primals)]


def multi_grad(f: Function, primals: Primals) -> list[np.ndarray]:
    """autograd.grad(outputs=[y1, y2, ...], inputs): the gradients of all outputs, summed."""
    leaves = _leaves(primals)
    outs = f(*leaves)
    grads = torch.autograd.grad(list(outs), leaves, grad_outputs=[torch.ones_like(y) for y in outs],
                                allow_unused=True)
    return _zeros_for_none(grads, leaves)


# ------------------------------------------------------------------ second order


def _loss(f: Function, output: int, v: torch.Tensor) -> Callable[..., torch.Tensor]:
    return lambda *xs: (f(*xs)[output] * v).sum()


def grad2_double_backward(f: Function, primals: Primals, output: int, v: torch.Tensor,
                          w: Primals) -> list[np.ndarray]:
    """g = autograd.grad(v.y, x, create_graph=True); then autograd.grad(g, x, grad_outputs=w)."""
    leaves = _leaves(primals)
    loss = _loss(f, output, _differentiable(v))(*leaves)
    (g,) = [torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)]
    _raise_delayed(g)
    pairs = [(gi, wi) for gi, wi in zip(g, w) if gi is not None and gi.requires_grad]
    if not pairs:
        return [np.zeros(p.shape) for p in leaves]
    second = torch.autograd.grad([p[0] for p in pairs], leaves, grad_outputs=[p[1] for p in pairs],
                                 allow_unused=True)
    return _zeros_for_none(second, leaves)


def nth_derivative_backward(f: Function, primals: Primals, output: int, index: int, order: int) -> list[np.ndarray]:
    """g_0 = y; g_k = autograd.grad(g_(k-1), x, ones, create_graph=True): the order-th derivative with
    respect to input `index` (elementwise: d^n y_i / dx_i^n)."""
    leaves = _leaves(primals)
    g = f(*leaves)[output]
    x = leaves[index]
    for _ in range(order):
        if not g.requires_grad:
            return [np.zeros(tuple(x.shape))]
        (g,) = torch.autograd.grad(g, x, _differentiable(torch.ones_like(g)), create_graph=True, allow_unused=True)
        _raise_delayed([g])
        if g is None:
            return [np.zeros(tuple(x.shape))]
    return [to_numpy(g)]


def nth_derivative_func(f: Function, primals: Primals, output: int, index: int, order: int) -> list[np.ndarray]:
    """The same by nesting torch.func.grad of the sum, one level per order (vmap-free, reverse mode)."""
    def level(k: int) -> Callable[..., torch.Tensor]:
        if k == 0:
            return lambda *xs: f(*xs)[output]
        inner = level(k - 1)
        return lambda *xs: torch.func.grad(lambda *ys: inner(*ys).sum(), argnums=index)(*xs)

    return [to_numpy(level(order)(*primals))]


def hvp_forward_over_reverse(f: Function, primals: Primals, output: int, v: torch.Tensor,
                             w: Primals) -> list[np.ndarray]:
    """torch.func.jvp of torch.func.grad: the same Hessian-vector product in forward-over-reverse."""
    argnums = tuple(range(len(primals)))
    grad_fn = torch.func.grad(_loss(f, output, v), argnums=argnums)
    _, out = torch.func.jvp(grad_fn, primals, w)
    return [to_numpy(t) for t in out]


def hessian_func(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[list[np.ndarray]]:
    """torch.func.hessian of v.y: blocks [i][j] of shape (input i shape + input j shape)."""
    argnums = tuple(range(len(primals)))
    h = torch.func.hessian(_loss(f, output, v), argnums=argnums)(*primals)
    return [[to_numpy(b) for b in row] for row in h]


def hessian_double_backward(f: Function, primals: Primals, output: int, v: torch.Tensor) -> list[list[np.ndarray]]:
    """The full Hessian of v.y, one double-backward per gradient element (create_graph=True)."""
    leaves = _leaves(primals)
    g = torch.autograd.grad(_loss(f, output, _differentiable(v))(*leaves), leaves, create_graph=True,
                            allow_unused=True)
    _raise_delayed(g)
    blocks = [[np.zeros(tuple(a.shape) + tuple(b.shape)) for b in leaves] for a in leaves]
    for i, gi in enumerate(g):
        if gi is None or not gi.requires_grad:
            continue
        flat = gi.reshape(-1)
        for m in range(flat.numel()):
            row = torch.autograd.grad(flat[m], leaves, retain_graph=True, allow_unused=True)
            for j, r in enumerate(row):
                if r is not None:
                    blocks[i][j].reshape(flat.numel(), -1)[m] = to_numpy(r).reshape(-1)
    return blocks


# ------------------------------------------------------------------ optimizers


def run_optimizer(f: Function, primals: Primals, output: int, name: str, kwargs: dict[str, object],
                  steps: int) -> list[tuple[list[np.ndarray], dict[str, list[np.ndarray]]]]:
    """Minimise output `output` with torch.optim.<name>; the parameters and state after each step.

    Entry 0 is the starting point. State arrays are what the optimizer keeps per parameter
    (momentum_buffer, exp_avg, exp_avg_sq, square_avg, grad_avg).
    """
    leaves = list(_leaves(primals))
    optimizer = getattr(torch.optim, name)(leaves, **kwargs)
    keys = ("momentum_buffer", "exp_avg", "exp_avg_sq", "square_avg", "grad_avg")
    trajectory = [([to_numpy(p) for p in leaves], {})]
    for _ in range(steps):
        optimizer.zero_grad()
        f(*leaves)[output].backward()
        optimizer.step()
        state: dict[str, list[np.ndarray]] = {}
        for key in keys:
            values = [optimizer.state[p].get(key) for p in leaves]
            if all(isinstance(v, torch.Tensor) for v in values):
                state[key] = [to_numpy(v) for v in values]  # type: ignore[arg-type]
        trajectory.append(([to_numpy(p) for p in leaves], state))
    return trajectory
