"""Public Hypothesis strategies: expressions from the op catalogue, points in their domain, cases.

Usable from a user's own tests::

    from hypothesis import given
    from harness.strategies import cases
    from harness.run import check_case

    @given(cases(ops=["exp", "tanh", "mul"], max_depth=3))
    def test_no_false_alarm(case):
        assert all(r.status != "fail" for r in check_case(case))

Arguments are keyword-only and validated when the strategy is built.
"""

from __future__ import annotations

import math
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from functools import lru_cache

import yaml
from hypothesis import assume
from hypothesis import strategies as st

from harness.cases import Case, load_text
from harness.catalogue import OPS, Arithmetic, Elementwise
from harness.errors import CaseTimeout, HarnessError
from harness.expr import Call, Name, Node, Num, names_in, transform, unparse, walk
from harness.limits import memory_limit, time_limit
from harness.numbers import FORMATS, round_to_format
from harness.registry import fuzzed

ACCURATE_OPS: tuple[str, ...] = (
    "add", "sub", "mul", "div", "neg", "square", "exp", "log", "log1p", "sqrt", "sin", "cos",
    "atan", "asinh", "erf", "relu", "abs",
)
"""Ops whose torch kernels and derivative formulas meet the default tolerances at moderate inputs.

maximum/minimum are left out: their forward-mode formula t_b + mask*(t_a - t_b) loses digits;
tanh, sigmoid and expm1 too: their backward formulas 1 - y^2, y*(1 - y) and y + 1 cancel, already
by 60 ulps at tanh'(3) in float32 (see README, "Findings"); fuzz them with ops=[...] to see it."""

CHECKS = fuzzed("real")  # harness.registry: the checks fuzzing draws
_CONSTANTS = (Fraction(1), Fraction(2), Fraction(1, 2), Fraction(3), Fraction(-1), Fraction(1, 10))
_EDGES = (0.0, 1.0, -1.0, 0.5, -0.5, 1e-8, -1e-8, 3.0, -3.0, 20.0, -20.0)
_TINY = {"float64": (1e-30, -1e-30, 1e-150), "float32": (1e-6, -1e-6),  # small, but squares stay normal
         "bfloat16": (1e-6, -1e-6), "float16": (1e-2, -1e-2)}


def _check_ops(ops: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(ops) if ops is not None else ACCURATE_OPS
    if not chosen:
        raise HarnessError("ops= must name at least one op")
    for name in chosen:
        op = OPS.get(name)
        if op is None:
            raise HarnessError(f"ops= has unknown op {name!r}")
        if not isinstance(op, Arithmetic | Elementwise) or op.leading or op.arity not in (1, 2):
            raise HarnessError(f"ops= takes elementwise ops of one or two inputs, not {name!r}")
    return chosen


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HarnessError(f"{name}= must be a whole number from {low} to {high}, got {value!r}")


def _check_inputs(inputs: Sequence[str]) -> tuple[str, ...]:
    names = tuple(inputs)
    if not names or any(not n.isidentifier() or n in OPS for n in names) or len(set(names)) != len(names):
        raise HarnessError(f"inputs= must be distinct identifiers that are not op names, got {list(inputs)!r}")
    return names


def expressions(*, ops: Sequence[str] | None = None, max_depth: int = 3,
                inputs: Sequence[str] = ("x",)) -> st.SearchStrategy[Node]:
    """Expression trees over `inputs` built from catalogue ops, at most `max_depth` calls deep.

    Every input appears at least once (with one-input ops only, a tree has one leaf: the first
    input). Shrinking goes towards fewer calls and plainer leaves.
    """
    chosen, names = _check_ops(ops), _check_inputs(inputs)
    _check_int("max_depth", max_depth, 1, 8)
    return _trees(names, [n for n in chosen if OPS[n].arity == 1], [n for n in chosen if OPS[n].arity == 2],
                  max_depth)


def _trees(names: tuple[str, ...], unary: list[str], binary: list[str], max_depth: int) -> st.SearchStrategy[Node]:
    if not binary:  # a chain of one-input calls has a single leaf
        names = names[:1]
    elif len(names) > 2**max_depth:
        raise HarnessError(f"{len(names)} inputs do not fit in a tree {max_depth} calls deep")
    leaves = st.one_of(st.sampled_from([Name(n) for n in names]), st.sampled_from([Num(c) for c in _CONSTANTS]))

    def at_most(depth: int) -> st.SearchStrategy[Node]:  # calls nest at most `depth` deep, by construction
        if depth == 0:
            return leaves
        children = at_most(depth - 1)
        options = [leaves]
        if unary:
            options.append(st.builds(_unary, st.sampled_from(unary), children))
        if binary:
            options.append(st.builds(lambda op, a, b: Call(op, (a, b)), st.sampled_from(binary), children, children))
        return st.one_of(options)

    # a tree that leaves an input out gets it in place of a constant or a repeated input (only a
    # tree with too few leaves for every input is drawn again)
    return at_most(max_depth).map(lambda t: _with_names(t, names)).filter(lambda t: names_in(t) >= set(names))


def _with_names(tree: Node, names: tuple[str, ...]) -> Node:
    missing = [n for n in names if n not in names_in(tree)]
    if not missing:
        return tree
    uses = Counter(n.id for n in walk(tree) if isinstance(n, Name))

    def swap(node: Node) -> Node | None:  # the leaves left to right, as many as inputs are missing
        if missing and (isinstance(node, Num) or (isinstance(node, Name) and uses.get(node.id, 0) > 1)):
            if isinstance(node, Name):
                uses[node.id] -= 1
            return Name(missing.pop(0))
        return None

    return transform(tree, swap)


def _unary(op: str, a: Node) -> Node:
    """As the parser reads it: minus a literal is a negative literal."""
    return Num(-a.value) if op == "neg" and isinstance(a, Num) else Call(op, (a,))


LimitHook = Callable[[str], None]
"""Told "timeout" or "memory" when the domain check of a drawn point ran past its limit."""


@st.composite
def _point(draw: st.DrawFn, names: tuple[str, ...], dtype: str, low: float, high: float,
           edge_probability: float, min_magnitude: float) -> dict[str, float]:
    fmt = FORMATS[dtype]
    out = {}
    for name in names:
        if draw(st.floats(0, 1)) < edge_probability:
            value = draw(st.sampled_from(_EDGES + _TINY[dtype]))
        else:
            value = draw(st.floats(low, high, allow_nan=False, allow_infinity=False).filter(
                lambda v: v == 0 or abs(v) >= min_magnitude))
        out[name] = float(round_to_format(Fraction(value), fmt))
    return out


def points(expr: Node, *, dtype: str = "float64", min_value: float = -10.0, max_value: float = 10.0,
           edge_probability: float = 0.15, min_magnitude: float = 0.0, timeout: float = 10.0,
           memory_mb: float = 0.0, on_limit: LimitHook | None = None) -> st.SearchStrategy[dict[str, float]]:
    """Input values (exact in `dtype`) where the expression and its first derivatives are defined.

    With probability `edge_probability` an input is an edge value (0, +-1, +-tiny, +-20, ...);
    other values are 0 or at least `min_magnitude` in size. The exact domain check of one point
    may take `timeout` seconds and `memory_mb` MB more memory (0: no limit); a point past either
    is not used (and `on_limit` is told which limit).
    """
    if dtype not in FORMATS:
        raise HarnessError(f"dtype= must be one of {', '.join(FORMATS)}, got {dtype!r}")
    if not (math.isfinite(min_value) and math.isfinite(max_value) and min_value < max_value):
        raise HarnessError(f"need finite min_value < max_value, got {min_value!r}, {max_value!r}")
    if not 0 <= edge_probability <= 1:
        raise HarnessError(f"edge_probability= must be in [0, 1], got {edge_probability!r}")
    if not 0 <= min_magnitude < max(abs(min_value), abs(max_value)):
        raise HarnessError(f"min_magnitude= must be >= 0 and inside the range, got {min_magnitude!r}")
    if not (timeout >= 0 and memory_mb >= 0):
        raise HarnessError(f"timeout= and memory_mb= must be >= 0, got {timeout!r}, {memory_mb!r}")
    names = tuple(sorted(names_in(expr)))

    def usable(values: dict[str, float]) -> bool:
        verdict = _domain(unparse(expr), tuple(sorted(values.items())), dtype, timeout, memory_mb)
        if isinstance(verdict, str) and on_limit is not None:
            on_limit(verdict)
        return verdict is True

    return _point(names, dtype, min_value, max_value, edge_probability, min_magnitude).filter(usable)


def complex_points(*, dtype: str = "complex128", max_modulus: float = 10.0,
                   min_part: float = 1e-3) -> st.SearchStrategy[complex]:
    """Genuinely complex points: both parts nonzero (at least `min_part` in size), the modulus at
    most `max_modulus`, each part exact in the dtype's part format (complex64: float32)."""
    from harness.cases import COMPLEX_DTYPES

    if dtype not in COMPLEX_DTYPES:
        raise HarnessError(f"dtype= must be complex64 or complex128, got {dtype!r}")
    if not 0 < min_part < max_modulus / 2:
        raise HarnessError(f"need 0 < min_part < max_modulus / 2, got {min_part!r}, {max_modulus!r}")
    fmt = FORMATS[COMPLEX_DTYPES[dtype]]
    bound = max_modulus / math.sqrt(2)
    part = st.floats(min_part, bound, allow_nan=False, allow_infinity=False)
    sign = st.sampled_from((1.0, -1.0))

    def exact(v: float) -> float:
        return float(round_to_format(Fraction(v), fmt))

    return st.builds(lambda a, sa, b, sb: complex(exact(sa * a), exact(sb * b)), part, sign, part, sign)


def defined(expr: Node, values: dict[str, float], dtype: str, *, timeout: float = 10.0,
            memory_mb: float = 0.0) -> bool:
    """Whether the exact value and first derivatives are finite reals at these inputs (False
    where finding out takes more than `timeout` seconds or `memory_mb` MB)."""
    return _domain(unparse(expr), tuple(sorted(values.items())), dtype, timeout, memory_mb) is True


@lru_cache(maxsize=4096)
def _domain(text: str, values: tuple[tuple[str, float], ...], dtype: str, timeout: float,
            memory_mb: float) -> bool | str:
    """`_defined` under the limits: its verdict, or "timeout" / "memory" past one (remembered, so
    shrinking does not wait for the same point again)."""
    try:
        with _limits(timeout, memory_mb):
            return _defined(text, values, dtype)
    except CaseTimeout:
        return "timeout"
    except MemoryError:
        return "memory"


@contextmanager
def _limits(seconds: float, megabytes: float) -> Iterator[None]:
    """time_limit and memory_limit; no alarm of its own inside one already set (an outer limit,
    pytest-timeout), which time_limit would cancel."""
    armed = hasattr(signal, "getitimer") and signal.getitimer(signal.ITIMER_REAL)[0] > 0
    with time_limit(0 if armed else seconds), memory_limit(megabytes):
        yield


def _defined(text: str, values: tuple[tuple[str, float], ...], dtype: str) -> bool:
    """The domain check itself, with no limit: the balls decide it, so the reference skips the
    allowances (conditioning, term magnitudes) that only widen tolerances."""
    import numpy as np

    from harness.balls import finite
    from harness.expr import parse
    from harness.reference import PointReference, evaluate_certified, fold
    from harness.symbolic import build_output

    fmt = FORMATS[dtype]
    names = {n for n, _ in values}
    try:
        tree = fold(parse(text, ops=set(OPS), names=names), fmt, {})
        out = {"y": build_output("y", tree, {n: () for n in names}, {})}
        exact = {n: np.array(Fraction(v), dtype=object).reshape(()) for n, v in values}
        results, _, _ = evaluate_certified(
            lambda ref: ref.values("y") + [d for row in ref.firsts("y") for _, d in row],
            lambda bits, final: PointReference(out, exact, fmt, bits, final, allowances=False), fmt)
    except (HarnessError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return False  # the reference cannot evaluate it here: not a usable point
    return not any(r.undefined or not finite(r.ball) for r in results)  # a pole's inf is no usable point


def case_yaml(name: str, expr: Node, point_list: Sequence[dict[str, float | complex]], *, dtype: str,
              checks: Sequence[str], doc: str = "", xfail: str | None = None) -> str:
    """A case file (YAML text) for this expression and these points; `harness run` replays it."""
    names = sorted(names_in(expr))

    def shown(v: float | complex) -> float | dict[str, float]:
        return {"re": v.real, "im": v.imag} if isinstance(v, complex) else v

    document = {"name": name, "doc": doc or "found by harness fuzz", "dtype": dtype,
                "inputs": {n: {"points": [shown(p[n]) for p in point_list]} for n in names},
                "expr": unparse(expr), "checks": list(checks)}
    if xfail is not None:
        document["xfail"] = xfail
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def cases(*, ops: Sequence[str] | None = None, max_depth: int = 3, inputs: Sequence[str] = ("x",),
          dtypes: Sequence[str] = ("float32", "float64"), checks: Sequence[str] = CHECKS,
          max_points: int = 2, min_value: float = -10.0, max_value: float = 10.0,
          edge_probability: float = 0.15, min_magnitude: float = 0.0, timeout: float = 10.0,
          memory_mb: float = 0.0, on_limit: LimitHook | None = None) -> st.SearchStrategy[Case]:
    """Whole cases: an expression, points in its domain, one dtype, the checks; loaded from YAML.
    `timeout`, `memory_mb` and `on_limit` bound each point's domain check (see `points`)."""
    names = _check_case_args(inputs, dtypes, tuple(FORMATS), checks, CHECKS, max_points)
    trees = expressions(ops=ops, max_depth=max_depth, inputs=names)

    def point(expr: Node, dtype: str = "float64") -> st.SearchStrategy[dict[str, float | complex]]:
        return points(expr, dtype=dtype, min_value=min_value, max_value=max_value,  # type: ignore[return-value]
                      edge_probability=edge_probability, min_magnitude=min_magnitude, timeout=timeout,
                      memory_mb=memory_mb, on_limit=on_limit)

    point(Num(Fraction(0)))  # validates the range and limits now

    return _cases(trees, dtypes, checks, max_points, point)


def _check_case_args(inputs: Sequence[str], dtypes: Sequence[str], known_dtypes: Sequence[str],
                     checks: Sequence[str], known_checks: Sequence[str], max_points: int) -> tuple[str, ...]:
    for dtype in dtypes:
        if dtype not in known_dtypes:
            raise HarnessError(f"dtypes= takes {', '.join(known_dtypes)}, got {dtype!r}")
    kind = "complex" if known_checks == COMPLEX_CHECKS else "real"
    for check in checks or [None]:  # (none named: said as one not drawn)
        if check not in known_checks:
            got = f"got {check!r}" if check is not None else "none was named"
            raise HarnessError(f"the checks fuzzing draws for {kind} dtypes are {', '.join(known_checks)}; {got}")
    _check_int("max_points", max_points, 1, 16)
    return _check_inputs(inputs)


def _cases(trees: st.SearchStrategy[Node], dtypes: Sequence[str], checks: Sequence[str], max_points: int,
           point: Callable[[Node, str], st.SearchStrategy[dict[str, float | complex]]]) -> st.SearchStrategy[Case]:
    """An expression, one dtype, 1 to max_points points: a case file's text, loaded."""

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        expr = draw(trees)
        dtype = draw(st.sampled_from(list(dtypes)))
        point_list = [draw(point(expr, dtype)) for _ in range(draw(st.integers(1, max_points)))]
        loaded = load_text(case_yaml("fuzz", expr, point_list, dtype=dtype, checks=checks), "<fuzz>")
        assume(len(loaded) == 1 and isinstance(loaded[0], Case))
        return loaded[0]  # type: ignore[return-value]

    return build()


# ---------------------------------------------------------------- complex inputs

COMPLEX_OPS = ("exp", "log", "sqrt", "sin", "cos", "square", "reciprocal", "sgn", "conj", "abs", "angle",
               "add", "sub", "mul", "div")
COMPLEX_CHECKS = fuzzed("complex")


def complex_expressions(*, ops: Sequence[str] | None = None, max_depth: int = 3,
                        inputs: Sequence[str] = ("z",)) -> st.SearchStrategy[Node]:
    """Expression trees over complex inputs from the ops with complex semantics (harness.complex)."""
    from harness.complex import OPS as CX

    chosen, names = tuple(ops) if ops is not None else COMPLEX_OPS, _check_inputs(inputs)
    unknown = [o for o in chosen if o not in CX]
    if unknown or not chosen:
        raise HarnessError(f"ops= takes ops with complex semantics ({', '.join(sorted(CX))}), got {unknown or 'none'}")
    _check_int("max_depth", max_depth, 1, 8)
    return _trees(names, [n for n in chosen if CX[n].arity == 1], [n for n in chosen if CX[n].arity == 2],
                  max_depth)


def complex_cases(*, ops: Sequence[str] | None = None, max_depth: int = 3, inputs: Sequence[str] = ("z",),
                  dtypes: Sequence[str] = ("complex64", "complex128"), checks: Sequence[str] = COMPLEX_CHECKS,
                  max_points: int = 2, max_modulus: float = 4.0) -> st.SearchStrategy[Case]:
    """Whole complex cases: an expression, genuinely complex points, one dtype, the checks."""
    from harness.cases import COMPLEX_DTYPES

    names = _check_case_args(inputs, dtypes, tuple(COMPLEX_DTYPES), checks, COMPLEX_CHECKS, max_points)
    trees = complex_expressions(ops=ops, max_depth=max_depth, inputs=names)
    complex_points(max_modulus=max_modulus)  # validates the range now

    def point(expr: Node, dtype: str) -> st.SearchStrategy[dict[str, float | complex]]:
        return st.fixed_dictionaries({n: complex_points(dtype=dtype, max_modulus=max_modulus) for n in names})

    return _cases(trees, dtypes, checks, max_points, point)
