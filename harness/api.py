"""The Python API: `check` and `assert_derivatives`, for tests where gradcheck is used today.

    harness.assert_derivatives(MySoftplus.apply, "softplus(x)", x=torch.randn(100, dtype=torch.float64))

Both build one case from their arguments, validated exactly like a case file's (errors name the
caller's file:line), and run it through the same `check_case` as `harness run`. Inputs are torch
tensors (the reference is exact at their binary values; the dtype comes from them unless given),
Python numbers, or a case file's input specs ({"shape": [100], "sample": {"uniform": [-5, 5]}}).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from harness.cases import MAX_ELEMENTS, Case, case_from_data
from harness.errors import HarnessError
from harness.prepare import Options
from harness.results import CaseResult
from harness.run import check_case
from harness.target import from_callable, name

DEFAULT_CHECKS = ("value", "vjp", "grad2")  # gradcheck + gradgradcheck: every Function supports these paths
_HERE = str(Path(__file__).resolve())


class HarnessWarning(UserWarning):
    """Something the API left unchecked: a default check none of whose torch paths can run."""


def check(fn: Callable[..., object], expr: str | dict[str, str] | None = None, *,
          checks: Sequence[Any] | str | None = None, dtype: Any = None,
          tolerance: float | dict[str, float] | None = None,
          paths: Sequence[str] | dict[str, Sequence[str]] | None = None, seed: int = 0,
          **inputs: Any) -> list[CaseResult]:
    """Check `fn` (a callable, an autograd.Function or its `.apply`) against the exact `expr`
    (or named outputs {name: expr}) at the given inputs, which are passed to `fn` by name.
    Without `expr`, the exact side is traced from fn's own forward (harness.trace); with it, the
    traced forward is also compared with `expr` where the forward can be traced.

    checks: check names or {name: options} as in a case file (default: value, vjp, grad2).
    dtype: a dtype name, a torch.dtype or a list (default: the tensors' dtype, else float64).
    tolerance: ulps, or {"ulps": .., "atol": .., "model": ..}. paths: torch path names or
    families to run, or {"only": [...], "skip": [...]}. One CaseResult per dtype."""
    return _run(_case(fn, expr, checks, dtype, tolerance, paths, seed, inputs, *_caller()))


def _run(case: Case) -> list[CaseResult]:
    """The one check_case of both entry points: the callable is given, so no import permission is
    needed, and the caller's test framework owns time limits."""
    return check_case(case, Options(allow_targets=True, timeout=0.0))


def assert_derivatives(fn: Callable[..., object], expr: str | dict[str, str] | None = None, *,
                       checks: Sequence[Any] | str | None = None, dtype: Any = None,
                       tolerance: float | dict[str, float] | None = None,
                       paths: Sequence[str] | dict[str, Sequence[str]] | None = None, seed: int = 0,
                       **inputs: Any) -> list[CaseResult]:
    """`check`, raising AssertionError (the failure messages, one per line) when a torch path fails
    or errors, or when a check that was asked for has no torch path that can run. A default
    check with no runnable path (grad2 of a @once_differentiable backward) is a HarnessWarning."""
    case = _case(fn, expr, checks, dtype, tolerance, paths, seed, inputs, *_caller())
    results = _run(case)
    problems = [c.message for r in results for c in r.comparisons if c.status.problem]
    problems += [r.message for r in results if r.status == "error" and not r.comparisons]
    for r in results:
        for kind, why in r.unrun:
            text = f"{r.name} [{r.dtype}] > {kind}: no torch path could run: {why}"
            if checks is None:
                warnings.warn(text, HarnessWarning, stacklevel=2)
            else:
                problems.append(text)
    if problems:
        head = f"{case.name}: {len(problems)} problem{'s' * (len(problems) > 1)} against the exact reference"
        raise AssertionError("\n".join([head, *problems]))
    return results


def _caller() -> tuple[str, int]:
    """The file and line that called the API (the first frame outside this module)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _HERE:
        frame = frame.f_back  # type: ignore[assignment]
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("<python>", 1)


def _case(fn: Callable[..., object], expr: str | dict[str, str] | None, checks: Any, dtype: Any, tolerance: Any,
          paths: Any, seed: int, inputs: dict[str, Any], file: str, line: int) -> Case:
    try:
        target = from_callable(fn)
        data: dict[str, Any] = {"name": name(target), "seed": _seed(seed), "inputs": _inputs(inputs),
                                "checks": _checks(checks), "dtype": _dtypes(dtype, inputs)}
        if expr is not None and not isinstance(expr, str | dict):
            raise HarnessError(f"expr must be text or {{output: text}} (or None: fn's forward is traced), got"
                               f" {type(expr).__name__}")
        if expr is not None:
            data["outputs" if isinstance(expr, dict) else "expr"] = expr
        if tolerance is not None:
            data["tolerance"] = _tolerance(tolerance)
        if paths is not None:
            data["paths"] = _paths(paths)
    except HarnessError as exc:
        raise exc.at(file, line) from None
    devices = sorted({v.device.type for v in inputs.values() if isinstance(v, torch.Tensor)} - {"cpu"})
    if devices:
        data["device"] = devices[0]
    return replace(case_from_data(data, file, line, traced=True), target=target.callable)


def _inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    if not inputs:
        raise HarnessError("give the inputs as keywords: check(fn, expr, x=...)")
    return {k: _input(v) for k, v in inputs.items()}


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HarnessError(f"seed must be a whole number >= 0, got {seed!r}")
    return seed


def _checks(checks: object) -> list[Any]:
    if checks is None:
        return list(DEFAULT_CHECKS)
    if isinstance(checks, str):
        return [checks]
    if not isinstance(checks, list | tuple) or not checks:
        raise HarnessError(f"checks must be a check name or a non-empty list of them, got {checks!r}")
    return list(checks)


def _tolerance(tolerance: object) -> dict[str, Any]:
    if isinstance(tolerance, bool):
        raise HarnessError(f"tolerance must be ulps (a number) or a mapping, got {tolerance!r}")
    if isinstance(tolerance, int | float):
        return {"ulps": tolerance}
    if not isinstance(tolerance, dict):
        raise HarnessError(f"tolerance must be ulps (a number) or {{'ulps':, 'atol':, 'model':}}, got {tolerance!r}")
    return dict(tolerance)


def _paths(paths: object) -> Any:
    if isinstance(paths, str):
        return [paths]
    if isinstance(paths, dict):
        return dict(paths)
    if isinstance(paths, list | tuple):
        return list(paths)
    raise HarnessError(f"paths must be names, a list of them or {{'only': [...], 'skip': [...]}}, got {paths!r}")


def _input(value: Any) -> Any:
    """A tensor as its exact values (nested lists of doubles); anything else as given."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.numel() > MAX_ELEMENTS:
        raise HarnessError(f"a tensor input of {value.numel()} elements is over the limit of {MAX_ELEMENTS}")
    if value.layout is not torch.strided or value.is_meta or value.is_quantized or value.is_nested:
        raise HarnessError("tensor inputs must be ordinary dense tensors with values (not sparse, meta, quantized"
                           " or nested)")
    value = value.detach().cpu()
    if value.is_complex():
        if value.dim():
            raise HarnessError("a complex tensor input must be a scalar here; give several as"
                               " {'points': [{'re': .., 'im': ..}, ...]}")
        z = complex(value.item())
        return {"re": z.real, "im": z.imag}
    return value.to(torch.float64).tolist()


def _dtypes(dtype: Any, inputs: dict[str, Any]) -> list[str]:
    if dtype is None:
        found = {str(v.dtype).removeprefix("torch.") for v in inputs.values() if isinstance(v, torch.Tensor)}
        if len(found) > 1:
            raise HarnessError(f"tensor inputs have different dtypes ({', '.join(sorted(found))}): pass dtype=")
        return sorted(found) or ["float64"]
    items = dtype if isinstance(dtype, list | tuple) else [dtype]
    if not items:
        raise HarnessError("dtype= is empty: give a dtype or a list of them")
    return [str(d).removeprefix("torch.") for d in items]


__all__ = ["DEFAULT_CHECKS", "HarnessWarning", "assert_derivatives", "check"]
