"""Tree to SymPy: the exact value of each output element, and its derivatives.

Two forms of every output are built from the one tree. `tree` is unevaluated: it mirrors the
operations torch performs, so the error model can see which terms torch adds and cancels. `expr`
is SymPy's evaluated form, which is what gets differentiated.

Elementwise expressions are built once over one scalar symbol per input, so the symbolic work is
independent of the number of elements: element k of the output binds each input's symbol to that
input's element at k (numpy broadcasting). Other expressions (reductions, matmul, indexing) are
built over one symbol per input element, within a size limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np
import sympy

from harness import cache
from harness.catalogue import ELEMENTWISE, OPS, Condition, Op, Predicate, Structural, Where, lead_to_keywords, resolve
from harness.catalogue.markers import KinkFunction, OpFunction, as_sympy
from harness.errors import HarnessError
from harness.expr import Call, Const, Index, Name, Node, Num, Seq, is_elementwise, names_in
from harness.timing import stage

MAX_GENERAL_ELEMENTS = 256

Variable = tuple[str, int]  # (input name, flat element index)


@dataclass(frozen=True)
class Term:
    """One exact scalar: its unevaluated tree (for the error model) and evaluated expression."""

    tree: sympy.Expr
    expr: sympy.Expr


@dataclass(frozen=True, eq=False)
class SymbolicOutput:
    """One named output: exact expressions for every element and their derivatives."""

    name: str
    shape: tuple[int, ...]
    elementwise: bool
    input_shapes: dict[str, tuple[int, ...]]
    symbols: dict[sympy.Symbol, Variable | str]  # elementwise: symbol -> input; else -> element
    terms: tuple[Term, ...]  # one per element (elementwise: a single shared term)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def term(self, k: int) -> Term:
        return self.terms[0 if self.elementwise else k]

    def binding(self, k: int) -> dict[sympy.Symbol, Variable]:
        """Which input element each free symbol of element k stands for."""
        if not self.elementwise:
            return self.symbols  # type: ignore[return-value]
        return {s: (name, int(self._sources[name][k])) for s, name in self.symbols.items()}  # type: ignore[index]

    def variables(self) -> dict[sympy.Symbol, list[Variable]]:
        """Elementwise: for each symbol, the input element it stands for at every output element."""
        return {s: [(name, int(i)) for i in self._sources[name]] for s, name in self.symbols.items()}  # type: ignore[index]

    def sources(self, inputs: dict[str, list]) -> dict[sympy.Symbol, list]:
        """Elementwise: for each symbol, its input's value at every output element (broadcast)."""
        return {s: [inputs[name][i] for i in self._sources[name]] for s, name in self.symbols.items()}  # type: ignore[index]

    @cached_property
    def _sources(self) -> dict[str, np.ndarray]:
        out = {}
        for name, shape in self.input_shapes.items():
            idx = np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)
            out[name] = np.broadcast_to(idx, self.shape).ravel()
        return out

    def gradient(self, k: int) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        """Nonzero first partial derivatives of element k, by symbol."""
        key = ("d1", 0 if self.elementwise else k)
        if key not in self._cache:
            with stage("symbolic"):
                self._cache[key] = self._gradient(k)
        return self._cache[key]

    def _gradient(self, k: int) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        expr = self.term(k).expr
        symbols = [s for s in self.symbols if s in expr.free_symbols]
        parts = ((s, cache.diff(expr, s)) for s in symbols)
        return tuple((s, d) for s, d in parts if d != 0)

    def hessian(self, k: int) -> tuple[tuple[sympy.Symbol, sympy.Symbol, sympy.Expr], ...]:
        """Nonzero second partial derivatives of element k, upper triangle by symbol order."""
        key = ("d2", 0 if self.elementwise else k)
        if key not in self._cache:
            with stage("symbolic"):
                self._cache[key] = self._hessian(k)
        return self._cache[key]

    def _hessian(self, k: int) -> tuple[tuple[sympy.Symbol, sympy.Symbol, sympy.Expr], ...]:
        order = {s: i for i, s in enumerate(self.symbols)}
        entries = []
        for s, first in self.gradient(k):
            for t in sorted(first.free_symbols & set(self.symbols), key=order.__getitem__):
                if order[t] >= order[s]:
                    second = cache.diff(first, t)
                    if second != 0:
                        entries.append((s, t, second))
        return tuple(entries)


def broadcast(shapes: dict[str, tuple[int, ...]], output: str) -> tuple[int, ...]:
    """The shape elementwise ops give inputs of these shapes, as torch broadcasts them; inputs that
    do not broadcast are named in the error (not NumPy's 'arg 0')."""
    try:
        return tuple(np.broadcast_shapes(*shapes.values())) if shapes else ()
    except ValueError:
        shown = ", ".join(f"{n} (shape {list(s)})" for n, s in shapes.items())
        raise HarnessError(f"output {output!r}: inputs {shown} do not broadcast together (trailing dimensions"
                           " must be equal or 1)") from None


def build_output(name: str, tree: Node, input_shapes: dict[str, tuple[int, ...]],
                 constants: dict[str, Fraction]) -> SymbolicOutput:
    """Build one output from a folded tree (all literals already rounded to the dtype)."""
    names = names_in(tree)  # one walk of the tree, not one per input
    used = {n: s for n, s in input_shapes.items() if n in names}
    if is_elementwise(tree, ELEMENTWISE):
        symbols = {n: sympy.Symbol(n, real=True) for n in used}
        env = {**{n: (s, s) for n, s in symbols.items()}, **_constant_env(constants)}
        shape = broadcast(used, name)
        tree_form, expr_form = _Builder(env, elementwise=True).build(tree)
        return SymbolicOutput(name, shape, True, used, {s: n for n, s in symbols.items()},
                              (Term(tree_form, expr_form),))
    total = sum(int(np.prod(s, dtype=np.int64)) for s in used.values())
    if total > MAX_GENERAL_ELEMENTS:
        raise HarnessError(f"output {name!r} is not elementwise and its inputs have {total} elements"
                           f" (limit {MAX_GENERAL_ELEMENTS} for reductions, matmul and indexing)")
    element_symbols: dict[sympy.Symbol, Variable] = {}
    env: dict[str, tuple] = _constant_env(constants)
    for n, shape in used.items():
        arr = np.empty(shape, dtype=object)
        for flat, index in enumerate(np.ndindex(*shape)):
            label = n if not shape else f"{n}[{','.join(map(str, index))}]"
            arr[index] = sympy.Symbol(label, real=True)
            element_symbols[arr[index]] = (n, flat)
        env[n] = (arr, arr)
    tree_form, expr_form = _Builder(env, elementwise=False).build(tree)
    tree_arr, expr_arr = np.asarray(tree_form, dtype=object), np.asarray(expr_form, dtype=object)
    if tree_arr.size > MAX_GENERAL_ELEMENTS:
        raise HarnessError(f"output {name!r} has {tree_arr.size} elements (limit {MAX_GENERAL_ELEMENTS})")
    terms = tuple(Term(as_sympy(t), as_sympy(e)) for t, e in zip(tree_arr.ravel(), expr_arr.ravel()))
    return SymbolicOutput(name, tree_arr.shape, False, used, element_symbols, terms)  # type: ignore[arg-type]


def _constant_env(constants: dict[str, Fraction]) -> dict[str, tuple]:
    return {n: (sympy.Rational(v.numerator, v.denominator),) * 2 for n, v in constants.items()}


class _Builder:
    """Builds (unevaluated tree, evaluated expr) pairs; values are SymPy scalars or object arrays."""

    def __init__(self, env: dict[str, tuple], elementwise: bool) -> None:
        self.env, self.elementwise = env, elementwise

    def build(self, node: Node) -> tuple:
        if isinstance(node, Num):
            value = sympy.Rational(node.value.numerator, node.value.denominator)
            return value, value
        if isinstance(node, Const):
            raise AssertionError("constants are folded before symbolic building")
        if isinstance(node, Name):
            return self.env[node.id]
        if isinstance(node, Index):
            tree, expr = self.build(node.value)
            return _index(tree, node.items), _index(expr, node.items)
        return self._call(node)

    def _call(self, node: Call) -> tuple:
        node = lead_to_keywords(node)
        op, kw = resolve(node.op, node.keywords)
        if len(node.args) != op.arity:
            raise HarnessError(f"{node.op}() takes {op.arity} argument{'s' * (op.arity > 1)},"
                               f" got {len(node.args)}")
        if isinstance(op, Predicate):
            op.apply((), kw)  # refuses: a comparison is only a where's condition
        if isinstance(op, Where):
            return self._where(op, node)
        built = [self._argument(a) for a in node.args]
        trees, exprs = [b[0] for b in built], [b[1] for b in built]
        if isinstance(op, Structural):
            return op.apply(trees, kw, False), op.apply(exprs, kw, True)
        return _map(_elementwise(op, kw, False), trees), _map(_elementwise(op, kw, True), exprs)

    def _argument(self, node: Node) -> tuple:
        if isinstance(node, Seq):
            items = [self.build(item) for item in node.items]
            return [t for t, _ in items], [e for _, e in items]
        return self.build(node)

    def _where(self, where: Where, node: Call) -> tuple:
        condition = node.args[0]
        predicate = OPS.get(condition.op) if isinstance(condition, Call) else None
        if not isinstance(predicate, Predicate):
            raise HarnessError("where(...) needs a comparison as its condition, as where(x > 0, a, b)")
        (lt, le), (rt, re_) = (self.build(a) for a in condition.args)
        (at, ae), (bt, be) = self.build(node.args[1]), self.build(node.args[2])

        def pick(evaluate: bool) -> Callable[..., sympy.Expr]:
            def one(left: sympy.Expr, right: sympy.Expr, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
                return where.apply((Condition(predicate, left, right), a, b), (), evaluate)

            return one

        return _map(pick(False), [lt, rt, at, bt]), _map(pick(True), [le, re_, ae, be])


def _elementwise(op: Op, keywords: tuple, evaluate: bool) -> Callable[..., sympy.Expr]:
    return lambda *args: op.apply(args, keywords, evaluate)


def _map(fn: Callable[..., sympy.Expr], args: list) -> object:
    if not any(isinstance(a, np.ndarray) for a in args):
        return fn(*args)
    try:
        arrays = np.broadcast_arrays(*[np.asarray(a, dtype=object) for a in args])
    except ValueError:
        shapes = " and ".join(str(list(np.shape(a))) for a in args)
        raise HarnessError(f"operands of shapes {shapes} do not broadcast together") from None
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = fn(*(a[index] for a in arrays))
    return out


def _index(value: object, items: tuple) -> object:
    arr = np.asarray(value, dtype=object)
    key = tuple(slice(*i) if isinstance(i, tuple) else i for i in items)
    for k in key:
        if isinstance(k, slice) and k.step is not None and k.step <= 0:
            raise HarnessError("slice steps must be positive (torch has no negative steps)")
    try:
        result = arr[key]
    except IndexError as exc:
        raise HarnessError(f"bad index {list(items)} for shape {list(arr.shape)}: {exc}") from None
    if isinstance(result, np.ndarray):
        return result if result.ndim else result.item()
    return result


@functools.cache
def closed_body(cls: type[OpFunction]) -> tuple[tuple[sympy.Symbol, ...], sympy.Expr]:
    """The catalogue's closed form of an atomic op (or its partial derivative), over symbols a0, a1..."""
    syms = sympy.symbols(f"a0:{cls.n_args}", real=True)
    body = cls.op.definition(*syms)
    for i, order in enumerate(cls.orders):
        if order:
            body = cache.diff(body, *[syms[i]] * order)
    return syms, body


def expand_ops(expr: sympy.Expr) -> sympy.Expr:
    """Replace atomic catalogue functions by their closed forms (kink markers stay)."""

    def expand(f: OpFunction) -> sympy.Expr:
        syms, body = closed_body(type(f))
        return body.subs(dict(zip(syms, f.args)))

    return expr.replace(lambda e: isinstance(e, OpFunction), expand)


def closed(expr: sympy.Expr) -> sympy.Expr:
    """Replace atomic catalogue functions by their closed forms (for people, not for evaluation)."""

    def marker(k: KinkFunction) -> sympy.Expr:
        x = k.args[0]
        return {"kink_step": sympy.Heaviside(x), "kink_sign": sympy.sign(x)}.get(type(k).__name__, sympy.S.Zero)

    return expand_ops(expr).replace(lambda e: isinstance(e, KinkFunction), marker)
