"""A case made concrete in one dtype: its numbers rounded, its exact outputs built, its torch callable.

`prepare(case, dtype, options, device) -> Prepared` is the one value every check works from. Real
dtypes build the outputs from the harness's tree; complex dtypes (harness.complex) build the real
map of their parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import sympy
import torch
from flint import arb

from harness import autodiff, forward, target, trace
from harness import complex as cx
from harness.balls import compile_closed, precision
from harness.cases import COMPLEX_DTYPES, Case, CheckSpec
from harness.catalogue import OPS, Elementwise, Op
from harness.catalogue.markers import Conventions, as_sympy
from harness.errors import HarnessError, unexpected
from harness.expr import Call, Name, Node, Num, transform, walk
from harness.numbers import FORMATS, FloatFormat, round_doubles, round_numbers, ulp
from harness.paths import Path, Selection
from harness.reference import (
    PointReference,
    constant_value,
    fold,
)
from harness.results import Comparison, Status
from harness.symbolic import SymbolicOutput, build_output
from harness.timing import stage


@dataclass(frozen=True)
class Options:
    """How a run treats cases: `allow_targets` lets `target:` import user code; `timeout` bounds
    the seconds one case may take in one dtype (0: no limit)."""

    allow_targets: bool = False
    timeout: float = 300.0
    memory_mb: float = 0.0  # extra address space one case may take (0: no limit)
    device: str | None = None  # run every case on this device instead of its own
    compile: str | None = None  # run every case also through torch.compile with this backend
    paths: Selection = Selection()  # which torch paths run, beside each case's and check's own `paths:`
    allow_flag: str = "--allow-target"  # how the caller lets targets be imported, for the message that asks


@dataclass(eq=False)
class Prepared:
    """A case made concrete in one dtype: rounded values, exact outputs, the torch callable."""

    case: Case
    dtype: str
    fmt: FloatFormat
    outputs: dict[str, SymbolicOutput]
    function: autodiff.Function
    shapes: dict[str, tuple[int, ...]]
    points: list[dict[str, np.ndarray]]  # exact rounded values (Fractions) per input
    primals: list[tuple[torch.Tensor, ...]]
    device: str = "cpu"
    compiled: autodiff.Function | None = None  # the same function through torch.compile
    backend: str | None = None
    complex_outputs: dict[str, cx.ComplexOutput] | None = None  # complex cases: outputs before the split
    complex_functions: dict[str, Callable[..., torch.Tensor]] | None = None  # ... and torch's, of complex tensors
    run_paths: Selection = Selection()  # the run's own path selection (--paths, --skip-paths)
    target_name: str | None = None  # the autograd.Function (or callable) under test, for messages
    exact_side: str = "expr"  # where the exact side came from: "expr", or "traced from forward: N ATen ops"
    forward: tuple[Comparison, ...] = ()  # the traced forward against expr:, when a case has both
    traced: trace.Traced | None = None
    untraced: str = ""  # why a target's forward could not be traced (a case with expr: goes on without it)
    _references: dict[tuple, PointReference] = field(default_factory=dict)

    @property
    def breadcrumb(self) -> str:
        where = "" if self.device == "cpu" else f" on {self.device}"
        return f"{self.case.name} [{self.dtype}{where}]"

    @property
    def inputs(self) -> list[str]:
        return list(self.shapes)

    def selects(self, check: CheckSpec, path: Path) -> bool:
        """Whether a torch path runs: the run's, the case's and the check's selections all keep it."""
        return all(s.keeps(path) for s in (self.run_paths, self.case.paths, check.paths))

    def reference(self, point: int, bits: int, final: bool, mode: str = "reverse",
                  far: int = 0, sided: bool = False, stagger: bool = False, flip: bool = False) -> PointReference:
        """The exact side at one point and precision, with the conventions of one derivative mode;
        an infinite input taken as +-2**far, and with `sided` a zero as +-2**-far by its sign
        (limits: see checks._reference_at)."""
        key = (point, bits, mode, far, sided, stagger, flip)
        if key not in self._references:
            self._references[key] = PointReference(self.outputs, self.points[point], self.fmt, bits, final,
                                                   Conventions(self.case.conventions, mode),
                                                   atomic=self.case.target is not None,
                                                   far=far, sided=sided, stagger=stagger, flip=flip)
        return self._references[key]


def prepare(case: Case, dtype: str, options: Options, device: str = "cpu") -> Prepared:
    if device != "cpu" and not torch.cuda.is_available():
        raise HarnessError(f"device {device!r} is not available here (torch.cuda.is_available() is False)")
    if dtype in COMPLEX_DTYPES:
        return _prepare_complex(case, dtype, options, device)
    fmt = FORMATS[dtype]
    with stage("parse"):  # the case's numbers, rounded to the dtype
        constants: dict[str, Fraction] = {}
        for name, tree in case.constants:
            constants[name] = constant_value(tree, fmt, constants)
        shapes = {spec.name: spec.shape for spec in case.inputs}
        points = _points(case, fmt)
        primals = _primals(points, dtype, device)
    found = _load_target(case, options) if case.target is not None else None
    traced = None
    if found is not None:
        traced, points, primals = _traced_at_points(case, found, fmt, dtype, device, points, primals)
    if not case.outputs and not isinstance(traced, trace.Traced):
        raise HarnessError(str(traced), file=case.file, line=case.line_of("target"))
    declared = case.outputs or traced.outputs  # type: ignore[union-attr]
    with stage("parse"):
        trees = {name: fold(tree, fmt, constants) for name, tree in declared}
    with stage("symbolic"):
        try:
            outputs = {name: build_output(name, tree, shapes, {}) for name, tree in trees.items()}
        except HarnessError as exc:  # a shape that does not broadcast, a size: the expression's line
            raise exc.at(case.file, case.line_of("expr", "outputs", "target")) from None
    side, against, untraced = _exact_side(case, traced, outputs, shapes, points, fmt, constants)
    with stage("torch"):
        function, target_name = _torch_function(case, trees, options, found)
        backend = options.compile or case.compile
        compiled = _compiled(function, backend)
    return Prepared(case, dtype, fmt, outputs, function, shapes, points, primals, device, compiled, backend,
                    run_paths=options.paths, target_name=target_name, exact_side=side, forward=against,
                    untraced=untraced, traced=traced if isinstance(traced, trace.Traced) else None)


def _traced_at_points(case: Case, found: target.Target, fmt: FloatFormat, dtype: str, device: str,
                      points: list[dict[str, np.ndarray]], primals: list[tuple[torch.Tensor, ...]]) -> tuple:
    """The target's forward traced at the case's points (harness.trace), or why it cannot be; and
    the points, which for a case without expr: get the critical points of the ops the forward
    applies to its inputs, as an expression's would (the forward must trace to the same tree there)."""
    traced = _traced(case, found, primals)
    if isinstance(traced, trace.Traced) and not case.outputs and any(spec.critical for spec in case.inputs):
        points = _points(replace(case, outputs=traced.outputs), fmt)
        primals = _primals(points, dtype, device)
        again = _traced(case, found, primals)
        if isinstance(again, trace.Traced) and again.outputs != traced.outputs:
            again = ("cannot trace the forward: it runs other ATen ops at the critical points of its ops;"
                     f" {trace.ADVICE}")
        traced = again  # (with the forward's outputs at these points)
    return traced, points, primals


def _exact_side(case: Case, traced: trace.Traced | str | None, outputs: dict[str, SymbolicOutput],
                shapes: dict[str, tuple[int, ...]], points: list[dict[str, np.ndarray]], fmt: FloatFormat,
                constants: dict[str, Fraction]) -> tuple[str, tuple[Comparison, ...], str]:
    """Where the exact side came from, the traced forward's comparisons with expr:, and why a
    forward was not traced. A traced exact side must reproduce the outputs the forward returned
    (harness.forward.unreproduced) before any verdict rests on it."""
    if traced is None:
        return "expr", (), ""
    if isinstance(traced, str):
        return "expr; forward not traced", (), traced
    if case.outputs:
        against, untraced = _forward_against_expr(traced, outputs, case, shapes, points, fmt, constants)
        if untraced:
            return "expr; forward not traced", (), untraced
        return f"expr; forward {traced.describe.replace('traced from forward', 'traced')}, compared with it", \
            against, ""
    _same_shapes(traced, outputs, case)
    with stage("reference"):
        wrong = forward.unreproduced(forward.exact_values(outputs, points, fmt), traced.returned, points, fmt)
    if wrong:
        raise HarnessError(wrong, file=case.file, line=case.line_of("target"))
    return traced.describe, (), ""


def _primals(points: list[dict[str, np.ndarray]], dtype: str, device: str) -> list[tuple[torch.Tensor, ...]]:
    torch_dtype = autodiff.DTYPES[dtype]
    return [tuple(torch.tensor(values, dtype=torch_dtype, device=device) for values in point.values())
            for point in points]


def _traced(case: Case, found: target.Target, primals: list[tuple[torch.Tensor, ...]]) -> trace.Traced | str:
    """The target's forward traced onto the catalogue at every point, or why it cannot be."""
    names = [spec.name for spec in case.inputs]
    function = target.bind(found, names, len(case.outputs) or None, [n for n, _ in case.outputs] or None)
    with stage("torch"):  # the forward runs under the tracer
        try:
            return trace.trace_forward(function, primals, names, [n for n, _ in case.outputs] or None)
        except trace.Untraceable as exc:
            return str(exc)
        except MemoryError:
            raise
        except Exception as exc:  # the target itself failed: its checks say so; the trace only notes it
            return f"cannot trace the forward: {unexpected(exc)}"


def _forward_against_expr(traced: trace.Traced, outputs: dict[str, SymbolicOutput], case: Case,
                          shapes: dict[str, tuple[int, ...]], points: list[dict[str, np.ndarray]], fmt: FloatFormat,
                          constants: dict[str, Fraction]) -> tuple[tuple[Comparison, ...], str]:
    """The traced forward against expr: at every point (harness.forward), output by output (the
    trace names them as the case does); or, when the trace is not what the forward computed, no
    comparison and why."""
    crumb = f"{case.name} [{fmt.name}]"
    with stage("symbolic"):
        try:
            built = {name: build_output(name, fold(tree, fmt, constants), shapes, {}) for name, tree in traced.outputs}
        except HarnessError as exc:
            return (), f"cannot trace the forward: its traced expression: {exc}"
    for name, out in outputs.items():
        if built[name].shape != out.shape:
            return (Comparison(forward.CHECK, forward.PATH, name, Status.FAIL,
                               message=f"{crumb} > {forward.CHECK} > {name}: the forward's output has shape"
                                       f" {list(built[name].shape)}, expr:'s {list(out.shape)}"),), ""
    with stage("reference"):
        values = forward.exact_values(built, points, fmt)
        wrong = forward.unreproduced(values, traced.returned, points, fmt)
        if wrong:
            return (), wrong
        return forward.forward_against_expr(values, outputs, points, fmt, crumb), ""


def _same_shapes(traced: trace.Traced, outputs: dict[str, SymbolicOutput], case: Case) -> None:
    for (name, _), shape in zip(traced.outputs, traced.shapes):
        if outputs[name].shape != shape:
            raise HarnessError(f"cannot trace the forward: output {name!r} has shape {list(shape)}, its traced"
                               f" expression {list(outputs[name].shape)}; {trace.ADVICE}",
                               file=case.file, line=case.line_of("target"))


def _prepare_complex(case: Case, dtype: str, options: Options, device: str) -> Prepared:
    """A complex case as the real map of its parts (harness.complex): inputs x.re, x.im, ...;
    outputs y.re, y.im (or y when real); the torch function runs on complex tensors."""
    fmt = FORMATS[COMPLEX_DTYPES[dtype]]
    inputs = [spec.name for spec in case.inputs]
    with stage("parse"):
        trees = {name: _fold_numbers(tree, fmt) for name, tree in case.outputs}
        shapes = {part: spec.shape for spec in case.inputs for part in cx.part_names(spec.name)}
        points = []
        for p in range(case.n_points):
            point = {}
            for spec in case.inputs:
                re_name, im_name = cx.part_names(spec.name)
                pick = p if len(spec.points) > 1 else 0
                point[re_name] = rounded(spec.points[pick], fmt).reshape(spec.shape)
                point[im_name] = rounded(spec.imag[pick], fmt).reshape(spec.shape)
            points.append(point)
    with stage("symbolic"):
        complex_outputs = {name: cx.build(name, tree, inputs) for name, tree in trees.items()}
        outputs: dict[str, SymbolicOutput] = {}
        for out in complex_outputs.values():
            outputs.update(cx.real_outputs(out, shapes))
    with stage("torch"):
        if case.target is not None:
            if len(trees) != 1:
                raise HarnessError("a complex case with a target has one output")
            user, target_name = _torch_function(case, trees, options)
            functions = {next(iter(trees)): lambda *zs: user(*zs)[0]}
        else:
            target_name = None
            functions = {name: cx.complex_function(tree, inputs) for name, tree in trees.items()}
        function = cx.real_map(functions, inputs, {n: o.is_real for n, o in complex_outputs.items()})
        torch_dtype = autodiff.DTYPES[fmt.name]
        primals = [tuple(torch.tensor(values, dtype=torch_dtype, device=device) for values in point.values())
                   for point in points]
        backend = options.compile or case.compile
        compiled = _compiled(function, backend)
    return Prepared(case, dtype, fmt, outputs, function, shapes, points, primals, device, compiled, backend,
                    complex_outputs, functions, run_paths=options.paths, target_name=target_name)


def _compiled(function: autodiff.Function, backend: str | None) -> autodiff.Function | None:
    """The function through torch.compile, from a fresh Dynamo: every case's function is the same
    code object, and past Dynamo's recompile limit (8) torch would run later "compiled" paths
    eagerly without a word, so a compiler bug would pass as compiled."""
    if not backend:
        return None
    torch._dynamo.reset()
    return torch.compile(function, backend=backend, dynamic=False)


def _fold_numbers(node: Node, fmt: FloatFormat) -> Node:
    """Numbers rounded to the parts' format, as torch receives them."""
    return transform(node, lambda n: Num(constant_value(n, fmt)) if isinstance(n, Num) else None)


def _torch_function(case: Case, trees: dict, options: Options,
                    found: target.Target | None = None) -> tuple[autodiff.Function, str | None]:
    """The torch side: the catalogue's ops, or the case's target; and the target's name."""
    inputs = [spec.name for spec in case.inputs]
    if case.target is None:
        return autodiff.build_function(trees, inputs), None
    found = found if found is not None else _load_target(case, options)
    return target.bind(found, inputs, len(trees), list(trees) if case.outputs else None), target.name(found)


def _load_target(case: Case, options: Options) -> target.Target:
    """The case's target: a callable given to the Python API, or imported (when the run allows it)."""
    if not isinstance(case.target, str):
        return target.from_callable(case.target)
    if not options.allow_targets:
        raise HarnessError(f"case uses target {case.target!r}: imports of user code need {options.allow_flag}",
                           file=case.file, line=case.line_of("target"))
    try:
        return target.resolve(case.target, case.file)
    except HarnessError as exc:
        raise exc.at(case.file, case.line_of("target")) from None


def _points(case: Case, fmt: FloatFormat) -> list[dict[str, np.ndarray]]:
    """Each point's inputs rounded to the dtype, as float64 arrays (every dtype's values are doubles)."""
    n = case.n_points
    points = []
    for p in range(n):
        point = {}
        for spec in case.inputs:
            pick = p if len(spec.points) > 1 else 0
            drawn = spec.doubles[pick] if spec.doubles else None
            values = round_doubles(drawn, fmt) if drawn is not None else None
            if values is None or not np.isfinite(values).all():  # listed values, edges, overflow
                values = rounded(spec.points[pick], fmt)
            point[spec.name] = values.reshape(spec.shape)
        points.append(point)
    if any(spec.critical for spec in case.inputs):
        critical = _critical_points(case, fmt)
        for spec in case.inputs:
            if spec.critical and critical.get(spec.name):
                _place(points, spec.name, critical[spec.name])
    return points


def _critical_points(case: Case, fmt: FloatFormat) -> dict[str, list[float]]:
    """For each input an op is applied to directly, that op's critical points in this format (its
    thresholds and fixed kinks, each with its neighbours in the format), in the order found; only
    those inside the domain of every one-input op applied to that input (tanh's 18.7 is no point
    for an x that is also under sqrt: outside a domain there is nothing to compare)."""
    found: dict[str, list[float]] = {}
    applied: dict[str, list[Op]] = {}

    for node in (n for _, tree in case.outputs for n in walk(tree)):
        op = OPS.get(node.op) if isinstance(node, Call) else None
        if isinstance(op, Elementwise) and node.args and isinstance(node.args[0], Name):
            name = node.args[0].id
            values = list(op.critical(fmt))
            values += [float(k.at()) for k in op.kinks if k.at is not None and not op.keywords]
            mine = found.setdefault(name, [])
            mine += [v for v in _neighbours(values, fmt) if v not in mine]
            if op.arity == 1:
                applied.setdefault(name, []).append(op)
    return {name: [v for v in values if all(_inside(op, v) for op in applied.get(name, []))]
            for name, values in found.items()}


def _inside(op: Op, x: float) -> bool:
    """Whether a one-input op has a value at x, or x is 0 (log's and sqrt's domain edge: their
    limits there); sqrt at -18.7 or -5e-324 is outside."""
    if any(isinstance(default, str) for _, default in op.keywords):
        return True  # a variant chosen by a string keyword: not judged here
    symbol = sympy.Symbol("x")
    try:
        form = compile_closed(as_sympy(op.definition(symbol, *(as_sympy(d) for _, d in op.keywords))), [symbol])
        with precision(128):
            return x == 0 or not form([arb(x)]).is_nan()
    except (HarnessError, TypeError, ValueError, ZeroDivisionError):
        return True


def _neighbours(values: list[float], fmt: FloatFormat) -> list[float]:
    """Each value rounded to the format, and the format's numbers just below and above it."""
    out: list[float] = []
    for v in values:
        x = round_doubles(np.array([v]), fmt)[0]
        if not np.isfinite(x):
            continue
        step = float(ulp(np.array([x]), fmt)[0])  # (below a power of two the spacing halves: x - step
        for y in (x, x - step, x + step):          # skips one number there, still a neighbour's neighbour)
            if np.isfinite(y) and y not in out:
                out.append(float(y))
    return out


def _place(points: list[dict[str, np.ndarray]], name: str, values: list[float]) -> None:
    """Put the values in place of the last sampled elements of an input (at most half of them)."""
    copies = [p[name].reshape(-1).copy() for p in points]
    values = values[:sum(a.size for a in copies) // 2]
    slot = len(values)  # the last `len(values)` elements, counted over the points in order
    for a in reversed(copies):
        take = min(slot, a.size)
        if take:
            a[a.size - take:] = values[slot - take:slot]
        slot -= take
    for p, a in zip(points, copies):
        p[name] = a.reshape(p[name].shape)


def rounded(nodes: Sequence[Node], fmt: FloatFormat) -> np.ndarray:
    if any(isinstance(node, Num) and isinstance(node.value, float) for node in nodes):  # -0.0, +-inf: as given
        return np.array([node.value if isinstance(node, Num) and isinstance(node.value, float)
                         else rounded([node], fmt)[0] for node in nodes], dtype=np.float64)
    if all(isinstance(node, Num) for node in nodes):  # sampled inputs: numbers, mostly doubles already
        values = round_numbers([node.value for node in nodes], fmt)  # type: ignore[attr-defined]
        if np.isfinite(values).all():
            return values
    return np.array([float(constant_value(node, fmt)) for node in nodes], dtype=np.float64)
