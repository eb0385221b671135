"""The regression gate: compare a run with a baseline report (a `report.json` written earlier).

A case fails the gate when it newly fails (a comparison that passed, or was a kink, now fails) or
when a comparison's error in ulps grew past a factor; cases that failed in the baseline and pass now
are listed as fixed. Error growth is gated only on the kind of CPU the baseline was written on
(its `versions.cpu`, cli.cpu()): on another one the same torch rounds differently (the bundled
baseline of an earlier machine read on an AMD AVX2 one: errors of its matrix cases up to 2.4 times
larger, all still within what is allowed), so there the growth is listed as drift, and only
statuses are gated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.results import STATUSES, CaseResult, Status

GROWTH_FLOOR = 1.0  # errors below one ulp never count as growth


@dataclass(frozen=True)
class Gate:
    regressions: tuple[str, ...]
    fixed: tuple[str, ...]
    drift: tuple[str, ...] = ()  # error growth on another CPU than the baseline's
    other_cpu: str | None = None  # the baseline's CPU where it is not this run's (or "a CPU it does not record")

    @property
    def ok(self) -> bool:
        return not self.regressions


def load(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read baseline {path}: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("harness.report/"):
        raise HarnessError(f"{path} is not a harness report (no 'schema: harness.report/...')")
    return doc


def _was_problem(old: dict) -> bool:
    """A baseline case that failed or errored (its status as the file says it; unknown text is none)."""
    status = old.get("status")
    return status in STATUSES and Status(status).problem


def _ulps(value: object) -> float:
    return float("inf") if value in ("inf", "nan") else float(value)  # type: ignore[arg-type]


def compare(results: Sequence[CaseResult], baseline: dict, factor: float = 2.0, cpu: str | None = None) -> Gate:
    """Regressions and fixes of `results` against a baseline report; with `cpu` (this run's, as
    cli.cpu() names it), error growth counts only where the baseline was written on the same."""
    versions = baseline.get("versions")
    written_on = versions.get("cpu") if isinstance(versions, dict) else None
    other_cpu = None  # (else the file's own text, as one short line whatever it holds)
    if cpu is not None and written_on != cpu:
        other_cpu = " ".join(str(written_on or "a CPU it does not record").split())[:80]
    drift: list[str] = []
    old_cases = {(r["name"], r["dtype"], r.get("device", "cpu")): r for r in baseline.get("results", [])}
    regressions, fixed = [], []
    for r in results:
        old = old_cases.get((r.name, r.dtype, r.device))
        where = f"{r.name} [{r.dtype}]" if r.device == "cpu" else f"{r.name} [{r.dtype} on {r.device}]"
        if old is None:
            if r.status.problem:
                regressions.append(f"{where}: new case {r.status}: {r.message}")
            continue
        if r.status.problem and not _was_problem(old):
            regressions.append(f"{where}: newly {r.status} (was {old['status']}): {r.message}")
            continue
        if (_was_problem(old) or old["status"] == Status.XFAIL) and not r.status.problem \
                and r.status not in (Status.XFAIL, Status.UNSUPPORTED):
            fixed.append(f"{where}: {old['status']} -> {r.status}")
        old_comparisons = {(c["check"], c["path"], c["part"]): c for c in old.get("comparisons", [])}
        for c in r.comparisons:
            before = old_comparisons.get((c.check, c.path, c.part))
            if before is None or c.status not in ("pass", "kink") or before["status"] not in ("pass", "kink"):
                continue
            limit = factor * max(_ulps(before["max_ulps"]), GROWTH_FLOOR)
            if c.max_ulps > limit:
                (drift if other_cpu is not None else regressions).append(
                    f"{where} > {c.check} > {c.path} > {c.part}: error grew from "
                    f"{_ulps(before['max_ulps']):.3g} to {c.max_ulps:.3g} ulps (more than {factor:g} times)")
    return Gate(tuple(regressions), tuple(fixed), tuple(drift), other_cpu)
