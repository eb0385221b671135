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

Authentication: an entry is the hex HMAC-SHA256 of the rest, a newline, then the JSON of the
question and the answer; the MAC covers the fingerprint too, under a secret key of 32 random bytes
made at first use: the file `hmac-key` in the folder, beside the fingerprints' subfolders (mode
0600, created whole or not at all). The MAC is checked (hmac.compare_digest) before anything is
parsed, so a file this harness did not write on this machine is a miss, however well-formed. So is
anything else that is not a good entry: no file, a directory, FIFO or symlink (never opened, never
followed), a file over MAX_ENTRY_BYTES, a bad MAC, JSON that does not decode (wrong types, an
unknown function, a huge integer, deep nesting). A key that cannot be trusted (unreadable, the
wrong size, a symlink, another owner's, readable by group or others) turns the cache off for the
process: everything is computed, nothing stored.

The folder: `HARNESS_CACHE` (a path, or `off`), else `$XDG_CACHE_HOME/harness`, else
`~/.cache/harness`; `harness run --cache DIR` and `--no-cache` set it for one run.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import sympy

from harness.catalogue import OPS
from harness.catalogue import markers as functions
from harness.timing import stage

FORMAT = 2  # 2: authenticated entries (format 1's are not read)
KEY_NAME = "hmac-key"
KEY_BYTES = 32
MAX_ENTRY_BYTES = 4 << 20  # the largest real entry is tens of kB
_MAX_BITS = 12_000  # an integer of at most 3613 digits, under Python's int/str limit (4300)
_MAX_DIGITS = 4300
_MAX_ORDER = 64
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
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
_HARNESS_FUNCTIONS = (
    functions.kink_step, functions.kink_sign, functions.kink_delta, functions.select, functions.jump,
    functions.ratio, functions.reverse_ratio, functions.no_grad, functions.max_share, functions.min_share,
    functions.amax_fn, functions.amin_fn, functions.norm2, functions.loggamma_abs, functions.floor_fn,
    functions.ceil_fn, functions.round_fn, functions.trunc_fn, functions.erfc_neg,
)
_FUNCTIONS: dict[str, type] = {f"sympy.{c.__name__}": c for c in _SYMPY_FUNCTIONS}
_FUNCTIONS.update({f"harness.{c.__name__}": c for c in _HARNESS_FUNCTIONS})
_FUNCTION_NAMES = {c: name for name, c in _FUNCTIONS.items()}

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
    if type(expr) in _FUNCTION_NAMES:
        return ["f", _FUNCTION_NAMES[type(expr)], *args]
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
    if tag == "f" and rest and rest[0] in _FUNCTIONS:
        return _FUNCTIONS[rest[0]](*(decode(a) for a in rest[1:]), evaluate=False)
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
    digest = hashlib.sha256(f"format {FORMAT}; sympy {sympy.__version__}".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        files = sorted((here / name).glob("*.py")) if (here / name).is_dir() else [here / name]
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def _default_folder() -> Path | None:
    setting = os.environ.get("HARNESS_CACHE")
    if setting is not None:
        return None if setting.lower() in ("off", "0", "no", "") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness"


def _read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result] | None:
    """The bytes of a plain file of at most `limit` bytes, with its status; None for anything else.
    A symlink is not followed, and a FIFO or device is never opened, so a read cannot hang."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK), "rb") as f:
            status = os.fstat(f.fileno())  # the file opened, should it have been swapped since
            if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
                return None
            data = f.read(limit + 1)
    except OSError:
        return None
    return (data, status) if len(data) <= limit else None


def _create_key(path: Path) -> None:
    """A new random key at `path`, unless another process puts one there first: written under a
    unique name, then hard-linked into place, so that it appears whole or not at all."""
    part = path.with_name(f"{path.name}.{secrets.token_hex(8)}.part")
    key = secrets.token_bytes(KEY_BYTES)
    try:
        _create_file(part, key)
        os.link(part, path)  # never replaces a key that is there
    except FileExistsError:
        pass  # another process's key won: it is the one used
    except OSError:  # a filesystem without hard links: in place (a racing reader may find it empty)
        with contextlib.suppress(FileExistsError):
            _create_file(path, key)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(part)


def _create_file(path: Path, data: bytes) -> None:
    """A new file (never an existing one, nor through a symlink), mode 0600, holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(data)


def load_key(folder: Path) -> bytes | None:
    """The secret key of the cache in `folder`, made at first use; None when it cannot be trusted."""
    path = folder / KEY_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.path.lexists(path):
            _create_key(path)
    except OSError:
        return None
    found = _read_regular(path, KEY_BYTES)
    if found is None:
        return None
    key, status = found
    foreign = hasattr(os, "geteuid") and status.st_uid != os.geteuid()
    return None if len(key) != KEY_BYTES or status.st_mode & 0o077 or foreign else key


class Store:
    """Answers on disk, one authenticated file per question, under a folder per fingerprint."""

    def __init__(self, folder: Path | None) -> None:
        self.root = folder
        self.fingerprint = _fingerprint() if folder is not None else ""
        self.folder = folder / self.fingerprint if folder is not None else None
        self.hits = self.misses = 0
        self.key: bytes | None = None

    def enabled(self) -> bool:
        """Whether the cache is on: at first use, read (or make) the key; if it cannot be trusted,
        the cache is off from then on."""
        if self.key is None and self.root is not None:
            self.key = load_key(self.root)
            if self.key is None:
                self.root = self.folder = None
        return self.key is not None

    def path(self, question: str) -> Path:
        """Where the answer to a question (its compact JSON) is stored."""
        assert self.folder is not None
        return self.folder / f"{hashlib.sha256(question.encode()).hexdigest()}.json"

    def answer(self, question: list, compute: Callable[[], sympy.Basic | None]) -> sympy.Basic | None:
        """The stored answer to `question`, or `compute()` (stored when it round-trips)."""
        if not self.enabled():
            return compute()
        text = json.dumps(question, separators=(",", ":"))
        stored = self._read(self.path(text), text)
        if stored is not _MISS:
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
        entry = self.seal(text, encoded)
        if len(entry) <= MAX_ENTRY_BYTES:
            _write(self.path(text), entry)
        return result

    def seal(self, question: str, answer: list | None) -> bytes:
        """An entry's bytes: the MAC, a newline, the JSON of the question (compact JSON) and answer."""
        body = json.dumps({"question": question, "answer": answer}, separators=(",", ":")).encode()
        return self._mac(body) + b"\n" + body

    def _mac(self, body: bytes) -> bytes:
        """The hex HMAC-SHA256 of an entry's body and this store's fingerprint, under the key."""
        assert self.key is not None
        return hmac.new(self.key, self.fingerprint.encode() + b"\n" + body, hashlib.sha256).hexdigest().encode()

    def _read(self, path: Path, question: str) -> object:
        """The stored answer (None: no value), or _MISS for anything but an entry this store sealed."""
        found = _read_regular(path, MAX_ENTRY_BYTES)
        if found is None:
            return _MISS
        mac, _, body = found[0].partition(b"\n")
        if not hmac.compare_digest(mac, self._mac(body)):
            return _MISS  # not written here (forged, foreign, old format) or damaged
        try:
            entry = json.loads(body)
            if not isinstance(entry, dict) or entry.get("question") != question or "answer" not in entry:
                return _MISS
            return None if entry["answer"] is None else decode(entry["answer"])
        except Exception:  # sealed here yet not decodable (a bug): costs only a recomputation
            return _MISS


def _write(path: Path, data: bytes) -> None:
    """Write a file atomically (a temporary file, renamed); a read-only or full disk costs only speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_MISS = object()
STORE = Store(_default_folder())


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
