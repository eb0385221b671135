"""The checks: each names the torch paths it runs and the exact values they must match.

A check is `check_<kind>(ctx, index, spec) -> [Comparison]`; `_compare_paths` evaluates the
reference for every point (certified), runs each torch path and folds the pieces into comparisons.
Each check's entry in harness.registry names its function here, its paths and its order.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction

import numpy as np
import sympy
import torch
from flint import arb

from harness import autodiff, replay
from harness import complex as cx
from harness.balls import precision
from harness.cases import CheckSpec, ToleranceSpec, Vector
from harness.compare import Piece, default_tolerance, summarize
from harness.errors import HarnessError, unexpected
from harness.numbers import FloatFormat, round_doubles, round_to_format
from harness.paths import COMPILED, Path
from harness.prepare import Prepared, rounded
from harness.reference import (
    MAX_PRECISION,
    ZERO,
    ZERO_EXACT,
    Exact,
    Floats,
    PointReference,
    as_floats,
    combine,
    concat,
    evaluate_certified,
    scale_column,
    scaled_floats,
    zero_floats,
)
from harness.registry import CHECKS, lookup
from harness.results import Comparison, Expected, Tolerance
from harness.stationary import stationary_point
from harness.symbolic import Variable
from harness.timing import stage

MAX_HESSIAN_ELEMENTS = 256
MAX_JACOBIAN_ELEMENTS = 65_536  # entries: outputs x inputs elements, as dense torch.func.jacrev builds it


PathFn = Callable[[int], list[np.ndarray]]


def _and_compiled(ctx: Prepared, kind: str,
                  make: Callable[[autodiff.Function], dict[str, PathFn]]) -> dict[str, PathFn]:
    """The eager paths, and with `compile:` the same paths through the compiled function, labelled
    with the backend so a difference is attributed to it. Only paths torch.compile compiles are
    repeated: forward and backward graphs (not double backward, forward mode or torch.func
    transforms, which aot_autograd does not support or runs eagerly)."""
    paths = make(ctx.function)
    if ctx.compiled is not None:
        compiled = make(ctx.compiled)
        paths.update({f"{name}{COMPILED}{ctx.backend}]": compiled[name] for name in CHECKS[kind].compiled})
    return paths


@dataclass(frozen=True)
class Part:
    label: str
    shape: tuple[int, ...]


def _tolerance(ctx: Prepared, check: CheckSpec) -> Tolerance:
    base = default_tolerance(dict(check.options).get("order", CHECKS[check.kind].order))
    for spec in (ctx.case.tolerance, check.tolerance):
        if spec is not None:
            base = _merge(base, spec)
    return base


def _merge(base: Tolerance, spec: ToleranceSpec) -> Tolerance:
    return Tolerance(ulps=spec.ulps if spec.ulps is not None else base.ulps,
                     atol=spec.atol if spec.atol is not None else base.atol,
                     model=spec.model if spec.model is not None else base.model)


@dataclass
class _Outcomes:
    """What each torch path of one check came to while the points run: its pieces, or why it stopped."""

    pieces: dict[tuple[str, str], list[Piece]]
    errors: dict[str, str] = field(default_factory=dict)
    out_of_memory: set[str] = field(default_factory=set)  # paths whose error is the memory limit
    cannot: dict[str, str] = field(default_factory=dict)  # paths the callable does not support by construction: why

    def stopped(self, name: str) -> bool:
        return name in self.errors or name in self.cannot


def _compare_paths(ctx: Prepared, check: CheckSpec, parts: Sequence[Part], paths: dict[str, PathFn],
                   expected: Callable[[int, PointReference], list[Exact]]) -> list[Comparison]:
    """Evaluate the reference for every point (certified), run each torch path, compare."""
    table = {name: lookup(check.kind, name, check.order) for name in paths}
    paths = {name: fn for name, fn in paths.items() if ctx.selects(check, table[name])}
    if not paths:
        return [_not_selected(ctx, check)]
    runs = _Outcomes({(p, part.label): [] for p in paths for part in parts})
    sizes = [int(np.prod(part.shape, dtype=np.int64)) for part in parts]
    doubtful: list[tuple[int, str, int]] = []  # (point, part, elements) whose reference is not certified
    modes = {name: _mode(table[name]) for name in paths}
    for point in range(len(ctx.points)):
        wanted = _wanted(ctx, point, parts, sizes, expected, set(modes.values()), doubtful)
        described = _describe_point(ctx, point)  # labels once per point, shared by every path
        labels = [(_components(ctx, point, part.shape), _abscissa(ctx, point, part.shape)) for part in parts]
        for name, path in paths.items():
            arrays = None if runs.stopped(name) else _run_path(ctx, runs, name, table[name], path, point)
            if arrays is None:
                continue
            for part, want, got, (components, abscissa) in zip(parts, wanted[modes[name]], arrays, labels):
                runs.pieces[(name, part.label)].append(Piece(point, described, got, want, components, abscissa))
    out = [_uncertified(ctx, check, p, part, n) for p, part, n in doubtful]
    return out + _folded(ctx, check, parts, paths, runs)


def _wanted(ctx: Prepared, point: int, parts: Sequence[Part], sizes: list[int],
            expected: Callable[[int, PointReference], list[Exact]], modes: set[str],
            doubtful: list[tuple[int, str, int]]) -> dict[str, list[Expected]]:
    """The reference at one point for each derivative mode the paths use (their conventions
    differ only at kinks: without one, the first mode's serves both); uncertified parts are noted."""
    wanted: dict[str, list[Expected]] = {}
    kinked = False
    for mode in [m for m in ("reverse", "forward") if m in modes]:
        if wanted and not kinked:
            wanted[mode] = next(iter(wanted.values()))
            continue
        wanted[mode], left_out, kinked = _reference_at(ctx, point, parts, sizes, expected, mode)
        doubtful += [d for d in left_out if d not in doubtful]
    return wanted


def _run_path(ctx: Prepared, runs: _Outcomes, name: str, path_type: Path, path: PathFn, point: int) -> list | None:
    """One torch path at one point; None when torch raised (unsupported, or an error: the other
    paths go on)."""
    try:
        with stage("torch"):
            return path(point)
    except Exception as exc:
        reason = autodiff.unsupported(exc, path_type.families, ctx.target_name)
        if reason is not None:
            runs.cannot[name] = reason
        else:
            runs.errors[name] = unexpected(exc)
            if isinstance(exc, MemoryError):
                runs.out_of_memory.add(name)
        return None


def _folded(ctx: Prepared, check: CheckSpec, parts: Sequence[Part], paths: dict[str, PathFn],
            runs: _Outcomes) -> list[Comparison]:
    """Each path's comparisons: unsupported, an error, or one per part over every point."""
    tol = _tolerance(ctx, check)
    out = []
    for name in paths:
        if name in runs.cannot:
            why = runs.cannot[name]
            out.append(Comparison(check.kind, name, "", "unsupported",
                                  message=f"{ctx.breadcrumb} > {check.kind} > {name}: unsupported: {why}"))
            continue
        if name in runs.errors:
            out.append(Comparison(check.kind, name, "", "error",
                                  message=f"{ctx.breadcrumb} > {check.kind} > {name}: torch raised {runs.errors[name]}",
                                  limit="memory" if name in runs.out_of_memory else ""))
            continue
        for part in parts:
            with stage("compare"):
                out.append(summarize(check.kind, name, part.label, runs.pieces[(name, part.label)], ctx.fmt, tol,
                                     ctx.breadcrumb))
    return out


def _far(fmt: FloatFormat) -> tuple[int, int]:
    """Exponents past the format's range: 2**far overflows it, 2**-far rounds to 0, so x**2 at
    2**far is inf and 1/x is 0 once rounded, as their limits are. (Arb's exp fails beyond about
    2**500: exp at an infinite input is undefined in float64, not wrong.)"""
    first = fmt.emax + fmt.precision + 3
    return first, 2 * first


def _limits(plain: Floats, ok: bool, at: Callable[..., tuple[Floats, bool]], far: tuple[int, int],
            fmt: FloatFormat, infinite: bool, several: bool, positive_zero: bool) -> tuple[Floats, bool]:
    """The reference at a point with an infinite input or a signed zero, as IEEE reads them: inf as
    the limit to infinity, and -0.0 as the limit from below where that changes a defined value
    (atan2(-0.0, -1) = -pi; +0.0 is plain 0, and with both zeros the other side must agree). Each
    is evaluated at +-2**far and +-2**-far for two fars (and, with several
    such inputs, at different rates); where the rounded results agree, that is the limit. `plain`
    (zeros exact) stays where it is defined, at kinks (torch's conventions hold at either zero),
    and where the sign of zero does not matter."""
    first, ok1 = at(far[0], True)
    second, ok2 = at(far[1], True)
    agree = ((round_doubles(first.hi, fmt) == round_doubles(second.hi, fmt)) & ~first.undefined
             & ~second.undefined)
    if positive_zero:  # +0.0 is only 0: where its side would decide, the other side must agree
        mirror, _ = at(far[0], True, flip=True)
        agree &= (round_doubles(first.hi, fmt) == round_doubles(mirror.hi, fmt)) & ~mirror.undefined
    if several:  # a limit in several variables must not depend on the direction of approach
        third, ok3 = at(far[0], True, stagger=True)
        agree &= (round_doubles(first.hi, fmt) == round_doubles(third.hi, fmt)) & ~third.undefined
        ok2 = ok2 and ok3
    if infinite:  # no plain value at infinity: the limit or nothing
        keep = plain.kink & ~plain.undefined
        use = ~keep & agree
        undefined = ~keep & ~agree
    else:  # a -0.0 among the inputs
        # -0.0 decides only where the side changes a defined value (atan2, copysign); where the
        # function has no value at 0 its derivatives have none either, whatever the side
        differs = round_doubles(plain.hi, fmt) != round_doubles(first.hi, fmt)
        use = agree & ~plain.kink & ~plain.undefined & differs
        undefined = plain.undefined
    picked = Floats(*(np.where(use, getattr(first, f.name), getattr(plain, f.name)) for f in fields(Floats)))
    picked = replace(picked, undefined=undefined | (picked.undefined & ~use),
                     infinite=picked.infinite & ~undefined)
    return picked, ok and (ok1 or not use.any()) and (ok2 or not use.any())


def _mode(path: Path) -> str:
    """The derivative mode whose conventions a path is held to (forward-over-reverse: forward)."""
    return "forward" if "forward-ad" in path.families else "reverse"


def _reference_at(ctx: Prepared, point: int, parts: Sequence[Part], sizes: list[int],
                  expected: Callable[[int, PointReference], list[Exact]],
                  mode: str) -> tuple[list[Expected], list[tuple[int, str, int]], bool]:
    """The certified reference of every part at one point, with one mode's conventions; which
    parts have elements left out (not certified); whether any element is at a kink."""
    def at(far: int, sided: bool, stagger: bool = False, flip: bool = False) -> tuple[Floats, bool]:
        _, floats, ok = evaluate_certified(
            lambda ref: expected(point, ref),
            lambda bits, final: ctx.reference(point, bits, final, mode, far, sided, stagger, flip), ctx.fmt)
        return floats, ok

    values = list(ctx.points[point].values())
    infinite = sum(int(np.isinf(v).sum()) for v in values)
    zeros = [v[v == 0] for v in values]
    negative_zero = any(np.signbit(z).any() for z in zeros)
    far = _far(ctx.fmt)
    with stage("reference"):
        floats, ok = at(far[0], False)
        if infinite or negative_zero:
            specials = infinite + sum(z.size for z in zeros)
            positive_zero = any((~np.signbit(z)).any() for z in zeros)
            floats, ok = _limits(floats, ok, at, far, ctx.fmt, bool(infinite), specials > 1, positive_zero)
    with np.errstate(over="ignore", invalid="ignore"):  # a result past the range, not an exact infinity:
        beyond = np.isinf(round_doubles(floats.hi, ctx.fmt)) & ~floats.infinite & ~floats.undefined
    if beyond.any():  # torch forms it from terms that may overflow with either sign (inf - inf)
        floats = replace(floats, bound=np.where(beyond, np.inf, floats.bound))
    split = np.cumsum([0, *sizes])
    doubtful = []
    if not ok:  # never compare against a value that is not certified: say so, leave it out
        floats, left_out = _without_uncertified(floats, ctx)
        doubtful = [(point, part.label, int(left_out[split[i]:split[i + 1]].sum()))
                    for i, part in enumerate(parts) if left_out[split[i]:split[i + 1]].any()]
    wanted = [_expected_part(floats, part.shape, 0 if ok else sizes[i], slice(split[i], split[i + 1]))
              for i, part in enumerate(parts)]
    return wanted, doubtful, bool(floats.kink.any())


@contextmanager
def torch_warnings_quiet() -> Iterator[None]:
    """torch's own notices while a path runs (deprecations inside torch.func, vmap's missing
    batching rules) are not the user's to act on; they must not turn a path into an error under
    `-W error` either."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
        yield


def _not_selected(ctx: Prepared, check: CheckSpec) -> Comparison:
    """A check whose every torch path the selection left out: it did not run, which is no pass."""
    return Comparison(check.kind, "-", "", "unsupported", message=(
        f"{ctx.breadcrumb} > {check.kind}: unsupported: not run, no torch path of {check.kind} is selected"
        " (paths:, --paths, --skip-paths)"))


def _without_uncertified(floats: Floats, ctx: Prepared) -> tuple[Floats, np.ndarray]:
    """The floats with every element whose ball is still too wide at the last precision marked
    undefined (not compared: no infinite allowance passes anything there), and that mask."""
    left_out = ~floats.certified(ctx.fmt) & ~floats.undefined
    return replace(floats, undefined=floats.undefined | left_out, infinite=floats.infinite & ~left_out), left_out


def _uncertified(ctx: Prepared, check: CheckSpec, point: int, part: str, n: int) -> Comparison:
    return Comparison(check.kind, "-", part, "error", count=n, uncertified=n, message=(
        f"{ctx.breadcrumb} > {check.kind} > point {point} ({_describe_point(ctx, point)}) > {part}: the exact"
        f" reference could not be certified at {MAX_PRECISION} bits for {n} element{'s' * (n != 1)}; not compared"
        " there"))


def _expected(exacts: Sequence[Exact], shape: tuple[int, ...], uncertified: int) -> Expected:
    return _expected_part(as_floats(exacts), shape, uncertified)


def _expected_part(floats: Floats, shape: tuple[int, ...], uncertified: int, part: slice = slice(None)) -> Expected:
    """One part of the reference as arrays (`floats` may cover several parts; `part` picks this one)."""
    return Expected(
        hi=floats.hi[part].reshape(shape), lo=floats.lo[part].reshape(shape), bound=floats.bound[part].reshape(shape),
        kink=floats.kink[part].reshape(shape), undefined=floats.undefined[part].reshape(shape),
        infinite=floats.infinite[part].reshape(shape), uncertified=uncertified)


def _describe_point(ctx: Prepared, point: int) -> str:
    parts = []
    for name, values in ctx.points[point].items():
        if values.size == 1:
            parts.append(f"{name}={float(values.ravel()[0])!r}")
        elif values.size <= 4:
            parts.append(f"{name}={[float(v) for v in values.ravel()]}")
        else:
            parts.append(f"{name}: shape {list(values.shape)}")
    return ", ".join(parts)


def _components(ctx: Prepared, point: int, shape: tuple[int, ...]) -> Sequence[str] | None:
    """For arrays shaped like the inputs' broadcast, label each element with its input values."""
    values = ctx.points[point]
    if not shape or all(v.size == 1 for v in values.values()):
        return None
    try:
        broadcast = {n: np.broadcast_to(v, shape).ravel() for n, v in values.items()}
    except ValueError:
        return None
    return _Labels(shape, broadcast)


@dataclass(frozen=True, eq=False)
class _Labels(Sequence[str]):
    """'[i, j] at x=..., y=...' for each flat element, made when a report asks for one."""

    shape: tuple[int, ...]
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __getitem__(self, flat: int) -> str:  # type: ignore[override]
        if not 0 <= flat < len(self):
            raise IndexError(flat)
        index = [int(i) for i in np.unravel_index(flat, self.shape)]
        at = ", ".join(f"{n}={float(b[flat])!r}" for n, b in self.values.items())
        return f"{index} at {at}"


def _abscissa(ctx: Prepared, point: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """The first input's value at each element of an array of this shape, when it broadcasts."""
    first = next(iter(ctx.points[point].values()), None)
    if first is None or not shape:
        return np.array([float(first.ravel()[0])]) if first is not None and first.size == 1 else None
    try:
        return np.broadcast_to(np.asarray(first, dtype=np.float64), shape).ravel()
    except ValueError:
        return None


def _flat_variables(ctx: Prepared, name: str) -> list[Variable]:
    return [(name, i) for i in range(int(np.prod(ctx.shapes[name], dtype=np.int64)))]


def _vector(ctx: Prepared, vector: Vector, name: str, shape: tuple[int, ...], seed: Sequence[int],
            what: str) -> np.ndarray:
    """A cotangent or tangent in the dtype: ones, seeded random, or the case's exact values."""
    size = int(np.prod(shape, dtype=np.int64))
    if vector.random:
        draws = np.random.default_rng([ctx.case.seed, *seed]).standard_normal(size)
        return round_doubles(draws, ctx.fmt).reshape(shape)
    if not vector.values:
        return np.ones(shape)
    match = [v for v in vector.values if v[0] in (name, None)]
    if not match:
        raise HarnessError(f"{what} gives no values for {name!r}")
    _, given_shape, nodes = match[0]
    given = rounded(nodes, ctx.fmt).reshape(given_shape)
    try:
        return np.array(np.broadcast_to(given, shape))
    except ValueError:
        raise HarnessError(f"{what} for {name!r} has shape {list(given_shape)},"
                           f" expected {list(shape)}") from None


def _tensor(ctx: Prepared, values: np.ndarray) -> torch.Tensor:
    return torch.tensor(values, dtype=autodiff.DTYPES[ctx.fmt.name], device=ctx.device)


def _weights(values: np.ndarray) -> list[arb]:
    return [arb(v) for v in values.ravel().tolist()]


def _gradient_by_input(ctx: Prepared, ref: PointReference, output: str,
                       weights: list[arb]) -> dict[Variable, list[tuple[arb, Exact]]]:
    """sum_k w_k * dy_k/dx, as the terms to combine for each input element."""
    terms: dict[Variable, list[tuple[arb, Exact]]] = {}
    for w, row in zip(weights, ref.firsts(output)):
        for var, d in row:
            terms.setdefault(var, []).append((w, d))
    return terms


def _collect(ctx: Prepared, ref: PointReference, terms: dict[Variable, list[tuple[arb, Exact]]]) -> list[Exact]:
    zero = ZERO_EXACT
    return [combine(terms[v], ref.u) if v in terms else zero for x in ctx.inputs for v in _flat_variables(ctx, x)]


def _aligned(ctx: Prepared, output: str) -> dict[str, sympy.Symbol] | None:
    """For an elementwise output whose inputs all have its shape: each input's symbol (element i
    of the output depends on element i of each input alone). None otherwise."""
    out = ctx.outputs[output]
    if not out.elementwise or any(ctx.shapes[x] != out.shape for x in ctx.inputs):
        return None
    return {name: s for s, name in out.symbols.items()}  # type: ignore[misc]


def _vjp_exacts(ctx: Prepared, ref: PointReference, output: str, v: np.ndarray) -> list[Exact] | Floats:
    """sum_k v_k dy_k/dx for every input element. Aligned elementwise outputs go column by column
    (one term per element, as floats); the same sums as `_collect(_gradient_by_input(...))`, which
    does the rest."""
    symbols = _aligned(ctx, output)
    if symbols is None:
        return _collect(ctx, ref, _gradient_by_input(ctx, ref, output, _weights(v)))
    columns = ref.first_columns(output)
    parts = []
    for x in ctx.inputs:
        column = columns.get(symbols.get(x))  # type: ignore[arg-type]
        parts.append(zero_floats(v.size) if column is None else scaled_floats(column, [v], ref.u))
    return concat(parts)


def _hvp_exacts(ctx: Prepared, ref: PointReference, output: str, v: np.ndarray,
                tangent: dict[str, np.ndarray]) -> list[Exact] | Floats:
    """(sum_k v_k d2y_k) t for every input element: the Hessian of v.y times the tangent t."""
    symbols = _aligned(ctx, output)
    if symbols is None:
        h, weight = _hessian_terms(ref, output, _weights(v)), _tangent_weights(tangent)
        rows: dict[Variable, list[tuple[arb, Exact]]] = {}
        for (a, b), entry in h.items():
            rows.setdefault(a, []).append((weight[b], entry))
        return _collect(ctx, ref, rows)
    # element i: H[s, t]_i = v_i * d2y_i/ds dt; row s of (H t)_i sums H[s, t]_i * t_i over t, in the
    # order the entries come (the generic path's order)
    inputs = {s: x for x, s in symbols.items()}
    u = ref.u
    seconds = ref.second_columns(output)
    if len(ctx.inputs) == 1:  # one input: one term per element, v * d2y * t
        (x,) = ctx.inputs
        column = seconds.get((symbols[x], symbols[x])) if x in symbols else None
        return zero_floats(v.size) if column is None else scaled_floats(column, [v, tangent[x]], u)
    weights, tangents = _weights(v), {x: _weights(tangent[x]) for x in ctx.inputs}
    entries = [((s, t), scale_column(weights, column, u, missing=None)) for (s, t), column in seconds.items()]
    result: list[Exact] = []
    for x in ctx.inputs:
        s = symbols.get(x)
        mine = [(tangents[inputs[b if a == s else a]], column) for (a, b), column in entries if s in (a, b)]
        for i in range(len(weights)):
            terms = [(t[i], column[i]) for t, column in mine if column[i] is not None]
            result.append(combine(terms, u) if terms else ZERO_EXACT)
    return result


def _input_parts(ctx: Prepared, prefix: str) -> list[Part]:
    return [Part(f"{prefix}{x}" if prefix else x, ctx.shapes[x]) for x in ctx.inputs]


def _single_output_prefix(ctx: Prepared, output: str) -> str:
    return "" if len(ctx.outputs) == 1 else f"d{output}/d"


# ---------------------------------------------------------------- the checks


def check_value(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    names = list(ctx.outputs)
    parts = [Part(n, ctx.outputs[n].shape) for n in names]
    batched: list[list[np.ndarray]] = []

    def vmapped(p: int) -> list[np.ndarray]:
        if not batched:
            batched.extend(autodiff.value_vmap(ctx.function, ctx.primals))
        return batched[p]

    paths = _and_compiled(ctx, "value", lambda f: {"forward": lambda p: autodiff.value(f, ctx.primals[p]),
                                                   "torch.func.vmap over the points": vmapped})
    return _compare_paths(ctx, check, parts, paths, lambda p, ref: [x for n in names for x in ref.values(n)])


def _each_output(ctx: Prepared, index: int, check: CheckSpec,
                 one: Callable[[Prepared, int, CheckSpec, int, str], list[Comparison]]) -> list[Comparison]:
    return [c for o, name in enumerate(ctx.outputs) for c in one(ctx, index, check, o, name)]


def check_grad(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    return _each_output(ctx, index, check, _grad)


def _grad(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
    sym = ctx.outputs[name]
    if sym.size != 1:
        raise HarnessError(f"grad needs a scalar output; {name!r} has shape {list(sym.shape)} (use vjp)")
    def make(f: autodiff.Function) -> dict[str, PathFn]:
        return {"y.backward() -> .grad": lambda p: autodiff.grad_backward(f, ctx.primals[p], o),
                "autograd.grad(y, inputs)": lambda p: autodiff.grad_autograd(f, ctx.primals[p], o)}

    paths = _and_compiled(ctx, "grad", make)
    return _compare_paths(ctx, check, _input_parts(ctx, _single_output_prefix(ctx, name)), paths,
                          lambda p, ref: _collect(ctx, ref, _gradient_by_input(ctx, ref, name, [arb(1)])))


def check_vjp(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    return _each_output(ctx, index, check, _vjp)


def _vjp(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
    vs = _cotangents(ctx, check, index, o, name)
    v = [_tensor(ctx, x) for x in vs]
    primals = ctx.primals

    def make(f: autodiff.Function) -> dict[str, PathFn]:
        return {
            "y.backward(gradient=v)": lambda p: autodiff.vjp_backward(f, primals[p], o, v[p]),
            "autograd.grad(y, inputs, grad_outputs=v)": lambda p: autodiff.vjp_autograd(f, primals[p], o, v[p]),
            "(y * v).sum().backward()": lambda p: autodiff.vjp_sum(f, primals[p], o, v[p]),
            "torch.func.vjp": lambda p: autodiff.vjp_func(f, primals[p], o, v[p]),
        }

    paths = _and_compiled(ctx, "vjp", make)
    return _compare_paths(ctx, check, _input_parts(ctx, _single_output_prefix(ctx, name)), paths,
                          lambda p, ref: _vjp_exacts(ctx, ref, name, vs[p]))


def check_jvp(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    tangents = _tangents(ctx, check, index, 0)
    tensors = [tuple(_tensor(ctx, t[x]) for x in ctx.inputs) for t in tangents]
    names = list(ctx.outputs)

    def expected(p: int, ref: PointReference) -> list[Exact]:
        weight = _tangent_weights(tangents[p])
        return [combine([(weight[var], d) for var, d in row], ref.u) for n in names for row in ref.firsts(n)]

    paths = {"torch.func.jvp": lambda p: autodiff.jvp_func(ctx.function, ctx.primals[p], tensors[p]),
             "forward_ad.make_dual": lambda p: autodiff.jvp_forward_ad(ctx.function, ctx.primals[p], tensors[p])}
    return _compare_paths(ctx, check, [Part(n, ctx.outputs[n].shape) for n in names], paths, expected)


def _tangents(ctx: Prepared, check: CheckSpec, index: int, offset: int) -> list[dict[str, np.ndarray]]:
    return [{x: _vector(ctx, check.tangent, x, ctx.shapes[x], (index, p, offset + i), "tangent")
             for i, x in enumerate(ctx.inputs)} for p in range(len(ctx.points))]


def _tangent_weights(tangent: dict[str, np.ndarray]) -> dict[Variable, arb]:
    return {(x, i): arb(v) for x, t in tangent.items() for i, v in enumerate(t.ravel().tolist())}


def check_jacobian(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    inputs = sum(int(np.prod(s, dtype=np.int64)) for s in ctx.shapes.values())
    outputs = sum(int(np.prod(out.shape, dtype=np.int64)) for out in ctx.outputs.values())
    if inputs * outputs > MAX_JACOBIAN_ELEMENTS:
        raise HarnessError(f"jacobian of {outputs} output x {inputs} input elements is over the limit of"
                           f" {MAX_JACOBIAN_ELEMENTS} entries; use vjp or jvp (one row or column at a time)")
    return _each_output(ctx, index, check, _jacobian)


def _jacobian(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
    sym = ctx.outputs[name]
    parts = [Part(f"d{name}/d{x}", sym.shape + ctx.shapes[x]) for x in ctx.inputs]

    def expected(p: int, ref: PointReference) -> list[Exact]:
        zero, result = ZERO_EXACT, []
        rows = [dict(row) for row in ref.firsts(name)]
        for x in ctx.inputs:
            variables = _flat_variables(ctx, x)
            result += [rows[k].get(v, zero) for k in range(sym.size) for v in variables]
        return result

    paths = {"torch.func.jacrev": lambda p: autodiff.jacobian_rev(ctx.function, ctx.primals[p], o),
             "torch.func.jacfwd": lambda p: autodiff.jacobian_fwd(ctx.function, ctx.primals[p], o)}
    return _compare_paths(ctx, check, parts, paths, expected)


def _hessian_terms(ref: PointReference, output: str, weights: list[arb]) -> dict[tuple[Variable, Variable], Exact]:
    """The Hessian of v.y: sum_k v_k d2y_k, symmetric, only its nonzero entries."""
    terms: dict[tuple[Variable, Variable], list[tuple[arb, Exact]]] = {}
    for w, row in zip(weights, ref.seconds(output)):
        for a, b, d in row:
            terms.setdefault((a, b), []).append((w, d))
            if a != b:
                terms.setdefault((b, a), []).append((w, d))
    return {key: combine(t, ref.u) for key, t in terms.items()}


def _cotangents(ctx: Prepared, check: CheckSpec, index: int, o: int, name: str) -> list[np.ndarray]:
    shape = ctx.outputs[name].shape
    return [_vector(ctx, check.cotangent, name, shape, (index, p, o), "v") for p in range(len(ctx.points))]


def check_grad2(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    return _each_output(ctx, index, check, _grad2)


def _grad2(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
    tangents = _tangents(ctx, check, index, 1000)
    ws = [tuple(_tensor(ctx, t[x]) for x in ctx.inputs) for t in tangents]
    vs = _cotangents(ctx, check, index, o, name)
    v = [_tensor(ctx, x) for x in vs]

    def expected(p: int, ref: PointReference) -> list[Exact]:
        return _hvp_exacts(ctx, ref, name, vs[p], tangents[p])

    f, primals = ctx.function, ctx.primals
    paths = {"autograd.grad(autograd.grad(v.y, create_graph=True), grad_outputs=w)":
             lambda p: autodiff.grad2_double_backward(f, primals[p], o, v[p], ws[p]),
             "torch.func.jvp(torch.func.grad(v.y), w)":
             lambda p: autodiff.hvp_forward_over_reverse(f, primals[p], o, v[p], ws[p])}
    return _compare_paths(ctx, check, _input_parts(ctx, _single_output_prefix(ctx, name)), paths, expected)


def check_hessian(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    total = sum(int(np.prod(s, dtype=np.int64)) for s in ctx.shapes.values())
    if total > MAX_HESSIAN_ELEMENTS:
        raise HarnessError(f"hessian of {total} input elements is over the limit of {MAX_HESSIAN_ELEMENTS};"
                           " use grad2 (a Hessian-vector product)")
    return _each_output(ctx, index, check, _hessian)


def _hessian(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
    vs = _cotangents(ctx, check, index, o, name)
    v = [_tensor(ctx, x) for x in vs]
    parts = [Part(f"d2{name}/d{a}d{b}", ctx.shapes[a] + ctx.shapes[b]) for a in ctx.inputs for b in ctx.inputs]

    def expected(p: int, ref: PointReference) -> list[Exact]:
        h, zero, result = _hessian_terms(ref, name, _weights(vs[p])), ZERO_EXACT, []
        for a in ctx.inputs:
            for b in ctx.inputs:
                pairs = [(va, vb) for va in _flat_variables(ctx, a) for vb in _flat_variables(ctx, b)]
                result += [h.get(pair, zero) for pair in pairs]
        return result

    def flat(blocks: list[list[np.ndarray]]) -> list[np.ndarray]:
        return [block for row in blocks for block in row]

    f, primals = ctx.function, ctx.primals
    paths = {"torch.func.hessian(v.y)": lambda p: flat(autodiff.hessian_func(f, primals[p], o, v[p])),
             "autograd.grad per row (create_graph=True)":
             lambda p: flat(autodiff.hessian_double_backward(f, primals[p], o, v[p]))}
    return _compare_paths(ctx, check, parts, paths, expected)


def check_multi(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    if len(ctx.outputs) < 2:
        raise HarnessError("multi needs at least two outputs (use 'outputs:')")

    def expected(p: int, ref: PointReference) -> list[Exact]:
        terms: dict[Variable, list[tuple[arb, Exact]]] = {}
        for n, sym in ctx.outputs.items():
            for var, t in _gradient_by_input(ctx, ref, n, [arb(1)] * sym.size).items():
                terms.setdefault(var, []).extend(t)
        return _collect(ctx, ref, terms)

    paths = {"autograd.grad([outputs], inputs)": lambda p: autodiff.multi_grad(ctx.function, ctx.primals[p])}
    return _compare_paths(ctx, check, _input_parts(ctx, ""), paths, expected)


# ---------------------------------------------------------------- minimize


def check_minimize(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    """A torch optimizer's trajectory, each step against the exact update from torch's own iterate,
    the whole trajectory against its exact replay from the start, and the end against the exact
    stationary point."""
    if len(ctx.outputs) != 1 or next(iter(ctx.outputs.values())).size != 1:
        raise HarnessError("minimize needs exactly one scalar output")
    if not ctx.selects(check, lookup("minimize", "optimizer.step()")):
        return [_not_selected(ctx, check)]
    options = dict(check.options)
    steps, name = int(options.pop("steps")), str(options.pop("optimizer"))
    optimizer = replay.make(name, options, lambda q: arb(float(round_to_format(q, ctx.fmt))))
    out: list[Comparison] = []
    for point in range(len(ctx.points)):
        trajectory = autodiff.run_optimizer(ctx.function, ctx.primals[point], 0, name, optimizer.torch_kwargs(), steps)
        out += _trajectory_comparisons(ctx, check, optimizer, trajectory, point)
    return out


def _arbs(arrays: list[np.ndarray]) -> list[list[arb]]:
    return [[arb(float(v)) for v in a.ravel()] for a in arrays]


def _exact_gradient(ctx: Prepared, params: list[list[arb]], bits: int) -> list[list[arb]]:
    values = {x: np.array(p, dtype=object).reshape(ctx.shapes[x]) for x, p in zip(ctx.inputs, params)}
    ref = PointReference(ctx.outputs, values, ctx.fmt, bits, True, allowances=False)
    name = next(iter(ctx.outputs))
    grads = [[ZERO] * len(p) for p in params]
    with precision(bits):
        for (x, i), d in ref.firsts(name)[0]:
            if not d.ball.is_finite():
                at = float(params[ctx.inputs.index(x)][i])
                raise HarnessError(f"the exact gradient is not finite at {x}[{i}] = {at!r}")
            grads[ctx.inputs.index(x)][i] = d.ball
    return grads


def _step_all(ctx: Prepared, opt: replay.Optimizer, t: int, params: list[list[arb]], grads: list[list[arb]],
              states: list[replay.State], bits: int) -> tuple[list[list[arb]], list[replay.State]]:
    with precision(bits):
        stepped = [replay.step(opt, t, p, g, st) for p, g, st in zip(params, grads, states)]
    return [p for p, _ in stepped], [st for _, st in stepped]


def _trajectory_comparisons(ctx: Prepared, check: CheckSpec, opt: replay.Optimizer, trajectory: list,
                            point: int) -> list[Comparison]:
    n = len(ctx.inputs)
    one_step: dict[str, list[Piece]] = {x: [] for x in ctx.inputs}
    replayed: dict[str, list[Piece]] = {x: [] for x in ctx.inputs}
    exact = _arbs(trajectory[0][0])
    exact_state: list[replay.State] = [{} for _ in range(n)]
    drift = [np.zeros(int(np.prod(ctx.shapes[x], dtype=np.int64))) for x in ctx.inputs]
    for t in range(1, len(trajectory)):
        before, torch_state = trajectory[t - 1]
        torch_params = _arbs(before)
        states = [{k: _arbs([v[i]])[0] for k, v in torch_state.items()} for i in range(n)]
        stepped, _ = _step_all(ctx, opt, t, torch_params, _exact_gradient(ctx, torch_params, 256), states, 256)
        exact, exact_state = _step_all(ctx, opt, t, exact, _exact_gradient(ctx, exact, 512), exact_state, 512)
        after = trajectory[t][0]
        for i, x in enumerate(ctx.inputs):
            # one step rounds the new point once and its update a dozen times (Adam's m, v, sqrt, division)
            u = ctx.fmt.unit_roundoff
            bound = [u * (2 * abs(float(a)) + 12 * abs(float(a) - float(b)))
                     for a, b in zip(stepped[i], torch_params[i])]
            one = _expected([Exact(b, e) for b, e in zip(stepped[i], bound)], ctx.shapes[x], 0)
            label = f"step {t}"
            one_step[x].append(Piece(t, label, after[i], one))
            drift[i] = drift[i] + np.abs((after[i].ravel() - one.hi.ravel()) - one.lo.ravel())
            whole = _expected([Exact(b, float(e)) for b, e in zip(exact[i], drift[i])], ctx.shapes[x], 0)
            replayed[x].append(Piece(t, label, after[i], whole))
    tol = _tolerance(ctx, check)
    where = f"point {point}, {opt.name}"
    out = [summarize("minimize", f"optimizer.step() vs exact step ({where})", x, one_step[x], ctx.fmt, tol,
                     ctx.breadcrumb) for x in ctx.inputs]
    drift_tol = Tolerance(tol.ulps, tol.atol, model=1.0)
    out += [summarize("minimize", f"trajectory vs exact replay ({where})", x, replayed[x], ctx.fmt, drift_tol,
                      ctx.breadcrumb) for x in ctx.inputs]
    return out + _final_comparisons(ctx, check, trajectory[-1][0], point, len(trajectory) - 1)


def _final_comparisons(ctx: Prepared, check: CheckSpec, final: list[np.ndarray], point: int,
                       steps: int) -> list[Comparison]:
    """f at the last iterate (torch vs exact), and the distance to the exact stationary point."""
    values = {x: np.array([Fraction(float(v)) for v in a.ravel()], dtype=object).reshape(ctx.shapes[x])
              for x, a in zip(ctx.inputs, final)}
    name = next(iter(ctx.outputs))
    _, floats, ok = evaluate_certified(
        lambda ref: ref.values(name),
        lambda bits, last: PointReference(ctx.outputs, values, ctx.fmt, bits, last), ctx.fmt)
    primals = tuple(torch.tensor(a, dtype=autodiff.DTYPES[ctx.fmt.name], device=ctx.device) for a in final)
    torch_value = autodiff.value(ctx.function, primals)[0]
    label = f"after step {steps}"
    want = _expected_part(floats, ctx.outputs[name].shape, 0 if ok else 1)
    out = [summarize("minimize", f"f at the last iterate (point {point})", name,
                     [Piece(steps, label, torch_value, want)],
                     ctx.fmt, default_tolerance(0), ctx.breadcrumb)]
    stationary = stationary_point(ctx.outputs[name], [a.ravel() for a in final], ctx.inputs)
    if stationary is None:
        return out
    point_values, kind = stationary
    for i, x in enumerate(ctx.inputs):
        exact_x = [Exact(arb(str(v)) if v is not None else arb.nan(), 0.0) for v in point_values[i]]
        piece = Piece(steps, label, final[i], _expected(exact_x, ctx.shapes[x], 0))
        shown = ", ".join(f"{float(v):.17g}" for v in point_values[i] if v is not None)
        out.append(summarize("minimize", f"last iterate vs exact stationary point (point {point})",
                             f"{x} (x* = {shown}, a {kind})", [piece], ctx.fmt,
                             Tolerance(ulps=float("inf")), ctx.breadcrumb))
    return out


def check_wirtinger(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    """dy/dz and dy/dz-bar: torch's, recovered from backward on the complex tensors with v = 1 and
    v = i (its convention: v * conj(dy/dz) + conj(v) * dy/dz-bar), against the exact ones."""
    if ctx.complex_outputs is None or ctx.complex_functions is None:
        raise HarnessError("wirtinger needs a complex dtype (complex64, complex128)")
    return [c for name in ctx.complex_outputs for c in _wirtinger(ctx, check, name)]


def _wirtinger(ctx: Prepared, check: CheckSpec, name: str) -> list[Comparison]:
    out, f = ctx.complex_outputs[name], ctx.complex_functions[name]  # type: ignore[index]
    inputs = [spec.name for spec in ctx.case.inputs]
    shape = ctx.outputs[name if out.is_real else cx.part_names(name)[0]].shape
    if any(spec.shape != shape for spec in ctx.case.inputs):
        raise HarnessError("wirtinger needs every input in the output's shape (no broadcasting)")
    labels = [f"d{name}/d{x}{bar}.{part}" for x in inputs for bar in ("", "-bar") for part in ("re", "im")]
    parts = [Part(label, shape) for label in labels]
    paths = {"autograd.grad(y, z, v) with v = 1 and v = i": functools.partial(_torch_wirtinger, ctx, f, len(inputs))}
    return _compare_paths(ctx, check, parts, paths, functools.partial(_exact_wirtinger, name, out.is_real, inputs))


def _exact_wirtinger(name: str, is_real: bool, inputs: list[str], p: int, ref: PointReference) -> list[Exact]:
    """d/dz = (d/dx - i d/dy)/2 and d/dz-bar = (d/dx + i d/dy)/2 of y = u + i w, from the real
    partials of u and w, per input: re and im of each, in the parts' order."""
    half = arb(1) / 2
    u_name, w_name = (name, None) if is_real else cx.part_names(name)
    rows_u = [dict(r) for r in ref.firsts(u_name)]
    rows_w = [dict(r) for r in ref.firsts(w_name)] if w_name else [{} for _ in rows_u]
    result: list[Exact] = []
    for x in inputs:
        xr, xi = cx.part_names(x)
        blocks: list[list[Exact]] = [[], [], [], []]
        for k, (ru, rw) in enumerate(zip(rows_u, rows_w)):
            ux, uy = ru.get((xr, k), ZERO_EXACT), ru.get((xi, k), ZERO_EXACT)
            wx, wy = rw.get((xr, k), ZERO_EXACT), rw.get((xi, k), ZERO_EXACT)
            blocks[0].append(combine([(half, ux), (half, wy)], ref.u))
            blocks[1].append(combine([(half, wx), (-half, uy)], ref.u))
            blocks[2].append(combine([(half, ux), (-half, wy)], ref.u))
            blocks[3].append(combine([(half, wx), (half, uy)], ref.u))
        result += [x for block in blocks for x in block]
    return result


def _torch_wirtinger(ctx: Prepared, f: Callable[..., torch.Tensor], n_inputs: int, p: int) -> list[np.ndarray]:
    """torch's Wirtinger derivatives, recovered from autograd.grad with cotangents 1 and i."""
    zs = tuple(torch.complex(ctx.primals[p][2 * i], ctx.primals[p][2 * i + 1]).requires_grad_(True)
               for i in range(n_inputs))
    y = f(*zs)
    ones = torch.ones_like(y)
    g1 = torch.autograd.grad(y, zs, ones, retain_graph=True, allow_unused=True)
    g1 = [g if g is not None else torch.zeros_like(z) for g, z in zip(g1, zs)]
    if y.is_complex():
        gi = torch.autograd.grad(y, zs, 1j * ones, allow_unused=True)
        gi = [g if g is not None else torch.zeros_like(z) for g, z in zip(gi, zs)]
        pairs = [(((a - 1j * b) / 2).conj(), (a + 1j * b) / 2) for a, b in zip(g1, gi)]
    else:  # a real output: dy/dz-bar = grad / 2 and dy/dz its conjugate
        pairs = [((a / 2).conj(), a / 2) for a in g1]
    arrays = []
    for dz, dzbar in pairs:
        arrays += [autodiff.to_numpy(t) for t in (dz.real, dz.imag, dzbar.real, dzbar.imag)]
    return arrays


def check_derivative(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    """The n-th derivative of each output with respect to each input (or `input:`): repeated
    autograd.grad with create_graph=True, and torch.func.grad nested n times."""
    options = dict(check.options)
    order, chosen = int(options["order"]), options.get("input")
    if chosen is not None and chosen not in ctx.inputs:
        raise HarnessError(f"derivative: no input {chosen!r} (inputs: {', '.join(ctx.inputs)})")
    out = []
    for o, name in enumerate(ctx.outputs):
        symbols = _aligned(ctx, name)
        if symbols is None:
            raise HarnessError("derivative needs elementwise outputs whose inputs all have their shape")
        for x in [chosen] if chosen is not None else ctx.inputs:
            out += _nth_derivative(ctx, check, o, name, x, symbols.get(x), order)
    return out


def _nth_derivative(ctx: Prepared, check: CheckSpec, o: int, name: str, x: str, symbol: sympy.Symbol | None,
                    order: int) -> list[Comparison]:
    i, f, primals = ctx.inputs.index(x), ctx.function, ctx.primals
    paths = {f"autograd.grad {order} times (create_graph=True)":
             lambda p: autodiff.nth_derivative_backward(f, primals[p], o, i, order),
             f"torch.func.grad nested {order} times":
             lambda p: autodiff.nth_derivative_func(f, primals[p], o, i, order)}
    part = Part(f"d{order} {name}/d{x}{order}", ctx.outputs[name].shape)
    return _compare_paths(ctx, check, [part], paths, lambda p, ref: ref.nth_column(name, symbol, order))


def runner(kind: str) -> Callable[[Prepared, int, CheckSpec], list[Comparison]]:
    """The function that runs a check, as its registry entry names it."""
    return globals()[CHECKS[kind].run]  # type: ignore[no-any-return]


__all__ = ["runner"]
