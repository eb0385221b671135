"""A user's callable under test: found as people name it, called with the case's inputs by name.

`resolve(spec, case_file)` imports `module:function`, `module:Class` (an autograd.Function
subclass: its `.apply`), `module:Class.apply` or `module:obj.attr`, looking for the module next
to the case file first, then in the working directory, and leaves `sys.path` as it was.
`bind(target, inputs, n_outputs)` makes it `f(*primals) -> tuple of tensors`, passing each input
to the parameter of its name (positional only for `*args`, for a lone input and a lone required
parameter, or where Python cannot read the signature, as for builtins).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.autodiff import Function, as_outputs
from harness.errors import HarnessError, unexpected


@dataclass(frozen=True)
class Target:
    """A resolved target: the callable, and the autograd.Function class behind it, if any."""

    callable: Callable[..., object]
    function_class: type | None = None

    @property
    def style(self) -> str:
        """'classic' (forward(ctx, ...)), 'new' (setup_context), or '' for a plain callable."""
        if self.function_class is None:
            return ""
        return "new" if has_setup_context(self.function_class) else "classic"


def has_setup_context(cls: type) -> bool:
    """Whether an autograd.Function overrides setup_context (torch's own test for the new style)."""
    base = torch.autograd.function._SingleLevelFunction.setup_context
    return getattr(cls, "setup_context", base) is not base


def from_callable(obj: object) -> Target:
    """A callable given directly (the Python API), with the same reading of Function classes."""
    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        return Target(obj.apply, obj)
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) and getattr(obj, "__name__", "") == (
            "apply"):
        return Target(obj, owner)  # type: ignore[arg-type]
    if not callable(obj):
        raise HarnessError(f"target {obj!r} is not callable")
    return Target(obj)  # type: ignore[arg-type]


def resolve(spec: str, case_file: str | None = None) -> Target:
    """Import the target a case names; any failure is one HarnessError line."""
    module_name, _, attribute = spec.partition(":")
    folders = _search_folders(case_file)
    with _path_prepended(folders):
        _check_not_shadowed(module_name, folders)
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                where = " or ".join(str(f) for f in folders)
                raise HarnessError(f"cannot import target {spec!r}: no module {exc.name!r} next to the case file, in"
                                   f" {where} or on sys.path") from None
            raise HarnessError(f"cannot import target {spec!r}: {unexpected(exc)}") from None
        except Exception as exc:  # the user's module failed while it was imported
            raise HarnessError(f"cannot import target {spec!r}: {unexpected(exc)}") from None
    for i, part in enumerate(attribute.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            have = ".".join([module_name, *attribute.split(".")[:i]])
            raise HarnessError(f"cannot import target {spec!r}: {have} has no attribute {part!r}") from None
    return from_callable(obj)


def _search_folders(case_file: str | None) -> list[Path]:
    folders = []
    if case_file and not case_file.startswith("<"):
        folders.append(Path(case_file).resolve().parent)
    folders.append(Path.cwd().resolve())
    return list(dict.fromkeys(folders))


@contextmanager
def _path_prepended(folders: Sequence[Path]) -> Iterator[None]:
    """The folders first on sys.path while the block runs; sys.path exactly as it was afterwards."""
    saved = list(sys.path)
    sys.path[:0] = [str(f) for f in folders]
    try:
        yield
    finally:
        sys.path[:] = saved


def _check_not_shadowed(module_name: str, folders: Sequence[Path]) -> None:
    """A module already imported under this name from elsewhere would be used silently for a case
    whose own folder has a module of that name: refuse instead."""
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None:
        return
    for folder in folders:
        mine = next((p for p in (folder / f"{top}.py", folder / top / "__init__.py") if p.is_file()), None)
        if mine is None:
            continue
        origin = getattr(loaded, "__file__", None)
        if origin is None or Path(origin).resolve() != mine.resolve():
            raise HarnessError(f"module {top!r} is already imported from {origin or 'a built-in'}; {mine} has the"
                               " same name: rename one of them")
        return


def parameters(target: Target) -> list[inspect.Parameter] | None:
    """The parameters the inputs bind to: an autograd.Function's forward without ctx (classic
    style), else the callable's own; None where Python cannot read a signature."""
    try:
        if target.function_class is not None:
            params = list(inspect.signature(target.function_class.forward).parameters.values())
            return params[1:] if target.style == "classic" else params
        return list(inspect.signature(target.callable).parameters.values())
    except (TypeError, ValueError):
        return None


def bind(target: Target, inputs: Sequence[str], n_outputs: int) -> Function:
    """f(*primals) -> tuple of tensors, each primal passed to the parameter of its input's name."""
    params = parameters(target)
    call = target.callable
    if params is None:  # a builtin: positional, in the case's order
        return lambda *primals: as_outputs(call(*primals), n_outputs)
    positional, keywords = _plan(target, params, inputs)
    index = {name: i for i, name in enumerate(inputs)}
    slots = [index[name] for name in positional]
    named = [(name, index[name]) for name in keywords]

    def function(*primals: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return as_outputs(call(*(primals[i] for i in slots), **{k: primals[i] for k, i in named}), n_outputs)

    return function


def _plan(target: Target, params: list[inspect.Parameter], inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Which inputs go positionally (in parameter order) and which by keyword. One input and one
    parameter that has no default pair up whatever their names (no order to get wrong)."""
    P = inspect.Parameter
    required = [p for p in params if p.default is P.empty and p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    if len(inputs) == 1 and len(required) == 1 and inputs[0] not in {p.name for p in params} and not any(
            p.kind is P.KEYWORD_ONLY and p.default is P.empty for p in params):
        return list(inputs), []
    given, positional, keywords, missing = set(inputs), [], [], []
    gap = False  # a defaulted positional parameter the case does not give: later ones go by keyword
    var_positional = any(p.kind is P.VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind is P.VAR_KEYWORD for p in params)
    for p in params:
        if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            if p.name in given:
                if gap and p.kind is P.POSITIONAL_ONLY:
                    raise HarnessError(f"target {_show(target, params)}: positional-only {p.name!r} comes after"
                                       " a parameter the case does not give")
                (keywords if gap else positional).append(p.name)
            elif p.default is P.empty:
                missing.append(p.name)
            else:
                gap = True
        elif p.kind is P.KEYWORD_ONLY:
            if p.name in given:
                keywords.append(p.name)
            elif p.default is P.empty:
                missing.append(p.name)
    rest = [x for x in inputs if x not in positional and x not in keywords]
    if rest and var_positional and not missing and not gap:
        positional += rest  # *args: the remaining inputs in the case's order
    elif rest and var_keyword:
        keywords += rest
    elif rest:
        raise HarnessError(f"target {_show(target, params)} has no parameter {rest[0]!r} (inputs are passed by"
                           " name)")
    if missing:
        raise HarnessError(f"target {_show(target, params)} needs {missing[0]!r}, which is not an input of the case")
    return positional, keywords


def _show(target: Target, params: list[inspect.Parameter]) -> str:
    owner = target.function_class
    name = f"{owner.__qualname__}.forward" if owner is not None else getattr(target.callable, "__qualname__",
                                                                              repr(target.callable))
    shown = ", ".join(str(p) for p in params)
    return f"{name}({'ctx, ' if target.style == 'classic' else ''}{shown})"


def name(target: Target) -> str:
    """The Function's class name, or the callable's, for messages."""
    cls = target.function_class
    return cls.__qualname__ if cls is not None else getattr(target.callable, "__qualname__", repr(target.callable))


__all__ = ["Target", "bind", "name", "from_callable", "resolve"]
