"""The safe expression parser and the harness's own expression tree.

Case text is untrusted. It is parsed by Python's `ast` into a whitelisted set of node kinds and
turned into the small tree below; nothing is ever evaluated, and names and operators resolve only
to the op catalogue, the case's inputs and its constants. One tree is later read by two
interpreters: `symbolic` (exact SymPy) and `autodiff` (the real torch ops).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from harness.errors import HarnessError
from harness.numbers import MAX_LITERAL_DIGITS, LiteralError, read_literal

MAX_TEXT = 10_000
MAX_NODES = 2_000
MAX_DEPTH = 64
MAX_INT_EXPONENT = 1_024
NAMED_CONSTANTS = ("pi", "e")


@dataclass(frozen=True)
class Num:
    """An exact literal: `0.1` is the decimal one-tenth. An input's value may also be the float
    -0.0, inf or -inf (only inputs: an expression's numbers are exact)."""

    value: Fraction | float


@dataclass(frozen=True)
class Const:
    """A named mathematical constant (`pi`, `e`)."""

    name: str


@dataclass(frozen=True)
class Name:
    """An input or a case constant, resolved by the interpreters."""

    id: str


@dataclass(frozen=True)
class Call:
    """A catalogue op applied to arguments; keywords are exact numbers or short strings."""

    op: str
    args: tuple[Node, ...]
    keywords: tuple[tuple[str, Fraction | str], ...] = ()


@dataclass(frozen=True)
class Seq:
    """A list argument: the tensors of cat/stack, or the integers of a shape."""

    items: tuple[Node, ...]


IndexItem = int | tuple[int | None, int | None, int | None] | None  # int, slice, or newaxis


@dataclass(frozen=True)
class Index:
    """Basic (numpy-style) indexing with constant integers and slices."""

    value: Node
    items: tuple[IndexItem, ...]


Node = Num | Const | Name | Call | Index | Seq

BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
          ast.MatMult: "matmul"}
COMPARE = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne"}
MAX_KEYWORD_TEXT = 32


def parse(text: str, *, ops: set[str], names: set[str]) -> Node:
    """Parse case text into a tree. Raises HarnessError naming what is wrong.

    `ops` are the catalogue's op names (dotted names such as `special.erf` allowed);
    `names` the inputs and constants the text may use.
    """
    if not isinstance(text, str):
        raise HarnessError(f"an expression must be a string, got {text!r}")
    if len(text) > MAX_TEXT:
        raise HarnessError(f"expression is {len(text)} characters long (limit {MAX_TEXT})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        if "integer string conversion" in exc.msg:
            raise HarnessError(f"expression {_clip(text)} has a number of more than {MAX_LITERAL_DIGITS} digits")\
                from None
        raise HarnessError(f"invalid expression {_clip(text)}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise HarnessError(f"expression {_clip(text)} is too deeply nested") from None
    return _Converter(text.strip(), ops, names).convert(tree.body, 0)


def _clip(text: str) -> str:
    """Expression text as a message quotes it: its first and last characters."""
    text = text.strip()
    return repr(text if len(text) <= 60 else f"{text[:40]}...{text[-12:]}")


def did_you_mean(word: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Converter:
    def __init__(self, source: str, ops: set[str], names: set[str]) -> None:
        self.source, self.ops, self.names, self.count = source, ops, names, 0

    def convert(self, node: ast.AST, depth: int) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise HarnessError(f"expression has more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise HarnessError(f"expression is nested deeper than {MAX_DEPTH}")
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise HarnessError(f"{_describe(node)} is not allowed in an expression")
        return handler(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> Node:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise HarnessError(f"only numbers are allowed as literals, not {node.value!r}")
        segment = ast.get_source_segment(self.source, node) or repr(node.value)
        try:
            return Num(read_literal(segment))
        except LiteralError as exc:
            raise HarnessError(str(exc)) from None

    def _Name(self, node: ast.Name, depth: int) -> Node:
        if node.id.startswith("__"):
            raise HarnessError(f"name {node.id!r} is not allowed")
        if node.id in self.names:
            return Name(node.id)
        if node.id in NAMED_CONSTANTS:
            return Const(node.id)
        if node.id in self.ops:
            raise HarnessError(f"op {node.id!r} must be called, as {node.id}(...)")
        known = self.names | set(NAMED_CONSTANTS)
        raise HarnessError(f"unknown name {node.id!r}{did_you_mean(node.id, known)}")

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        operand = self.convert(node.operand, depth)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            if isinstance(operand, Num):
                return Num(-operand.value)
            return Call("neg", (operand,))
        raise HarnessError(f"operator {_describe(node.op)} is not allowed")

    def _BinOp(self, node: ast.BinOp, depth: int) -> Node:
        op = BINARY.get(type(node.op))
        if op is None:
            raise HarnessError(f"operator {_describe(node.op)} is not allowed")
        left, right = self.convert(node.left, depth), self.convert(node.right, depth)
        if op == "pow":
            _check_exponent(right)
        return Call(op, (left, right))

    def _Call(self, node: ast.Call, depth: int) -> Node:
        name = _dotted(node.func)
        if isinstance(node.func, ast.Name) and node.func.id.startswith("__"):
            raise HarnessError(f"name {node.func.id!r} is not allowed")
        if name is None:
            raise HarnessError(f"{_describe(node.func)} cannot be called; call an op by name")
        if name not in self.ops:
            raise HarnessError(f"unknown op {name!r}{did_you_mean(name, self.ops)}")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise HarnessError("starred arguments are not allowed")
        args = tuple(self._argument(name, i, a, depth) for i, a in enumerate(node.args))
        keywords = tuple((kw.arg or "**", self._keyword_value(name, kw, depth)) for kw in node.keywords)
        if name == "pow" and len(args) == 2:
            _check_exponent(args[1])
        return Call(name, args, keywords)

    def _argument(self, op: str, index: int, node: ast.AST, depth: int) -> Node:
        if isinstance(node, ast.List | ast.Tuple):
            return Seq(tuple(self.convert(item, depth) for item in node.elts))
        if isinstance(node, ast.Compare):
            if op != "where" or index != 0:
                raise HarnessError("a comparison is only allowed as the condition of where(...)")
            if len(node.ops) != 1:
                raise HarnessError("chained comparisons are not allowed; use one comparison")
            kind = COMPARE.get(type(node.ops[0]))
            if kind is None:
                raise HarnessError(f"comparison {_describe(node.ops[0])} is not allowed")
            return Call(kind, (self.convert(node.left, depth), self.convert(node.comparators[0], depth)))
        return self.convert(node, depth)

    def _keyword_value(self, op: str, kw: ast.keyword, depth: int) -> Fraction | str:
        if kw.arg is None:
            raise HarnessError(f"'**' arguments are not allowed in {op}(...)")
        if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            if len(kw.value.value) > MAX_KEYWORD_TEXT or not kw.value.value.isidentifier():
                raise HarnessError(f"keyword {kw.arg}= of {op}(...) has a bad value {kw.value.value[:40]!r}")
            return kw.value.value
        value = self.convert(kw.value, depth)
        if not isinstance(value, Num):
            raise HarnessError(f"keyword {kw.arg}= of {op}(...) must be a number")
        return value.value

    def _Subscript(self, node: ast.Subscript, depth: int) -> Node:
        value = self.convert(node.value, depth)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return Index(value, tuple(self._index_item(p, depth) for p in parts))

    def _index_item(self, node: ast.AST, depth: int) -> IndexItem:
        if isinstance(node, ast.Slice):
            return tuple(None if p is None else self._int(p, depth) for p in (node.lower, node.upper, node.step))  # type: ignore[return-value]
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        return self._int(node, depth)

    def _int(self, node: ast.AST, depth: int) -> int:
        value = self.convert(node, depth)
        if not isinstance(value, Num) or value.value.denominator != 1:
            raise HarnessError("indices must be integer literals")
        return int(value.value)


def _check_exponent(node: Node) -> None:
    size = _magnitude(node)
    if size > MAX_INT_EXPONENT:
        shown = node.value if isinstance(node, Num) else f"of about {size:.3g}"
        raise HarnessError(f"exponent {shown} is too large (limit {MAX_INT_EXPONENT})")


def _magnitude(node: Node) -> float:
    """A float estimate of a constant subtree's size (0 for anything with names in it)."""
    if isinstance(node, Num):
        return abs(float(node.value))
    if isinstance(node, Const):
        return 3.2
    if not isinstance(node, Call) or node.op not in {"add", "sub", "mul", "div", "pow", "neg"}:
        return 0.0
    parts = [_magnitude(a) for a in node.args]
    try:
        if node.op == "pow" and len(parts) == 2:
            return max(parts[0], 1.0) ** parts[1]
        if node.op == "mul":
            return parts[0] * parts[1]
        return max(parts, default=0.0) * 2
    except OverflowError:
        return float("inf")


def _dotted(node: ast.AST) -> str | None:
    """`special.erf` as a string; None for anything but a chain of plain names."""
    if isinstance(node, ast.Name):
        return None if node.id.startswith("__") else node.id
    if isinstance(node, ast.Attribute) and not node.attr.startswith("__"):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _describe(node: ast.AST) -> str:
    names = {"Attribute": "attribute access", "Lambda": "a lambda", "JoinedStr": "an f-string",
             "ListComp": "a comprehension", "GeneratorExp": "a comprehension",
             "SetComp": "a comprehension", "DictComp": "a comprehension", "Compare": "a comparison",
             "BoolOp": "'and'/'or'", "IfExp": "an if-expression", "NamedExpr": "':='",
             "List": "a list", "Dict": "a dict", "Set": "a set", "Tuple": "a tuple",
             "Await": "await", "Yield": "yield", "Starred": "'*'"}
    kind = type(node).__name__
    return names.get(kind, kind)


def children(node: Node) -> tuple[Node, ...]:
    """The subtrees directly under a node: a call's arguments, a list's items, what is indexed."""
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Seq):
        return node.items
    if isinstance(node, Index):
        return (node.value,)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, the root first (the one walker: queries over a tree are built on it).
    Iterative: a tree as deep as the parser allows never meets Python's recursion limit here."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def transform(node: Node, rewrite: Callable[[Node], Node | None],
              keyword: Callable[[str, Fraction | str], Fraction | str] | None = None) -> Node:
    """The tree rebuilt, root first and left to right: a node that `rewrite` replaces (it returns a
    Node) is replaced whole; one it keeps (None) keeps its kind and gets its subtrees transformed, and
    a call's keyword values pass through `keyword` where one is given. The one transforming walker:
    rewrites of a tree (folding constants, rounding numbers, renaming leaves) are built on it."""
    new = rewrite(node)
    if new is not None:
        return new
    if isinstance(node, Call):
        keywords = node.keywords if keyword is None else tuple((k, keyword(k, v)) for k, v in node.keywords)
        return Call(node.op, tuple(transform(a, rewrite, keyword) for a in node.args), keywords)
    if isinstance(node, Seq):
        return Seq(tuple(transform(a, rewrite, keyword) for a in node.items))
    if isinstance(node, Index):
        return Index(transform(node.value, rewrite, keyword), node.items)
    return node


def is_elementwise(node: Node, elementwise_ops: set[str]) -> bool:
    """True when every op in the tree maps elements to elements (broadcasting allowed)."""
    return all(not isinstance(n, Index | Seq) and (not isinstance(n, Call) or n.op in elementwise_ops)
               for n in walk(node))


def names_in(node: Node) -> set[str]:
    """The input and constant names a tree uses."""
    return {n.id for n in walk(node) if isinstance(n, Name)}


def ops_in(node: Node) -> set[str]:
    """The names of the ops a tree calls."""
    return {n.op for n in walk(node) if isinstance(n, Call)}


_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2), "matmul": ("@", 2), "pow": ("**", 4)}


def unparse(node: Node) -> str:
    """The tree as expression text that `parse` reads back to the same tree."""
    return _unparse(node, 0)


def _number(q: Fraction) -> str:
    """Exact text for a literal: an integer, a finite decimal, or (p/q)."""
    if q.denominator == 1:
        return str(q.numerator)
    d, twos, fives = q.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"({q.numerator}/{q.denominator})"
    places = max(twos, fives)
    if Fraction(repr(float(q))) == q:
        return repr(float(q))
    digits = str(abs(q.numerator) * 10**places // q.denominator).rjust(places + 1, "0")
    return ("-" if q < 0 else "") + digits[:-places] + "." + digits[-places:]


def _unparse(node: Node, outer: int) -> str:
    if isinstance(node, Num):
        text = _number(node.value)
        return f"({text})" if node.value < 0 or (outer >= 4 and "/" in text) else text
    if isinstance(node, Const | Name):
        return node.name if isinstance(node, Const) else node.id
    if isinstance(node, Seq):
        return "[" + ", ".join(_unparse(a, 0) for a in node.items) + "]"
    if isinstance(node, Index):
        items = []
        for item in node.items:
            if item is None:
                items.append("None")
            elif isinstance(item, tuple):
                items.append(":".join("" if p is None else str(p) for p in item))
            else:
                items.append(str(item))
        return f"{_unparse(node.value, 5)}[{', '.join(items)}]"
    if node.op in _INFIX and len(node.args) == 2 and not node.keywords:
        symbol, level = _INFIX[node.op]
        left = _unparse(node.args[0], level + (1 if node.op == "pow" else 0))
        right = _unparse(node.args[1], level + (0 if node.op == "pow" else 1))
        text = f"{left} {symbol} {right}"
        return f"({text})" if level < outer else text
    if node.op == "neg" and len(node.args) == 1:
        return f"(-{_unparse(node.args[0], 3)})"
    if node.op in COMPARE.values() and len(node.args) == 2:
        symbol = {v: k for k, v in {">": "gt", ">=": "ge", "<": "lt", "<=": "le", "==": "eq", "!=": "ne"}.items()}
        return f"{_unparse(node.args[0], 1)} {symbol[node.op]} {_unparse(node.args[1], 1)}"
    args = [_unparse(a, 0) for a in node.args]
    args += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={_number(v)}" for k, v in node.keywords]
    return f"{node.op}({', '.join(args)})"
