"""`check_case(case) -> results`: the one orchestration used by the CLI, pytest and fuzzing.

Per dtype: prepare the case (harness.prepare: round its numbers, build the exact outputs and the
torch callable), then run every check (harness.checks): each names its torch paths, each path is
compared with one exact reference. Nothing escapes: a problem becomes an `error` result (or an
`error` comparison) with file:line.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from harness import complex as cx
from harness.cases import BadCase, Case, CheckSpec, Xfail
from harness.checks import runner, torch_warnings_quiet
from harness.errors import CaseTimeout, HarnessError, clip, unexpected
from harness.limits import memory_limit, time_limit
from harness.prepare import Options, Prepared, prepare
from harness.results import CaseResult, Comparison, Status, unsupported_reason


def runs(case: Case, options: Options = Options()) -> tuple[tuple[str, str], ...]:
    """The (dtype, device) pairs a case is checked in: its dtypes on its devices (or the one device
    the options name), in the order check_case returns their results."""
    devices = (options.device,) if options.device else case.devices
    return tuple((d, v) for v in devices for d in case.dtypes)


def expected_failure(case: Case, dtype: str, check: str) -> Xfail | None:
    """The xfail that covers one check in one dtype: the case's, else that check's own."""
    if case.xfail is not None and case.xfail.applies(dtype):
        return case.xfail
    return next((s.xfail for s in case.checks if s.kind == check and s.xfail is not None and s.xfail.applies(dtype)),
                None)


@dataclass(frozen=True)
class Outcome:
    """What one check of a result came to, for a caller that reports each check on its own (the
    pytest plugin): "pass"; "fail" (text: the failures); "xfail" (the failure its xfail expects, or,
    with `elsewhere`, the case's expected failure being in another check); "skip" (no path of it
    could run: text says why)."""

    kind: str
    text: str = ""
    elsewhere: bool = False


def check_outcome(case: Case, result: CaseResult, check: str) -> Outcome:
    if result.status == Status.ERROR and not result.comparisons:
        return Outcome("fail", result.message)
    mine = [c for c in result.comparisons if c.check == check]
    bad = [c for c in mine if c.status.problem]
    if bad:
        return Outcome("fail", "\n".join(c.message for c in bad))
    expected = expected_failure(case, result.dtype, check)
    xfailed = [c for c in mine if c.status == Status.XFAIL]
    if xfailed and expected is not None:
        return Outcome("xfail", "\n".join(c.message for c in xfailed))
    if result.status == Status.XFAIL and case.xfail is not None and case.xfail.applies(result.dtype):
        return Outcome("xfail", f"{case.xfail.reason} (the case fails in another check)", elsewhere=True)
    if all(c.status == Status.UNSUPPORTED for c in mine):  # (a check always makes a comparison)
        reasons = dict.fromkeys(unsupported_reason(c) for c in mine)
        return Outcome("skip", f"no torch path of {check} can run: {'; '.join(reasons)}")
    return Outcome("pass")


def check_case(case: Case | BadCase, options: Options = Options()) -> list[CaseResult]:
    """Check one case in each of its dtypes. Never raises (but for KeyboardInterrupt)."""
    if isinstance(case, BadCase):
        return [CaseResult(case.name, case.file, case.line, "-", "error", message=case.message, bad_input=True)]
    results = []
    for dtype, device in runs(case, options):
        start = time.perf_counter()
        try:
            with time_limit(options.timeout), memory_limit(options.memory_mb), _no_cycle_collection():
                results.append(_check_dtype(case, dtype, options, device))
        except CaseTimeout:
            results.append(CaseResult(case.name, case.file, case.line, dtype, Status.ERROR,
                                      message=f"{case.file}:{case.line}: error: timed out after {options.timeout:g} s",
                                      seconds=time.perf_counter() - start, device=device, limit="timeout"))
        except MemoryError:
            results.append(CaseResult(case.name, case.file, case.line, dtype, Status.ERROR,
                                      message=f"{case.file}:{case.line}: error: out of memory (limit "
                                              f"{options.memory_mb:g} MB)", seconds=time.perf_counter() - start,
                                      device=device, limit="memory"))
        except Exception as exc:  # the case's boundary: whatever escaped the stages is this case's error
            results.append(CaseResult(case.name, case.file, case.line, dtype, "error",
                                      message=f"{case.file}:{case.line}: {unexpected(exc)}",
                                      seconds=time.perf_counter() - start, device=device))
    return results


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A check makes millions of small acyclic objects (balls, tuples, lists), which reference
    counting frees; the cycle collector would scan them over and over (3x the time at 10^4
    elements). It is paused while a case runs."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check_dtype(case: Case, dtype: str, options: Options, device: str = "cpu") -> CaseResult:
    start = time.perf_counter()
    xfail = case.xfail if case.xfail is not None and case.xfail.applies(dtype) else None
    base = CaseResult(case.name, case.file, case.line, dtype, "error", xfail=xfail.reason if xfail else None,
                      device=device)
    try:
        ctx = prepare(case, dtype, options, device)
    except HarnessError as exc:
        return replace(base, message=str(exc.at(case.file, case.line)), bad_input=True,
                       seconds=time.perf_counter() - start)
    except Exception as exc:  # a bug or a torch/SymPy failure: report it, keep the run going
        return replace(base, message=f"{case.file}:{case.line}: {unexpected(exc)}", seconds=time.perf_counter() - start)
    comparisons = _forward_comparisons(ctx, case, dtype)
    unrun: list[tuple[str, str]] = []  # (check, why) for each check none of whose paths ran
    for index, check in enumerate(case.checks):
        found = _apply_xfail(_run_check(ctx, index, check), check, dtype)
        if found and all(c.status == "unsupported" for c in found):
            unrun.append((check.kind, unsupported_reason(found[0])))
        comparisons += found
    status, message = _case_status(case, xfail, comparisons, unrun)
    exact = {name: _text(out.term(0).expr) for name, out in ctx.outputs.items()}
    for name, out in (ctx.complex_outputs or {}).items():
        exact[f"{name} (complex)"] = _text(out.value)
        exact[f"{name} holomorphy"] = cx.holomorphy(out)
    return replace(base, status=status, comparisons=tuple(comparisons), message=message,
                   seconds=time.perf_counter() - start, exact=exact, unrun=tuple(unrun),
                   exact_side=ctx.exact_side, untraced=ctx.untraced,
                   bad_input=any(c.bad_input and c.status == "error" for c in comparisons))


def _text(value: object) -> str:
    """An exact expression as the reports show it; printing never fails a case (SymPy refuses
    integers of more than 4,300 digits), and a huge one is cut short."""
    try:
        text = str(value)
    except Exception as exc:
        return f"(not printable: {type(exc).__name__})"
    return clip(text, 2_000)


def _run_check(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    try:
        with torch_warnings_quiet():  # once per check, not on the per-point hot path
            return runner(check.kind)(ctx, index, check)
    except HarnessError as exc:
        message, bad, limit = str(exc.at(ctx.case.file, check.line)), True, ""
    except Exception as exc:
        message, bad = f"{ctx.case.file}:{check.line}: {unexpected(exc)}", False
        limit = "memory" if isinstance(exc, MemoryError) else ""
    return [Comparison(check.kind, "-", "", Status.ERROR, message=f"{ctx.breadcrumb} > {check.kind}: {message}",
                       bad_input=bad, boundary=True, limit=limit)]


def _forward_comparisons(ctx: Prepared, case: Case, dtype: str) -> list[Comparison]:
    """The traced forward against expr:, if the case has both: a failure of the forward's value,
    which the value check's xfail covers when the case has one (F.softplus's cut at its threshold
    is the same finding in either)."""
    value = next((c for c in case.checks if c.kind == "value" and c.xfail is not None), None)
    return _apply_xfail(list(ctx.forward), value, dtype) if value is not None else list(ctx.forward)


def _apply_xfail(comparisons: list[Comparison], check: CheckSpec, dtype: str) -> list[Comparison]:
    if check.xfail is None or not check.xfail.applies(dtype):
        return comparisons
    failed = any(_torch_failed(c) for c in comparisons)
    status = "xfail" if failed else ("fail" if check.xfail.strict else "xpass")
    note = f" [xfail: {check.xfail.reason}]"
    return [replace(c, status=status, message=c.message + note) if c.status == "pass" or _torch_failed(c) else c
            for c in comparisons]


def _torch_failed(c: Comparison) -> bool:
    """A failure that an xfail may expect: a mismatch, or a torch path that raised. The check's own
    boundary error (bad input, a limit, a crash of the harness) stays an error."""
    return c.status == Status.FAIL or (c.status == Status.ERROR and not c.boundary)


def _case_status(case: Case, xfail: Xfail | None, comparisons: list[Comparison],
                 unrun: list[tuple[str, str]]) -> tuple[str, str]:
    """A failure anywhere makes the case fail (errors are counted beside it, not instead); then
    errors; then a check none of whose paths could run; then kinks, undefined points, xfail."""
    failing = [c for c in comparisons if c.status == "fail"]
    errors = [c for c in comparisons if c.status == "error"]
    harness_errors = [c for c in errors if not _torch_failed(c)]
    first = (failing or errors)[0].message if failing or errors else ""
    if xfail is not None:
        if harness_errors:  # a check that could not run is not the failure expected
            return "error", harness_errors[0].message
        if failing or errors:
            return "xfail", f"{xfail.reason} ({first})"
        if xfail.strict:
            return "fail", f"{case.file}:{case.line}: strict xfail passed: {xfail.reason}"
        return "xpass", f"xfail passed: {xfail.reason}"
    if failing:
        also = f" (and {len(errors)} error{'s' * (len(errors) > 1)}: {errors[0].message})" if errors else ""
        return "fail", first + also
    if errors:
        return "error", first
    if unrun:
        kind, why = unrun[0]
        return "unsupported", f"check {kind}: no torch path could run: {why}"
    for special in ("kink", "undefined", "xfail", "xpass"):
        if any(c.status == special for c in comparisons):
            return special, next(c.message for c in comparisons if c.status == special)
    return "pass", ""


__all__ = ["Options", "check_case"]
