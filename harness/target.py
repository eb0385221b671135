"""A user's callable under test: found as people name it, called with the case's inputs by name.

`resolve(spec, case_file)` imports `module:function`, `module:Class` (an autograd.Function
subclass: its `.apply`), `module:Class.apply` or `module:obj.attr`, looking for the module next
to the case file first, then in the working directory, and leaves `sys.path` as it was.
`bind(target, inputs, n_outputs)` makes it `f(*primals) -> tuple of tensors`, passing each input
to the parameter of its name (positional only for `*args`, for a lone input and a lone required
parameter, or where Python cannot read the signature, as for builtins).
"""

from __future__ import annotations

import functools
import html  # noqa: F401  (with xml: the reports' standard modules, in sys.modules before any target)
import importlib
import inspect
import os
import sys
import xml.etree.ElementTree  # noqa: F401
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.autodiff import Function, as_outputs
from harness.errors import CaseTimeout, HarnessError, unexpected


@dataclass(frozen=True)
class Target:
    """A resolved target: the callable, and the autograd.Function class behind it, if any."""

    callable: Callable[..., object]
    function_class: type | None = None
    signature_of: Callable[..., object] | None = None  # whose parameters the inputs bind to (nn.Module.forward)

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
    if isinstance(obj, torch.nn.Module):  # its parameters are those of forward, not __call__'s *args
        return Target(obj, None, obj.forward)
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) and getattr(obj, "__name__", "") == (
            "apply"):
        return Target(obj, owner)  # type: ignore[arg-type]
    if not callable(obj):
        raise HarnessError(f"target {_short(repr(obj))} is not callable")
    return Target(obj)  # type: ignore[arg-type]


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve(spec: str, case_file: str | None = None) -> Target:
    """Import the target a case names; any failure is one HarnessError line."""
    module_name, _, attribute = spec.partition(":")
    shown = _short(spec)
    top = module_name.split(".")[0]
    folders = _search_folders(case_file)
    if top in sys.stdlib_module_names and (top not in sys.modules or any(
            (f / f"{top}.py").is_file() or (f / top).is_dir() for f in folders)):
        raise HarnessError(f"target module {top!r} has the name of a standard-library module (which the harness"
                           " uses and would import instead): rename it")
    with _path_prepended(folders):
        _check_not_shadowed(module_name, folders[0] if _is_file(case_file) else None)
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                where = " or ".join(str(f) for f in folders)
                raise HarnessError(f"cannot import target {shown!r}: no module {_short(exc.name)!r} next to the case"
                                   f" file, in {where} or on sys.path") from None
            raise HarnessError(f"cannot import target {shown!r}: {unexpected(exc)}") from None
        except (KeyboardInterrupt, MemoryError, CaseTimeout):
            raise
        except BaseException as exc:  # the user's module failed (or called exit) while it was imported
            raise HarnessError(f"cannot import target {shown!r}: {unexpected(exc)}") from None
    for i, part in enumerate(attribute.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            have = ".".join([module_name, *attribute.split(".")[:i]])
            raise HarnessError(f"cannot import target {shown!r}: {_short(have)} has no attribute"
                               f" {_short(part)!r}") from None
        except Exception as exc:  # a property that raises
            raise HarnessError(f"cannot import target {shown!r}: {unexpected(exc)}") from None
    return from_callable(obj)


def _search_folders(case_file: str | None) -> list[Path]:
    """The case file's folder (as the file is named: a symlink's own folder), then the working
    directory."""
    folders = []
    if _is_file(case_file):
        folders.append(Path(os.path.abspath(case_file)).parent)  # type: ignore[arg-type]
    folders.append(Path(os.path.abspath(os.getcwd())))
    return list(dict.fromkeys(folders))


def _is_file(case_file: str | None) -> bool:
    """A case that came from a file (not '<text>' or a Python caller's '<...>')."""
    return bool(case_file) and not case_file.startswith("<")  # type: ignore[union-attr]


@contextmanager
def _path_prepended(folders: Sequence[Path]) -> Iterator[None]:
    """The folders first on sys.path while the block runs; sys.path exactly as it was afterwards."""
    original, saved = sys.path, list(sys.path)
    sys.path[:0] = [str(f) for f in folders]
    try:
        yield
    finally:
        sys.path = original  # the very list object, with its contents, whatever the module did
        sys.path[:] = saved


def _check_not_shadowed(module_name: str, folder: Path | None) -> None:
    """A module already imported under a name that a file or package in the case's folder also has
    (the target's own module, or a sibling it imports) would be used silently in place of that
    folder's: refuse instead."""
    if folder is None:
        return
    for name in sorted({module_name.split(".")[0], *_module_names(folder)}):
        loaded = sys.modules.get(name)
        mine = folder / f"{name}.py" if (folder / f"{name}.py").is_file() else folder / name
        if loaded is None or not mine.exists() or _installed(loaded):
            continue  # an installed module (the standard library's xml) is what `import` finds first
        places = [p for p in [getattr(loaded, "__file__", None), *(getattr(loaded, "__path__", None) or [])] if p]
        if not any(Path(p).resolve() == mine.resolve() or mine.resolve() in Path(p).resolve().parents
                   for p in places):
            raise HarnessError(f"module {name!r} is already imported from {places[0] if places else 'a built-in'};"
                               f" {mine} has the same name: rename one of them")


def _installed(module: object) -> bool:
    """A module of the standard library or of an installed package, not of someone's folder."""
    name = getattr(module, "__name__", "")
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    origin = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
    return origin is not None and ("site-packages" in Path(origin).parts or "dist-packages" in Path(origin).parts)


@functools.lru_cache(maxsize=256)
def _module_names(folder: Path) -> frozenset[str]:
    """The modules and packages a folder holds (what `import NAME` could find there)."""
    try:
        return frozenset(p.stem if p.suffix == ".py" else p.name for p in folder.iterdir()
                         if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and p.name.isidentifier()))
    except OSError:
        return frozenset()


def parameters(target: Target) -> list[inspect.Parameter] | None:
    """The parameters the inputs bind to: an autograd.Function's forward without ctx (classic
    style), else the callable's own; None where Python cannot read a signature."""
    try:
        if target.function_class is not None:
            params = list(inspect.signature(target.function_class.forward).parameters.values())
            return params[1:] if target.style == "classic" else params
        return list(inspect.signature(target.signature_of or target.callable).parameters.values())
    except (TypeError, ValueError):
        return None


def bind(target: Target, inputs: Sequence[str], n_outputs: int | None,
         output_names: Sequence[str] | None = None) -> Function:
    """f(*primals) -> tuple of tensors, each primal passed to the parameter of its input's name."""
    params = parameters(target)
    call = target.callable
    names = list(output_names) if output_names is not None else None
    if params is None:  # a builtin: positional, in the case's order
        return lambda *primals: as_outputs(_contained(call, list(primals), {}), n_outputs, names)
    positional, keywords = _plan(target, params, inputs)
    if target.function_class is not None and keywords:  # Function.apply takes positional arguments only
        positional, defaults = _all_positional(target, params, positional, keywords)
    else:
        defaults = {}
    index = {name: i for i, name in enumerate(inputs)}
    slots = [(index[n], None) if n in index else (None, defaults[n]) for n in positional]  # (input, or default)
    named = [] if target.function_class is not None else [(n, index[n]) for n in keywords]

    def function(*primals: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = [p.clone() for p in primals]  # what the target does to its inputs stays with this call
        args = [given[i] if i is not None else default for i, default in slots]
        return as_outputs(_contained(call, args, {k: given[i] for k, i in named}), n_outputs, names)

    return function


def _contained(call: Callable[..., object], args: list, kwargs: dict) -> object:
    """Call user code; an exit it asks for (SystemExit, GeneratorExit) is that call's error, not
    the run's end."""
    try:
        return call(*args, **kwargs)
    except (SystemExit, GeneratorExit) as exc:
        raise RuntimeError(f"the target raised {type(exc).__name__}({_short(str(exc))})") from None


def _all_positional(target: Target, params: list[inspect.Parameter], positional: list[str],
                    keywords: list[str]) -> tuple[list[str], dict[str, object]]:
    """An autograd.Function's inputs as positional arguments in forward's order, the parameters in
    between filled with their defaults; keyword-only parameters cannot be passed through .apply."""
    P = inspect.Parameter
    given = set(positional) | set(keywords)
    keyword_only = [p.name for p in params if p.kind is P.KEYWORD_ONLY and p.name in given]
    if keyword_only:
        raise HarnessError(f"target {_show(target, params)}: {keyword_only[0]!r} is keyword-only, which"
                           " autograd.Function.apply cannot pass")
    order: list[str] = []
    defaults: dict[str, object] = {}
    last = max(i for i, p in enumerate(params) if p.name in given)
    for p in params[: last + 1]:
        order.append(p.name)
        if p.name not in given:
            defaults[p.name] = p.default
    return order, defaults


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
    if rest and var_keyword:
        keywords += rest  # **kwargs: by name still
    elif rest and var_positional and not missing and not gap:
        positional += rest  # *args: the remaining inputs in the case's order
    elif rest:
        raise HarnessError(f"target {_show(target, params)} has no parameter {rest[0]!r} (inputs are passed by"
                           " name)")
    if missing:
        raise HarnessError(f"target {_show(target, params)} needs {missing[0]!r}, which is not an input of the case")
    return positional, keywords


def _show(target: Target, params: list[inspect.Parameter]) -> str:
    called = f"{name(target)}.forward" if target.function_class is not None else name(target)
    shown = ", ".join(str(p) for p in params)
    return f"{called}({'ctx, ' if target.style == 'classic' else ''}{shown})"


def name(target: Target) -> str:
    """The Function's class name, or the callable's, for messages."""
    cls = target.function_class
    return cls.__qualname__ if cls is not None else getattr(target.callable, "__qualname__", repr(target.callable))


__all__ = ["Target", "bind", "name", "from_callable", "resolve"]
