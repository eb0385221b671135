"""YAML case files to frozen `Case` values; every error names file:line and the bad value.

Raw YAML never leaves this module. Files are composed with PyYAML's safe composer (no tags,
no objects) and walked by hand, so every value keeps its line and every number stays exact:
`0.1` becomes the decimal Fraction 1/10, never the float nearest it.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import yaml

from harness.catalogue import OPS, lead_to_keywords, resolve
from harness.catalogue.markers import MODES, Convention
from harness.errors import CaseTimeout, HarnessError, unexpected
from harness.expr import NAMED_CONSTANTS, Call, Name, Node, Num, did_you_mean, names_in, ops_in, parse, walk
from harness.limits import memory_limit, time_limit
from harness.numbers import FORMATS, LiteralError, read_literal
from harness.paths import COMPILE_BACKENDS, COMPILED, FAMILIES, Selection
from harness.registry import CHECKS, MAX_DERIVATIVE_ORDER, all_names, known, lookup, paths_of
from harness.replay import DEFAULTS, OPTIMIZERS
from harness.timing import stage

MAX_FILE_BYTES = 2_000_000
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 64
MAX_ELEMENTS = 1_000_000
MAX_POINTS = 10_000
MAX_DIMENSIONS = 16
MAX_NAME = 200  # characters of a case's name: it is quoted in every report line about the case
MAX_CASES = 10_000  # cases in one file
MAX_CONSTANTS = 1_000
MAX_SEED = 2**64 - 1
MAX_FILE_ELEMENTS = MAX_ELEMENTS  # input elements of all the cases of one file together (aliases expanded)
CASE_KEYS = ("name", "doc", "inputs", "constants", "expr", "outputs", "checks", "dtype", "tolerance",
             "xfail", "target", "seed", "conventions", "device", "compile", "paths")
DISTRIBUTIONS = ("uniform", "normal", "loguniform")


@dataclass(frozen=True)
class InputSpec:
    """One input: its shape and its exact values at every point (flat, row-major)."""

    name: str
    shape: tuple[int, ...]
    points: tuple[tuple[Node, ...], ...]
    imag: tuple[tuple[Node, ...], ...] = ()  # complex inputs: the imaginary parts, point by point
    # sampled points as the doubles they were drawn as (None where edges replaced some), so that
    # rounding them to the dtype is one numpy cast instead of a Fraction per element
    doubles: tuple[np.ndarray | None, ...] = field(default=(), compare=False, repr=False)
    critical: bool = False  # sampled: the ops' critical points replace part of the draw (`edges: none`: not)


@dataclass(frozen=True)
class ToleranceSpec:
    """ulps of the exact value; atol, an absolute floor; model, the multiple of the error-model bound."""

    ulps: float | None = None
    atol: float | None = None
    model: float | None = None


@dataclass(frozen=True)
class Xfail:
    """An expected failure; `dtypes` limits it to some dtypes (empty: all)."""

    reason: str
    strict: bool = False
    dtypes: tuple[str, ...] = ()

    def applies(self, dtype: str) -> bool:
        return not self.dtypes or dtype in self.dtypes


@dataclass(frozen=True)
class Vector:
    """A cotangent or tangent: 'random' (seeded), or exact literal values per output or input."""

    random: bool = True
    values: tuple[tuple[str | None, tuple[int, ...], tuple[Node, ...]], ...] = ()


@dataclass(frozen=True)
class CheckSpec:
    kind: str
    line: int
    cotangent: Vector = field(default_factory=Vector)
    tangent: Vector = field(default_factory=Vector)
    tolerance: ToleranceSpec | None = None
    xfail: Xfail | None = None
    options: tuple[tuple[str, Any], ...] = ()  # minimize: optimizer, steps and hyper-parameters
    paths: Selection = field(default_factory=Selection)  # which of its torch paths run (harness.paths)

    @property
    def order(self) -> int:
        """The derivative order its path names carry (`derivative`), else 1."""
        return int(dict(self.options).get("order", 1))


@dataclass(frozen=True)
class Case:
    """One case, as declared; values are exact, rounding to a dtype happens at run time."""

    name: str
    file: str
    line: int
    inputs: tuple[InputSpec, ...]
    outputs: tuple[tuple[str, Node], ...]
    checks: tuple[CheckSpec, ...]
    dtypes: tuple[str, ...] = ("float64",)
    constants: tuple[tuple[str, Node], ...] = ()
    tolerance: ToleranceSpec | None = None
    xfail: Xfail | None = None
    target: str | Callable[..., object] | None = None  # 'module:attr', or a callable (the Python API)
    seed: int = 0
    doc: str = ""
    sources: tuple[tuple[str, str], ...] = ()  # output -> the expression text as written
    conventions: tuple[Convention, ...] = ()  # torch's derivatives at kinks, as the case pins them
    devices: tuple[str, ...] = ("cpu",)
    compile: str | None = None  # a torch.compile backend: the checks also run through the compiled function
    paths: Selection = field(default_factory=Selection)  # which torch paths run, in every check
    lines: tuple[tuple[str, int], ...] = ()  # each key's line in the file, for errors found later

    def line_of(self, *keys: str) -> int:
        """The line of the first of these keys the case has (its own line if none)."""
        found = dict(self.lines)
        return next((found[k] for k in keys if k in found), self.line)

    @property
    def n_points(self) -> int:
        return max((len(i.points) for i in self.inputs), default=1)


@dataclass(frozen=True)
class BadCase:
    """A case (or file) that could not be loaded: it becomes an `error` result."""

    name: str
    file: str
    line: int
    message: str


# ---------------------------------------------------------------- located YAML


@dataclass
class Y:
    value: Any
    line: int
    kind: str  # map seq str num bool null, or float: -0.0, +-inf (an input's value; elsewhere 0 or an error)


def _compose_raw(text: str, file: str) -> yaml.Node | None:
    """The YAML node tree, before any conversion (the syntax is the whole file's)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HarnessError(f"malformed YAML: {problem}", file=file, line=line) from None
    except RecursionError:  # PyYAML's composer recurses per level of nesting
        raise HarnessError(f"YAML nested too deeply (limit {MAX_YAML_DEPTH} levels)", file=file, line=1) from None
    return node


_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"


_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def _convert(node: yaml.Node, file: str, budget: list[int], depth: int = 0) -> Y:
    if depth > MAX_YAML_DEPTH:
        raise HarnessError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels", file=file,
                           line=node.start_mark.line + 1)
    if node.tag not in _TAGS:
        raise HarnessError(f"YAML tag {node.tag.removeprefix('tag:yaml.org,2002:')!r} is not allowed",
                           file=file, line=node.start_mark.line + 1)
    budget[0] -= 1
    if budget[0] < 0:
        raise HarnessError(f"file expands to more than {MAX_YAML_NODES} YAML nodes (alias bomb?)",
                           file=file, line=node.start_mark.line + 1)
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Y] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                raise HarnessError("mapping keys must be plain names", file=file, line=k.start_mark.line + 1)
            if k.value in out:
                raise HarnessError(f"duplicate key {k.value!r}", file=file, line=k.start_mark.line + 1)
            out[k.value] = _convert(v, file, budget, depth + 1)
        return Y(out, line, "map")
    if isinstance(node, yaml.SequenceNode):
        return Y([_convert(v, file, budget, depth + 1) for v in node.value], line, "seq")
    return _scalar(node, file, line)


def _scalar(node: yaml.ScalarNode, file: str, line: int) -> Y:
    text = node.value
    if node.tag == _INT_TAG:
        try:
            value = _yaml_int(text)
        except LiteralError as exc:
            raise HarnessError(str(exc), file=file, line=line) from None
        return Y(value, line, "num")
    if node.tag == _FLOAT_TAG:
        if re.search(r"nan", text, re.IGNORECASE):
            raise HarnessError(f"non-finite number {text!r} is not allowed", file=file, line=line)
        if re.search(r"inf", text, re.IGNORECASE):
            return Y(-math.inf if text.lstrip().startswith("-") else math.inf, line, "float")
        try:
            value = read_literal(text)
        except LiteralError as exc:
            raise HarnessError(str(exc), file=file, line=line) from None
        if value == 0 and text.lstrip().startswith("-"):
            return Y(-0.0, line, "float")  # the sign of zero matters to torch (atan2, copysign)
        return Y(value, line, "num")
    if node.tag == "tag:yaml.org,2002:bool":
        return Y(text.lower() in ("true", "yes", "on", "y"), line, "bool")
    if node.tag == "tag:yaml.org,2002:null":
        return Y(None, line, "null")
    return Y(text, line, "str")


def _yaml_int(text: str) -> Fraction:
    """YAML 1.1's integers, bounded before they are built: decimal, 0x and 0b, a leading 0 for
    octal (`010` is 8), base 60 (`1:30` is 90)."""
    clean = text.strip().replace("_", "")
    sign, digits = (clean[0], clean[1:]) if clean[:1] in "+-" else ("", clean)
    if ":" in digits:
        if len(digits) > 64 or not re.fullmatch(r"[0-9]+(:[0-5]?[0-9])+", digits):
            raise LiteralError(f"cannot read number {text[:40]!r}")
        value = 0
        for part in digits.split(":"):
            value = value * 60 + int(part)
        return Fraction(-value if sign == "-" else value)
    if re.fullmatch(r"0[0-7]+", digits):
        return read_literal(f"{sign}0o{digits[1:]}")
    return read_literal(clean)


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class Limits:
    """What loading one file may take: its wall time and extra memory (0: no limit), as a case."""

    timeout: float = 0.0
    memory_mb: float = 0.0


def load_file(path: str | Path, limits: Limits = Limits(), root: Path | None = None) -> list[Case | BadCase]:
    """Every case in one file; a bad case becomes a BadCase, the others still load. The file is
    its own boundary: nothing it holds raises out of here, and its loading runs under `limits`.
    `root`: the folder being run; a symlink that resolves outside it is refused unread."""
    file = str(path)
    try:
        with time_limit(limits.timeout), memory_limit(limits.memory_mb):
            return load_bytes(_read(Path(path), root), file)
    except HarnessError as exc:
        return [BadCase(Path(file).stem, file, exc.line or 1, str(exc.at(file, 1)))]
    except CaseTimeout:
        return [BadCase(Path(file).stem, file, 1, f"{file}:1: error: loading timed out after {limits.timeout:g} s")]
    except Exception as exc:  # MemoryError, RecursionError, a bug: this file's error, the run goes on
        return [BadCase(Path(file).stem, file, 1, f"{file}:1: {unexpected(exc)}")]


def _read(path: Path, root: Path | None) -> bytes:
    """A case file's bytes, checked before they are read: it stays inside `root` (the folder it
    was found in, or its own folder), is a regular file and at most MAX_FILE_BYTES long."""
    folder = (root or path.parent).resolve()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise HarnessError(f"cannot read: {getattr(exc, 'strerror', None) or 'symlink loop'}") from None
    if real != folder and folder not in real.parents:
        raise HarnessError(f"refused: a symlink to a file outside {folder} (not read)")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise HarnessError(f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise HarnessError("refused: not a regular file (a FIFO, device or socket is not read)")
        if info.st_size > MAX_FILE_BYTES:
            raise HarnessError(f"file is {info.st_size} bytes (limit {MAX_FILE_BYTES})")
        return f.read(MAX_FILE_BYTES + 1)


def load_text(text: str, file: str = "<text>") -> list[Case | BadCase]:
    """Every case in YAML text, as if it were a file of that name."""
    return load_bytes(text.encode("utf-8"), file)


def load_bytes(data: bytes, file: str) -> list[Case | BadCase]:
    token = _FILE_ELEMENTS.set([MAX_FILE_ELEMENTS])
    try:
        with stage("parse"):
            return _load_bytes(data, file)
    finally:
        _FILE_ELEMENTS.reset(token)


def _load_bytes(data: bytes, file: str) -> list[Case | BadCase]:
    try:
        if len(data) > MAX_FILE_BYTES:
            raise HarnessError(f"file is {len(data)} bytes (limit {MAX_FILE_BYTES})", file=file, line=1)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HarnessError(f"not UTF-8 text (byte {exc.start})", file=file, line=1) from None
        raw = _compose_raw(text, file)
        if raw is None:
            return [BadCase(Path(file).stem, file, 1, f"{file}:1: empty file, expected a case or 'cases:'")]
        budget = [MAX_YAML_NODES]
        items = _case_nodes(raw, file)
        if items is None:  # one case
            return [_convert_one(raw, file, 0, budget)]
        if len(items) > MAX_CASES:
            raise HarnessError(f"file has {len(items)} cases (limit {MAX_CASES}; split the file)", file=file, line=1)
    except HarnessError as exc:
        return [BadCase(Path(file).stem, file, exc.line or 1, str(exc.at(file, 1)))]
    loaded = [_convert_one(node, file, i, budget) for i, node in enumerate(items)]
    seen: dict[str, int] = {}
    for i, case in enumerate(loaded):
        if isinstance(case, Case) and case.name in seen:
            loaded[i] = BadCase(case.name, file, case.line, f"{file}:{case.line}: duplicate case name {case.name!r}"
                                                             f" (first at {file}:{seen[case.name]})")
        elif isinstance(case, Case):
            seen[case.name] = case.line
    return loaded


def _case_nodes(raw: yaml.Node, file: str) -> list[yaml.Node] | None:
    """The raw nodes of a `cases:` list (None when the file is one case), each converted on its
    own: a duplicate key or a bad tag in one case is that case's error, not the file's."""
    if not isinstance(raw, yaml.MappingNode):
        return None
    keys = [k.value if isinstance(k, yaml.ScalarNode) else None for k, _ in raw.value]
    if "cases" not in keys:
        return None
    for k, _ in raw.value:
        if not isinstance(k, yaml.ScalarNode) or k.value != "cases":
            shown = k.value if isinstance(k, yaml.ScalarNode) else "a non-scalar key"
            raise HarnessError(f"unknown key {shown!r} beside 'cases:'", file=file, line=k.start_mark.line + 1)
    if keys.count("cases") > 1:
        raise HarnessError("duplicate key 'cases'", file=file, line=raw.start_mark.line + 1)
    items = raw.value[0][1]
    if items.tag != "tag:yaml.org,2002:seq" or not isinstance(items, yaml.SequenceNode):
        raise HarnessError("'cases:' must be a list", file=file, line=items.start_mark.line + 1)
    return list(items.value)


def _convert_one(node: yaml.Node, file: str, index: int, budget: list[int]) -> Case | BadCase:
    """One case from its raw node. This is the case's boundary: whatever it raises (the harness's
    own error, or anything else) becomes this case's error, and the file's other cases load."""
    name = _raw_name(node) or f"{Path(file).stem}[{index}]"
    line = node.start_mark.line + 1
    try:
        return _case(_convert(node, file, budget), file)
    except HarnessError as exc:
        at = exc.line or line
        return BadCase(name, file, at, str(exc.at(file, at)))
    except Exception as exc:  # RecursionError, MemoryError, a bug
        return BadCase(name, file, line, f"{file}:{line}: {unexpected(exc)}")


def _raw_name(node: yaml.Node) -> str | None:
    """A case's name: straight from the raw mapping, for a case that cannot be converted."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "name" and isinstance(v, yaml.ScalarNode):
                return v.value[:200]
    return None


def case_from_data(data: dict[str, Any], file: str, line: int, traced: bool = False) -> Case:
    """One case from Python values (the Python API), validated exactly as a file's: numbers are
    exact (a float is its binary value), every error names `file:line` (the caller's). `traced`:
    the caller gives a callable, so that the case may have no expression (its forward is traced)."""
    try:
        return _case(_from_python(data, line), file, traced)
    except HarnessError as exc:
        raise exc.at(file, line) from None


def _from_python(value: Any, line: int) -> Y:
    if isinstance(value, bool):
        return Y(value, line, "bool")
    if isinstance(value, int | Fraction):
        return Y(Fraction(value), line, "num")
    if isinstance(value, float):
        if math.isnan(value):
            raise HarnessError(f"non-finite number {value!r} is not allowed", line=line)
        if math.isinf(value) or (value == 0 and math.copysign(1.0, value) < 0):
            return Y(value, line, "float")
        return Y(Fraction(value), line, "num")
    if isinstance(value, str):
        return Y(value, line, "str")
    if value is None:
        return Y(None, line, "null")
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise HarnessError("mapping keys must be names (strings)", line=line)
        return Y({k: _from_python(v, line) for k, v in value.items()}, line, "map")
    if isinstance(value, list | tuple):
        return Y([_from_python(v, line) for v in value], line, "seq")
    if isinstance(value, np.ndarray | np.generic):
        return _from_python(value.tolist(), line)
    raise HarnessError(f"cannot read a {type(value).__name__} here (numbers, lists, mappings and text)", line=line)


def load_paths(paths: list[str], limits: Limits = Limits()) -> list[Case | BadCase]:
    """Every case under the given files and folders (*.yaml, *.yml, sorted; symlinked folders are
    not entered, symlinked files must stay inside the folder given), names made unique."""
    files: list[tuple[Path, Path | None]] = []
    loaded: list[Case | BadCase] = []
    for p in paths:
        path = Path(p)
        leaving = _folder_link_leaving(path if path.is_dir() else path.parent)
        if leaving is not None:
            loaded.append(BadCase(path.stem, str(path), 1, f"{path}:1: refused: {leaving} is a symlink to a folder"
                                                           f" outside {leaving.parent} (not read)"))
        elif path.is_dir():
            files += [(f, path) for f in _case_files(path)]
        elif path.exists() or path.is_symlink():
            files.append((path, None))
        else:
            loaded.append(BadCase(path.stem, str(path), 1, f"{path}:1: no such file or folder"))
    seen: dict[str, str] = {}
    for f, root in files:
        for case in load_file(f, limits, root):
            where = f"{case.file}:{case.line}"
            if isinstance(case, Case) and case.name in seen:
                case = BadCase(case.name, case.file, case.line,
                               f"{where}: duplicate case name {case.name!r} (first at {seen[case.name]})")
            seen.setdefault(case.name, where)
            loaded.append(case)
    return loaded


def _folder_link_leaving(folder: Path) -> Path | None:
    """The first folder on a path as it was typed (each of its components if relative, the last
    if absolute) that is a symlink resolving outside its own parent: `harness run cases/*` must not
    follow `cases/link -> /` any more than a walk of `cases/` does."""
    parts = [folder, *folder.parents][:-1] if not folder.is_absolute() else [folder]
    for part in parts:
        if part.is_symlink():
            target, parent = part.resolve(), part.absolute().parent.resolve()
            if target != parent and parent not in target.parents:
                return part
    return None


_NOT_CASES = {"node_modules", "__pycache__", "site-packages", "dist-packages"}


def _case_files(folder: Path) -> list[Path]:
    """*.yaml and *.yml under a folder, sorted, without following symlinked folders (a FIFO or a
    symlink is listed, and refused when read), nor entering hidden folders (.venv, .git, .github)
    or installed packages (node_modules, site-packages), whose YAML is no one's case file."""
    found = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _NOT_CASES)
        found += [Path(top) / n for n in names if n.endswith((".yaml", ".yml"))]
    return sorted(found)


# ---------------------------------------------------------------- one case


_FILE_ELEMENTS: ContextVar[list[int] | None] = ContextVar("file_elements", default=None)


def _charge(y: Y, name: str, elements: int) -> None:
    """Count an input's elements against its file's budget before they are drawn: a 3 kB file of
    cases that share one anchored 10^6-element input would otherwise need gigabytes."""
    left = _FILE_ELEMENTS.get()
    if left is None:
        return
    left[0] -= elements
    if left[0] < 0:
        raise _fail(y, f"input {name!r} takes the file past {MAX_FILE_ELEMENTS} input elements in all"
                       " (anchors and aliases count each time they are used; split the file)")


def _fail(y: Y, message: str) -> HarnessError:
    return HarnessError(message, line=y.line)


def _expect(y: Y, kind: str, what: str) -> Any:
    if kind == "num" and y.kind == "float":  # -0.0 or +-inf where an exact number is wanted
        if y.value == 0:
            return Fraction(0)
        raise _fail(y, f"{what} must be a finite number, got {y.value} (infinities are allowed only as input values)")
    if y.kind != kind:
        shown = {"map": "a mapping", "seq": "a list", "str": "a string", "num": "a number",
                 "bool": "true/false", "null": "nothing"}
        raise _fail(y, f"{what} must be {shown[kind]}, got {_show(y)}")
    return y.value


def _show(y: Y) -> str:
    if y.kind == "map":
        return "a mapping"
    if y.kind == "seq":
        return "a list"
    if y.kind == "num":
        return str(y.value)
    return repr(y.value)


def _case(node: Y, file: str, traced: bool = False) -> Case:
    if node.kind == "seq":
        raise _fail(node, "a case must be a mapping, got a list (several cases in one file go under 'cases:',"
                          " a list of mappings)")
    fields = _expect(node, "map", "a case")
    for key, value in fields.items():
        if key not in CASE_KEYS:
            raise _fail(value, f"unknown key {key!r}{did_you_mean(key, CASE_KEYS)}")
    name = _name(fields, node)
    if "inputs" not in fields:
        raise _fail(node, f"case {name!r} needs 'inputs:'")
    seed_y = fields.get("seed")
    seed = _integer(seed_y, "seed", 0, MAX_SEED) if seed_y else 0
    dtypes = _dtypes(fields.get("dtype"))
    is_complex = any(d in COMPLEX_DTYPES for d in dtypes)
    if is_complex and not all(d in COMPLEX_DTYPES for d in dtypes):
        raise _fail(fields["dtype"], "a case is either complex (complex64, complex128) or real, not both")
    inputs = _inputs(fields["inputs"], seed, is_complex)
    constants = _constants(fields.get("constants"), {i.name for i in inputs})
    input_names = {i.name for i in inputs}
    outputs, sources = _outputs(fields, node, input_names | {n for n, _ in constants}, traced or "target" in fields)
    _check_used(outputs, fields, input_names, traced)
    _check_dtype_of_ops(fields, node, outputs, is_complex)
    checks = _checks(fields.get("checks"), node)
    paths = _paths(fields["paths"], [(c.kind, c.order) for c in checks]) if "paths" in fields else Selection()
    _check_paths_left(paths, checks, "compile" in fields and _compile(fields["compile"]) is not None)
    return Case(
        name=name, file=file, line=node.line, inputs=inputs, outputs=outputs, paths=paths,
        lines=tuple((key, value.line) for key, value in fields.items()),
        checks=checks, dtypes=dtypes, constants=constants,
        tolerance=_tolerance(fields["tolerance"]) if "tolerance" in fields else None,
        xfail=_xfail(fields["xfail"]) if "xfail" in fields else None,
        target=_target(fields["target"]) if "target" in fields else None,
        seed=seed, doc=_expect(fields["doc"], "str", "doc") if "doc" in fields else "", sources=sources,
        conventions=_conventions(fields["conventions"]) if "conventions" in fields else (),
        devices=_devices(fields["device"]) if "device" in fields else ("cpu",),
        compile=_compile(fields["compile"]) if "compile" in fields else None)




def _name(fields: dict[str, Y], node: Y) -> str:
    if "name" not in fields:
        raise _fail(node, "a case needs a 'name:'")
    name = _expect(fields["name"], "str", "name")
    if len(name) > MAX_NAME:
        raise _fail(fields["name"], f"name is {len(name)} characters long (limit {MAX_NAME})")
    return name


def _check_dtype_of_ops(fields: dict[str, Y], node: Y, outputs: tuple[tuple[str, Node], ...],
                        is_complex: bool) -> None:
    """A complex case has an expression in the ops with complex semantics; a real one uses none of
    those complex-only ops."""
    if is_complex and not outputs:
        raise _fail(node, "a complex case needs 'expr:' or 'outputs:' (a forward is traced in real dtypes only)")
    if is_complex:
        _check_complex(fields, outputs)
        return
    for _, tree in outputs:
        used = sorted(n for n in ops_in(tree) if n in COMPLEX_ONLY)
        if used:
            raise _fail(fields.get("expr") or fields["outputs"], f"{used[0]}() needs a complex dtype (complex64,"
                                                                 " complex128)")


def _compile(y: Y) -> str | None:
    """`compile: true` (inductor), `false`, or a backend name."""
    if y.kind == "bool":
        return "inductor" if y.value else None
    name = _expect(y, "str", "compile")
    if name not in COMPILE_BACKENDS:
        raise _fail(y, f"compile must be true, false or a backend ({', '.join(COMPILE_BACKENDS)}), got {name!r}"
                       f"{did_you_mean(name, list(COMPILE_BACKENDS))}")
    return name


COMPLEX_ONLY = {"angle", "sgn", "conj", "real", "imag"}  # ops with complex semantics only


def _check_complex(fields: dict[str, Y], outputs: tuple[tuple[str, Node], ...]) -> None:
    """A complex case uses the ops that have complex semantics here (harness.complex.OPS), with
    their arities, on numbers and inputs; no constants or conventions."""
    from harness.complex import OPS as COMPLEX_OPS
    for key in ("constants", "conventions"):
        if key in fields:
            raise _fail(fields[key], f"{key!r} is not supported in complex cases yet")
    where = fields.get("expr") or fields["outputs"]
    for node in (n for _, tree in outputs for n in walk(tree)):
        if isinstance(node, Call):
            if node.op not in COMPLEX_OPS or node.keywords:
                raise _fail(where, f"{node.op}() is not supported on complex inputs"
                                   f" (these are: {', '.join(sorted(COMPLEX_OPS))})")
            if len(node.args) != COMPLEX_OPS[node.op].arity:
                raise _fail(where, f"{node.op}() takes {COMPLEX_OPS[node.op].arity} argument(s),"
                                   f" got {len(node.args)}")
        elif not isinstance(node, Num | Name):
            raise _fail(where, "complex cases take elementwise expressions (no indexing or lists)")


def _devices(y: Y) -> tuple[str, ...]:
    """`device: cuda`, or a list to run the same checks on each (cpu, cuda, cuda:1 ...)."""
    items = [y] if y.kind == "str" else _expect(y, "seq", "device")
    out = []
    for item in items:
        name = _expect(item, "str", "device")
        if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", name):
            raise _fail(item, f"device must be cpu, cuda or cuda:N, got {name!r}")
        out.append(name)
    return tuple(dict.fromkeys(out)) or ("cpu",)


def _conventions(y: Y) -> tuple[Convention, ...]:
    """torch's derivatives at an op's kinks, pinned: `{relu: 1}` (first order, every kink, both
    modes), `{relu: {2: 0}}` (by order), or a list of rules `{at:, order:, value:, mode:}` for one
    kink (hardswish at -3 or at 3) and one derivative mode (reverse or forward)."""
    out: list[Convention] = []
    pinnable = sorted(n for n, o in OPS.items() if any(k.at is not None for k in o.kinks))
    for name, value in _expect(y, "map", "conventions").items():
        op = OPS.get(name)
        if op is None or not any(k.at is not None for k in op.kinks):
            raise _fail(value, f"conventions can be pinned for one-input ops with kinks, not {name!r}"
                               f"{did_you_mean(name, pinnable)}")
        if value.kind == "num":
            out.append(Convention(name, 1, value.value))
        elif value.kind == "seq":
            out += [_convention_rule(name, op, rule) for rule in value.value]
        else:
            for order, number in _expect(value, "map", f"conventions of {name}").items():
                out.append(Convention(name, _order(order, number), _expect(number, "num", "a convention")))
    return tuple(out)


def _order(text: str, y: Y) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 2:
        raise _fail(y, f"a derivative order must be a whole number from 1 to 99, got {text!r}")
    return int(text)


def _convention_rule(name: str, op: Any, y: Y) -> Convention:
    """One rule: {value: v} plus any of at: (one kink), order: (default 1), mode: reverse|forward."""
    fields = _expect(y, "map", f"a convention rule of {name}")
    known = ("at", "order", "value", "mode")
    for key, v in fields.items():
        if key not in known:
            raise _fail(v, f"unknown convention key {key!r}{did_you_mean(key, known)}")
    if "value" not in fields:
        raise _fail(y, f"a convention rule of {name} needs 'value:'")
    order = _integer(fields["order"], "order") if "order" in fields else 1
    if not 1 <= order <= 99:
        raise _fail(fields["order"], f"a derivative order must be a whole number from 1 to 99, got {order}")
    mode = _expect(fields["mode"], "str", "mode") if "mode" in fields else None
    if mode is not None and mode not in MODES:
        raise _fail(fields["mode"], f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    at = _expect(fields["at"], "num", "at") if "at" in fields else None
    fixed = [k.at() for k in op.kinks if k.at is not None and not op.keywords]
    if at is not None and fixed and sympy.Rational(at.numerator, at.denominator) not in fixed:
        raise _fail(fields["at"], f"{name} has no kink at {at}; its kinks are at {', '.join(map(str, fixed))}")
    return Convention(name, order, _expect(fields["value"], "num", "a convention"), at, mode)


def _integer(y: Y, what: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number, within [low, high] where given (checked before anything is sized by it)."""
    value = _expect(y, "num", what)
    if value.denominator != 1:
        raise _fail(y, f"{what} must be a whole number, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        shown = str(value) if abs(value) < 10**20 else f"a number of {len(str(abs(value.numerator)))} digits"
        raise _fail(y, f"{what} must be from {low} to {high}, got {shown}")
    return int(value)


def _parse_at(y: Y, names: set[str]) -> Node:
    if y.kind == "num":
        return Num(y.value)
    text = _expect(y, "str", "an expression")
    try:
        tree = parse(text, ops=set(OPS) | COMPLEX_ONLY, names=names)
        _check_calls(tree)
        return tree
    except HarnessError as exc:
        raise _fail(y, exc.message) from None


def _check_calls(tree: Node) -> None:
    """Every call has its op's number of arguments and only its keywords (the ops with complex
    semantics only are checked against the complex ops later)."""
    for node in walk(tree):
        if isinstance(node, Call) and node.op not in COMPLEX_ONLY:
            call = lead_to_keywords(node)
            op, _ = resolve(call.op, call.keywords)
            if len(call.args) != op.arity:
                given = len(node.args)
                wanted = op.arity + len(op.leading)
                raise HarnessError(f"{node.op}() takes {wanted} argument{'s' * (wanted != 1)}, got {given}")


def _constants(y: Y | None, inputs: set[str]) -> tuple[tuple[str, Node], ...]:
    if y is None:
        return ()
    out: list[tuple[str, Node]] = []
    items = _expect(y, "map", "constants")
    if len(items) > MAX_CONSTANTS:
        raise _fail(y, f"{len(items)} constants (limit {MAX_CONSTANTS})")
    known: set[str] = set()
    for name, value in items.items():
        _check_identifier(name, value)
        if name in inputs:
            raise _fail(value, f"{name!r} is both an input and a constant")
        out.append((name, _parse_at(value, known)))
        known.add(name)
    return tuple(out)


def _check_identifier(name: str, y: Y) -> None:
    if not name.isidentifier() or name.startswith("__") or name in NAMED_CONSTANTS or name in OPS:
        raise _fail(y, f"{name!r} cannot be used as a name")


def _outputs(fields: dict[str, Y], node: Y, names: set[str],
             traceable: bool) -> tuple[tuple[tuple[str, Node], ...], tuple]:
    """The declared outputs; none when the case has a target and no expression: the target's
    forward is then traced (harness.trace) for the exact side."""
    if "expr" in fields and "outputs" in fields:
        raise _fail(node, "a case needs exactly one of 'expr:' and 'outputs:'")
    if "expr" not in fields and "outputs" not in fields:
        if traceable:
            return (), ()
        raise _fail(node, "a case needs 'expr:' or 'outputs:' (or a 'target:', whose forward is then traced)")
    if "expr" in fields:  # its output is `y`, unless an input or constant has that name
        items = {next(n for n in ("y", "out", "result", "f", "output") if n not in names): fields["expr"]}
    else:
        items = _expect(fields["outputs"], "map", "outputs")
        if not items:
            raise _fail(fields["outputs"], "outputs: needs at least one output")
    outputs, sources = [], []
    for name, y in items.items():
        _check_identifier(name, y)
        outputs.append((name, _parse_at(y, names)))
        sources.append((name, str(y.value)))
    return tuple(outputs), tuple(sources)


def _check_used(outputs: tuple[tuple[str, Node], ...], fields: dict[str, Y], inputs: set[str],
                targeted: bool) -> None:
    used = set().union(*(names_in(t) for _, t in outputs))
    unused = sorted(inputs - used)
    if unused and "target" not in fields and not targeted:
        raise _fail(fields["inputs"], f"input {unused[0]!r} is not used by any output")


COMPLEX_DTYPES = {"complex64": "float32", "complex128": "float64"}  # the format of each part


def _dtypes(y: Y | None) -> tuple[str, ...]:
    if y is None:
        return ("float64",)
    items = [y] if y.kind == "str" else _expect(y, "seq", "dtype")
    out = []
    known = [*FORMATS, *COMPLEX_DTYPES]
    for item in items:
        name = _expect(item, "str", "dtype")
        if name not in known:
            raise _fail(item, f"unknown dtype {name!r}{did_you_mean(name, known)} (one of {', '.join(known)})")
        out.append(name)
    return tuple(dict.fromkeys(out))


def _tolerance(y: Y) -> ToleranceSpec:
    fields = _expect(y, "map", "tolerance")
    for key, value in fields.items():
        if key not in ("ulps", "atol", "model"):
            raise _fail(value, f"unknown tolerance {key!r}{did_you_mean(key, ['ulps', 'atol', 'model'])}")
        if _expect(value, "num", f"tolerance {key}") < 0:
            raise _fail(value, f"tolerance {key} must not be negative")
    return ToleranceSpec(*(float(fields[k].value) if k in fields else None for k in ("ulps", "atol", "model")))


def _xfail(y: Y) -> Xfail:
    if y.kind == "str":
        return Xfail(y.value)
    fields = _expect(y, "map", "xfail")
    if "reason" not in fields:
        raise _fail(y, "xfail needs a 'reason:'")
    for key, value in fields.items():
        if key not in ("reason", "strict", "dtype"):
            raise _fail(value, f"unknown xfail key {key!r}{did_you_mean(key, ['reason', 'strict', 'dtype'])}")
    strict = _expect(fields["strict"], "bool", "strict") if "strict" in fields else False
    dtypes = _dtypes(fields["dtype"]) if "dtype" in fields else ()
    return Xfail(_expect(fields["reason"], "str", "reason"), strict, dtypes)


def _target(y: Y) -> str:
    """`module:function`, `module:Class` (an autograd.Function), `module:Class.apply`, `module:obj.attr`."""
    text = _expect(y, "str", "target")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
        raise _fail(y, f"target must be 'package.module:function' (or module:Class, module:obj.attr), got {text!r}")
    return text


def _paths(y: Y, kinds: list[tuple[str, int]]) -> Selection:
    """`paths: [name or family, ...]` (only these), or `{only: [...], skip: [...]}`."""
    if y.kind in ("seq", "str"):
        return Selection(only=_path_terms(y, kinds, "paths"))
    fields = _expect(y, "map", "paths")
    if not fields:
        raise _fail(y, "paths: is empty (leave it out to run every path)")
    for key, value in fields.items():
        if key not in ("only", "skip"):
            raise _fail(value, f"paths takes 'only:' and 'skip:', not {key!r}{did_you_mean(key, ['only', 'skip'])}")
    return Selection(*(_path_terms(fields[k], kinds, f"paths {k}") if k in fields else () for k in ("only", "skip")))


def _path_terms(y: Y, kinds: list[tuple[str, int]], what: str) -> tuple[str, ...]:
    items = [y] if y.kind == "str" else _expect(y, "seq", what)
    if not items:
        raise _fail(y, f"{what}: is empty (leave it out to run every path)")
    terms = []
    for item in items:
        term = _expect(item, "str", "a path name or family")
        if not known(term, kinds):
            names = [*FAMILIES, *all_names(kinds)]
            raise _fail(item, f"{what}: {term!r} is no torch path of {', '.join(dict.fromkeys(k for k, _ in kinds))}"
                              f" nor a family{did_you_mean(term, names)} (families: {', '.join(FAMILIES)};"
                              f" `harness ops --paths` lists the paths)")
        terms.append(term)
    return tuple(terms)


def _check_paths_left(case_paths: Selection, checks: tuple[CheckSpec, ...], compiled: bool) -> None:
    """A case's own selection may not leave a check with no torch path to run (compiled variants
    count where the case has `compile:`)."""
    for check in checks:
        paths = list(paths_of(check.kind, check.order))
        if compiled:
            paths += [lookup(check.kind, f"{n}{COMPILED}?]") for n in CHECKS[check.kind].compiled]
        if not any(case_paths.keeps(p) and check.paths.keeps(p) for p in paths):
            raise HarnessError(f"paths: check {check.kind} has no torch path left to run"
                               + ("" if compiled else " (compiled paths need compile:)"), line=check.line)


# ---------------------------------------------------------------- checks


def _checks(y: Y | None, node: Y) -> tuple[CheckSpec, ...]:
    if y is None:
        raise _fail(node, "a case needs 'checks:' (for example [value, grad])")
    out = []
    for item in _expect(y, "seq", "checks"):
        if item.kind == "str":
            kind, options = item.value, {}
        else:
            mapping = _expect(item, "map", "a check")
            if len(mapping) != 1:
                raise _fail(item, "a check is a name or a one-key mapping like {vjp: {v: random}}")
            ((kind, opt_y),) = mapping.items()
            options = {} if opt_y.kind == "null" else _expect(opt_y, "map", f"options of {kind}")
        if kind not in CHECKS:
            raise _fail(item, f"unknown check {kind!r}{did_you_mean(kind, list(CHECKS))}")
        out.append(_PARSERS.get(kind, _check)(kind, options, item.line))
    if not out:
        raise _fail(y, "checks: is empty")
    return tuple(out)


def _known_options(kind: str, options: dict[str, Y]) -> None:
    """Only the options the registry gives the check (harness.registry)."""
    allowed = CHECKS[kind].option_names()
    for key, value in options.items():
        if key not in allowed:
            raise _fail(value, f"check {kind} has no option {key!r}{did_you_mean(key, list(allowed))}")


def _check(kind: str, options: dict[str, Y], line: int) -> CheckSpec:
    """A check whose options are the common ones and its vectors (`v:`, `tangent:`)."""
    _known_options(kind, options)
    random = CHECKS[kind].random
    return CheckSpec(
        kind, line,
        cotangent=_vector(options["v"], "v") if "v" in options else Vector(random="v" in random),
        tangent=_vector(options["tangent"], "tangent") if "tangent" in options else Vector(random="tangent" in random),
        tolerance=_tolerance(options["tolerance"]) if "tolerance" in options else None,
        xfail=_xfail(options["xfail"]) if "xfail" in options else None,
        paths=_paths(options["paths"], [(kind, 1)]) if "paths" in options else Selection())


def _derivative(kind: str, options: dict[str, Y], line: int) -> CheckSpec:
    """`derivative: {order: n, input: x}`: the n-th derivative by repeated backward (every input
    when `input:` is not given)."""
    _known_options(kind, options)
    if "order" not in options:
        raise _fail(Y(None, line, "null"), "derivative needs an order, as {derivative: {order: 3}}")
    order = _integer(options["order"], "order")
    if not 1 <= order <= MAX_DERIVATIVE_ORDER:
        raise _fail(options["order"], f"order must be from 1 to {MAX_DERIVATIVE_ORDER}, got {order}")
    chosen = (("input", _expect(options["input"], "str", "input")),) if "input" in options else ()
    return CheckSpec("derivative", line, tolerance=_tolerance(options["tolerance"]) if "tolerance" in options else None,
                     xfail=_xfail(options["xfail"]) if "xfail" in options else None,
                     options=(("order", order), *chosen),
                     paths=_paths(options["paths"], [("derivative", order)]) if "paths" in options else Selection())


def _minimize(kind: str, options: dict[str, Y], line: int) -> CheckSpec:
    """`minimize: {optimizer: Adam, steps: 50, lr: 0.01}`: the hyper-parameters of that optimizer."""
    name_y = options.get("optimizer")
    name = _expect(name_y, "str", "optimizer") if name_y is not None else "SGD"
    if name not in OPTIMIZERS:
        raise _fail(name_y or Y(None, line, "null"),
                    f"unknown optimizer {name!r}{did_you_mean(name, OPTIMIZERS)} (one of {', '.join(OPTIMIZERS)})")
    steps = _integer(options["steps"], "steps") if "steps" in options else 100
    if not 1 <= steps <= 10_000:
        raise _fail(options["steps"], f"steps must be from 1 to 10000, got {steps}")
    hyper: list[tuple[str, Any]] = [("optimizer", name), ("steps", steps)]
    for key, value in options.items():
        if key in ("optimizer", "steps", "tolerance", "xfail", "paths"):
            continue
        if key not in DEFAULTS[name]:
            raise _fail(value, f"{name} has no hyper-parameter {key!r}{did_you_mean(key, list(DEFAULTS[name]))}")
        kind = "bool" if isinstance(DEFAULTS[name][key], bool) else "num"
        hyper.append((key, _expect(value, kind, key)))
    return CheckSpec("minimize", line, tolerance=_tolerance(options["tolerance"]) if "tolerance" in options else None,
                     xfail=_xfail(options["xfail"]) if "xfail" in options else None, options=tuple(hyper),
                     paths=_paths(options["paths"], [("minimize", 1)]) if "paths" in options else Selection())


_PARSERS = {"derivative": _derivative, "minimize": _minimize}  # the others: _check


def _vector(y: Y, what: str) -> Vector:
    if y.kind == "str" and y.value == "random":
        return Vector(random=True)
    if y.kind == "str" and y.value == "ones":
        return Vector(random=False)
    if y.kind == "map":
        return Vector(False, tuple((name, *_literal(v)) for name, v in y.value.items()))
    return Vector(False, ((None, *_literal(y)),))


# ---------------------------------------------------------------- inputs


def _inputs(y: Y, seed: int, is_complex: bool = False) -> tuple[InputSpec, ...]:
    fields = _expect(y, "map", "inputs")
    if not fields:
        raise _fail(y, "inputs: needs at least one input")
    specs = []
    for name, value in fields.items():
        _check_identifier(name, value)
        specs.append(_input(name, value, seed, is_complex))
    counts = {len(s.points) for s in specs} - {1}
    if len(counts) > 1:
        raise _fail(y, f"inputs have different numbers of points: {sorted(counts)} (give one or the same)")
    return tuple(specs)


def _input(name: str, y: Y, seed: int, is_complex: bool = False) -> InputSpec:
    if is_complex:
        return _complex_input(name, y, seed)
    if y.kind != "map":
        shape, values = _literal(y)
        return InputSpec(name, shape, (values,))
    fields = y.value
    known = ("points", "shape", "sample", "edges", "count")
    for key, value in fields.items():
        if key not in known:
            raise _fail(value, f"unknown input key {key!r}{did_you_mean(key, known)}")
    if "points" in fields:
        return _listed(name, fields["points"])
    if "sample" not in fields:
        raise _fail(y, f"input {name!r} needs a value, 'points:' or 'sample:'")
    return _sampled(name, fields, y, seed)


def _listed(name: str, y: Y) -> InputSpec:
    items = _expect(y, "seq", "points")
    if not items:
        raise _fail(y, "points: is empty")
    if len(items) > MAX_POINTS:
        raise _fail(y, f"{len(items)} points (limit {MAX_POINTS})")
    literals = [_literal(item) for item in items]
    shapes = {s for s, _ in literals}
    if len(shapes) > 1:
        raise _fail(y, f"points of {name!r} have different shapes: {sorted(shapes)}")
    return InputSpec(name, literals[0][0], tuple(v for _, v in literals))


def _sampled(name: str, fields: dict[str, Y], y: Y, seed: int) -> InputSpec:
    shape = _shape(fields["shape"]) if "shape" in fields else ()
    count = _integer(fields["count"], "count") if "count" in fields else 1
    if not 1 <= count <= MAX_POINTS:
        raise _fail(fields["count"], f"count must be from 1 to {MAX_POINTS}")
    sampler = _distribution(fields["sample"])
    size = int(np.prod(shape, dtype=np.int64))
    if size * count > MAX_ELEMENTS:
        raise _fail(y, f"input {name!r} has {size * count} elements (limit {MAX_ELEMENTS})")
    critical, given = _edges(fields["edges"]) if "edges" in fields else (True, None)
    listed = _expect(given, "seq", "edges") if given else []
    if count == 1 and shape:
        if len(listed) > size:
            raise _fail(fields["edges"], f"{len(listed)} edges do not fit in shape {list(shape)}")
    elif count + len(listed) > MAX_POINTS:
        raise _fail(fields["edges"], f"input {name!r} has {count} points and {len(listed)} edges, each a point"
                                     f" of its own (limit {MAX_POINTS} points)")
    elif size * (count + len(listed)) > MAX_ELEMENTS:
        raise _fail(y, f"input {name!r} has {size * (count + len(listed))} elements with its edges"
                       f" (limit {MAX_ELEMENTS})")
    _charge(y, name, size * (count if count == 1 and shape else count + len(listed)))
    edges = [_literal_scalar(e) for e in listed]
    rng = np.random.default_rng([seed, *name.encode()])
    drawn = [np.asarray(sampler(rng, size), dtype=np.float64) for _ in range(count)]
    if not all(np.isfinite(d).all() for d in drawn):
        raise _fail(fields["sample"], f"sample: drew numbers past float64's range for {name!r}; narrow it")
    points = [tuple(Num(Fraction(v)) for v in d.tolist()) for d in drawn]
    doubles: list[np.ndarray | None] = list(drawn)
    if count == 1 and shape:
        points[0] = tuple(edges) + points[0][len(edges):]
        doubles[0] = None if edges else doubles[0]
    else:
        points += [tuple([e] * size) for e in edges]
        doubles += [None] * len(edges)
    return InputSpec(name, shape, tuple(points), doubles=tuple(doubles), critical=critical)


def _edges(y: Y) -> tuple[bool, Y | None]:
    """`edges:` -> (whether the ops' critical points join the draw, the listed values): a list (and
    the critical points), `critical` (them alone), `none` (neither), or {values: [...], critical:
    false} (the list alone)."""
    if y.kind == "str":
        if y.value not in ("critical", "none"):
            raise _fail(y, f"edges: is a list of values, 'critical', 'none' or {{values:, critical:}}, got {y.value!r}")
        return y.value == "critical", None
    if y.kind == "map":
        for key, v in y.value.items():
            if key not in ("values", "critical"):
                raise _fail(v, f"unknown edges key {key!r}{did_you_mean(key, ['values', 'critical'])}")
        critical = _expect(y.value["critical"], "bool", "critical") if "critical" in y.value else True
        return critical, y.value.get("values")
    return True, y


def _complex_input(name: str, y: Y, seed: int) -> InputSpec:
    """A complex input: `points:` of numbers or {re:, im:} mappings, or `sample:` (both parts drawn
    from the distribution, independently: genuinely complex points)."""
    if y.kind != "map" or set(y.value) <= {"re", "im"}:
        re, im = _complex_scalar(y)
        return InputSpec(name, (), ((re,),), ((im,),))
    fields = y.value
    known = ("points", "shape", "sample", "count")
    for key, value in fields.items():
        if key not in known:
            raise _fail(value, f"unknown key {key!r} for a complex input{did_you_mean(key, known)}")
    if "points" in fields:
        items = _expect(fields["points"], "seq", "points")
        if not items or len(items) > MAX_POINTS:
            raise _fail(fields["points"], f"points: needs 1 to {MAX_POINTS} values")
        pairs = [_complex_scalar(item) for item in items]
        return InputSpec(name, (), tuple((re,) for re, _ in pairs), tuple((im,) for _, im in pairs))
    if "sample" not in fields:
        raise _fail(y, f"input {name!r} needs a value, 'points:' or 'sample:'")
    real = _sampled(name, fields, y, seed)
    imag = _sampled(name + ".im", fields, y, seed)  # its own random stream
    return InputSpec(name, real.shape, real.points, imag.points)


def _complex_scalar(y: Y) -> tuple[Node, Node]:
    """A number (imaginary part 0) or {re: a, im: b}."""
    if y.kind != "map":
        return _literal_scalar(y), Num(Fraction(0))
    for key, value in y.value.items():
        if key not in ("re", "im"):
            raise _fail(value, f"a complex number is {{re: a, im: b}}, got key {key!r}")
    zero = Num(Fraction(0))
    return tuple(_literal_scalar(y.value[k]) if k in y.value else zero for k in ("re", "im"))  # type: ignore[return-value]


def _bound(y: Y, kind: str) -> float:
    """A distribution bound: a number (YAML reads `1e-3`, without a dot, as text: accept that)."""
    if y.kind == "str":
        try:
            return float(read_literal(y.value))
        except LiteralError:
            pass
    return float(_expect(y, "num", f"{kind} bound"))


def _shape(y: Y) -> tuple[int, ...]:
    items = _expect(y, "seq", "shape")
    if len(items) > MAX_DIMENSIONS:
        raise _fail(y, f"shape has {len(items)} dimensions (limit {MAX_DIMENSIONS})")
    dims = tuple(_integer(d, "a dimension", 1, MAX_ELEMENTS) for d in items)
    if math.prod(dims) > MAX_ELEMENTS:
        raise _fail(y, f"shape {list(dims)} has more than {MAX_ELEMENTS} elements")
    return dims


def _distribution(y: Y) -> Any:
    fields = _expect(y, "map", "sample")
    if len(fields) != 1:
        raise _fail(y, f"sample: needs one distribution ({', '.join(DISTRIBUTIONS)})")
    ((kind, args_y),) = fields.items()
    if kind not in DISTRIBUTIONS:
        raise _fail(args_y, f"unknown distribution {kind!r}{did_you_mean(kind, DISTRIBUTIONS)}")
    args = [_bound(a, kind) for a in _expect(args_y, "seq", kind)]
    if len(args) != 2:
        raise _fail(args_y, f"{kind} takes two numbers, got {len(args)}")
    a, b = args
    if kind == "uniform":
        if not a < b:
            raise _fail(args_y, f"uniform needs low < high, got [{a}, {b}]")
        if math.isinf(b - a):  # wider than float64 spans: draw on the halves, which it does
            return lambda rng, n: np.clip(2 * rng.uniform(a / 2, b / 2, n), a, b)
        return lambda rng, n: rng.uniform(a, b, n)
    if kind == "normal":
        if b <= 0:
            raise _fail(args_y, f"normal needs a positive standard deviation, got {b}")
        return lambda rng, n: rng.normal(a, b, n)
    if not 0 < a < b:
        raise _fail(args_y, f"loguniform needs 0 < low < high, got [{a}, {b}]")
    return lambda rng, n: np.clip(np.exp(rng.uniform(np.log(a), np.log(b), n)), a, b)


def _literal(y: Y) -> tuple[tuple[int, ...], tuple[Node, ...]]:
    """A scalar or nested list of exact numbers (or constant expressions) -> (shape, flat values)."""
    if y.kind != "seq":
        return (), (_literal_scalar(y),)
    if not y.value:
        raise _fail(y, "an empty list is not a tensor value")
    rows = [_literal(item) for item in y.value]
    shapes = {s for s, _ in rows}
    if len(shapes) > 1:
        raise _fail(y, f"ragged nested list: rows have shapes {sorted(shapes)}")
    values = tuple(v for _, vs in rows for v in vs)
    if len(values) > MAX_ELEMENTS:
        raise _fail(y, f"tensor literal has more than {MAX_ELEMENTS} elements")
    return (len(rows), *rows[0][0]), values


def _literal_scalar(y: Y) -> Node:
    if y.kind in ("num", "float"):  # an input's value: -0.0 and +-inf as given (torch accepts them)
        return Num(y.value)
    if y.kind == "str":
        node = _parse_at(y, set())
        return node
    raise _fail(y, f"expected a number, got {_show(y)}")


def schema() -> dict:
    """The JSON Schema of the case format (shipped as harness/schema/case.schema.json)."""
    import json
    from importlib.resources import files

    return json.loads(files("harness").joinpath("schema/case.schema.json").read_text(encoding="utf-8"))
