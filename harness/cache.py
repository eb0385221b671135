"""Symbolic results cached across runs: SymPy derivatives and limits, keyed by the expression.

Differentiating is the slow part of SymPy's work; a suite that did not change asks for the same
derivatives on every run. Each result is stored as a small file named by a hash of the question
(the expression, the symbols), in a subfolder named by a fingerprint of the format, SymPy's version
and the harness sources that define derivatives, so a changed catalogue or SymPy never reads an old
answer.

The encoding is the harness's own tree of whitelisted node types: nothing read from the cache is
evaluated or parsed as code. An answer is stored only when it decodes back to an expression equal
to the one SymPy computed, so a hit gives exactly what a miss would have: a cache never changes a
verdict.

Entries are authenticated and stored by harness.store (the HMAC, the key, the folder).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import sympy

from harness.catalogue import OPS
from harness.catalogue import markers as functions
from harness.store import MISS, default_folder, source_digest
from harness.store import Store as SealedStore
from harness.timing import stage

FORMAT = 2  # 2: authenticated entries (format 1's are not read)
_MAX_BITS = 12_000  # an integer of at most 3613 digits, under Python's int/str limit (4300)
_MAX_DIGITS = 4300
_MAX_ORDER = 64
_SOURCES = ("cache.py", "symbolic.py", "catalogue")  # files, or packages (every .py in them)


class Uncachable(Exception):
    """The expression holds something the encoding does not cover; compute, don't store."""


# ---------------------------------------------------------------- the encoding

_CONSTANTS: dict[str, sympy.Basic] = {
    "pi": sympy.pi, "E": sympy.E, "EulerGamma": sympy.EulerGamma, "Catalan": sympy.Catalan,
    "oo": sympy.oo, "-oo": sympy.S.NegativeInfinity, "nan": sympy.nan, "zoo": sympy.zoo,
    "true": sympy.true, "false": sympy.false, "I": sympy.I,
}
_CONSTANT_NAMES = {v: k for k, v in _CONSTANTS.items()}
_REAL = sympy.Symbol("_", real=True).assumptions0

_SYMPY_FUNCTIONS = (
    sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan, sympy.sec, sympy.csc, sympy.cot, sympy.sinh,
    sympy.cosh, sympy.tanh, sympy.sech, sympy.csch, sympy.coth, sympy.asin, sympy.acos, sympy.atan,
    sympy.asinh, sympy.acosh, sympy.atanh, sympy.atan2, sympy.Abs, sympy.sign, sympy.erf, sympy.erfc,
    sympy.erfinv, sympy.gamma, sympy.polygamma, sympy.besseli, sympy.floor, sympy.ceiling, sympy.Max,
    sympy.Min, sympy.Heaviside, sympy.DiracDelta,
)
_SYMPY_BY_NAME: dict[str, type] = {f"sympy.{c.__name__}": c for c in _SYMPY_FUNCTIONS}
_SYMPY_NAMES = {c: name for name, c in _SYMPY_BY_NAME.items()}


def _function_name(cls: type) -> str | None:
    """A function class's name in the encoding: SymPy's whitelisted functions, and every marker the
    catalogue defines (harness.catalogue.markers.MARKERS, read as it is: a marker is known once defined)."""
    if cls in _SYMPY_NAMES:
        return _SYMPY_NAMES[cls]
    return f"harness.{cls.__name__}" if functions.MARKERS.get(cls.__name__) is cls else None


def _function(name: object) -> type | None:
    if not isinstance(name, str):
        return None
    if name.startswith("harness."):
        return functions.MARKERS.get(name.removeprefix("harness."))
    return _SYMPY_BY_NAME.get(name)

_RELATIONS: dict[str, type] = {
    ">": sympy.StrictGreaterThan, ">=": sympy.GreaterThan, "<": sympy.StrictLessThan, "<=": sympy.LessThan,
    "==": sympy.Eq, "!=": sympy.Ne,
}
_RELATION_NAMES = {c: name for name, c in _RELATIONS.items()}


def encode(expr: sympy.Basic) -> list:
    """An expression as nested JSON lists; Uncachable if it holds anything else."""
    if isinstance(expr, sympy.Symbol):
        if expr.assumptions0 != _REAL:
            raise Uncachable(f"symbol {expr} with other assumptions")
        return ["s", expr.name]
    if expr in _CONSTANT_NAMES:
        return ["c", _CONSTANT_NAMES[expr]]
    if isinstance(expr, sympy.Rational):
        if max(abs(int(expr.p)), int(expr.q)).bit_length() > _MAX_BITS:
            raise Uncachable("an integer too long to store")
        if isinstance(expr, sympy.Integer):
            return ["i", str(int(expr))]
        return ["q", str(int(expr.p)), str(int(expr.q))]
    args = [encode(a) for a in expr.args]
    if isinstance(expr, sympy.Add):
        return ["+", *args]
    if isinstance(expr, sympy.Mul):
        return ["*", *args]
    if isinstance(expr, sympy.Pow):
        return ["^", *args]
    if isinstance(expr, sympy.Piecewise):
        return ["piecewise", *args]
    if isinstance(expr, sympy.functions.elementary.piecewise.ExprCondPair):
        return ["pair", *args]
    if type(expr) in _RELATION_NAMES:
        return ["rel", _RELATION_NAMES[type(expr)], *args]
    if isinstance(expr, sympy.And | sympy.Or):
        return ["and" if isinstance(expr, sympy.And) else "or", *args]
    if isinstance(expr, functions.OpFunction):
        return ["op", expr.op.name, list(expr.orders), *args]
    name = _function_name(type(expr))
    if name is not None:
        return ["f", name, *args]
    raise Uncachable(f"{type(expr).__name__} is not in the cache's vocabulary")


def decode(data: object) -> sympy.Basic:
    """The expression back, exactly as it was (nothing re-evaluated); ValueError if malformed."""
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise ValueError("malformed entry")
    tag, rest = data[0], data[1:]
    if tag == "s" and len(rest) == 1 and isinstance(rest[0], str):
        return sympy.Symbol(rest[0], real=True)
    if tag == "c" and len(rest) == 1 and rest[0] in _CONSTANTS:
        return _CONSTANTS[rest[0]]
    if tag == "i" and len(rest) == 1:
        return sympy.Integer(_integer(rest[0]))
    if tag == "q" and len(rest) == 2:
        return sympy.Rational(_integer(rest[0]), _integer(rest[1]))
    if tag == "op" and len(rest) >= 2 and isinstance(rest[0], str) and isinstance(rest[1], list):
        if rest[0] not in OPS or not all(type(o) is int and 0 <= o <= _MAX_ORDER for o in rest[1]):
            raise ValueError(f"unknown op {rest[0]!r} or bad orders")
        cls = functions.op_function(OPS[rest[0]], tuple(rest[1]))
        return cls(*(decode(a) for a in rest[2:]), evaluate=False)
    if tag == "rel" and len(rest) == 3 and rest[0] in _RELATIONS:
        return _RELATIONS[rest[0]](decode(rest[1]), decode(rest[2]), evaluate=False)
    function = _function(rest[0]) if tag == "f" and rest else None
    if function is not None:
        return function(*(decode(a) for a in rest[1:]), evaluate=False)
    builders: dict[str, Callable[..., sympy.Basic]] = {
        "+": sympy.Add, "*": sympy.Mul, "^": sympy.Pow, "piecewise": sympy.Piecewise,
        "pair": sympy.functions.elementary.piecewise.ExprCondPair, "and": sympy.And, "or": sympy.Or,
    }
    if tag in builders:
        args = [decode(a) for a in rest]
        if tag == "pair":
            return builders[tag](*args)
        return builders[tag](*args, evaluate=False)
    raise ValueError(f"unknown tag {tag!r}")


def _integer(text: object) -> int:
    if not isinstance(text, str) or len(text) > _MAX_DIGITS:
        raise ValueError("malformed integer")
    return int(text)


# ---------------------------------------------------------------- the store


def _fingerprint() -> str:
    digest = hashlib.sha256(f"format {FORMAT}; sympy {version('sympy')}".encode())
    digest.update(source_digest(*_SOURCES))
    return digest.hexdigest()[:20]


class Store(SealedStore):
    """SymPy answers on the authenticated store: encoded with the whitelist above, stored only when
    they decode back to what SymPy computed."""

    def __init__(self, folder: Path | None) -> None:
        super().__init__(folder, _fingerprint() if folder is not None else "")

    def answer(self, question: list, compute: Callable[[], sympy.Basic | None]) -> sympy.Basic | None:
        """The stored answer to `question`, or `compute()` (stored when it round-trips)."""
        if not self.enabled():
            return compute()
        text = json.dumps(question, separators=(",", ":"))
        stored = self._read(self.path(text), text)
        if stored is not MISS:
            self.hits += 1
            return stored  # type: ignore[return-value]
        self.misses += 1
        result = compute()
        try:
            encoded = None if result is None else encode(result)
            if encoded is not None and decode(encoded) != result:
                return result  # would not come back exactly: leave it out
        except (Uncachable, ValueError, RecursionError):
            return result
        self.write(text, encoded)
        return result

    def _read(self, path: Path, question: str) -> object:
        """The stored answer decoded (None: no value), or MISS for anything but a good entry."""
        answer = self.read(path, question)
        if answer is MISS:
            return MISS
        try:
            return None if answer is None else decode(answer)
        except Exception:  # sealed here yet not decodable (a bug): costs only a recomputation
            return MISS


STORE = Store(default_folder())


def use(folder: Path | None) -> None:
    """Point the cache at a folder (None: off) for the rest of this process."""
    global STORE
    STORE = Store(folder)


def diff(expr: sympy.Expr, *variables: sympy.Symbol) -> sympy.Expr:
    """sympy.diff(expr, *variables), from the cache when it has the answer."""
    with stage("symbolic"):
        try:
            question = ["diff", encode(expr), *(encode(v) for v in variables)]
        except (Uncachable, RecursionError):
            return sympy.diff(expr, *variables)
        return STORE.answer(question, lambda: sympy.diff(expr, *variables))  # type: ignore[return-value]


def simplify(expr: sympy.Expr) -> sympy.Expr:
    """sympy.simplify(expr), cached (the holomorphy verdicts of complex cases)."""
    with stage("symbolic"):
        try:
            question = ["simplify", encode(expr)]
        except (Uncachable, RecursionError):
            return sympy.simplify(expr)
        return STORE.answer(question, lambda: sympy.simplify(expr))  # type: ignore[return-value]


def limit(expr: sympy.Expr, variable: sympy.Symbol, point: sympy.Expr) -> sympy.Expr | None:
    """The limit at a point where the expression has no value, cached: a real number or +-oo. Both
    sides must agree, unless one side is outside the real domain (log at 0 from the left): then the
    other side's limit is the value (-oo). None when there is none (1/x at 0, digamma at 0)."""

    def side(direction: str) -> sympy.Expr | None:
        try:
            return sympy.limit(expr, variable, point, dir=direction)
        except (NotImplementedError, ValueError, TypeError):
            return None

    def real(value: sympy.Expr | None) -> bool:
        return value is not None and value.is_extended_real is True

    def compute() -> sympy.Expr | None:
        right, left = side("+"), side("-")
        if real(right) and real(left):
            return right if right == left else None
        if real(right) != real(left) and (left if real(right) else right) is not None:
            inside = right if real(right) else left
            outside = left if real(right) else right
            return inside if outside.has(sympy.I) or outside.is_extended_real is False else None
        return None

    with stage("symbolic"):
        try:
            question = ["limit-extended", encode(expr), encode(variable), encode(point)]
        except (Uncachable, RecursionError):
            return compute()
        return STORE.answer(question, compute)
