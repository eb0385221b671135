"""Report writers: pure functions of results (plus an atomic file write)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from harness.results import STATUSES, CaseResult, Comparison, Status, unsupported_reason


def counts(results: Sequence[CaseResult]) -> dict[str, int]:
    """How many case results have each status (every status present, in a fixed order)."""
    c = Counter(r.status for r in results)
    return {s: c.get(s, 0) for s in STATUSES}


def summary_line(results: Sequence[CaseResult]) -> str:
    """The plain headline, `N passed, N failed, N errors` and then every other status, so that the
    counts add up to the results (one per case and dtype)."""
    c = counts(results)
    return f"{c['pass']} passed, {c['fail']} failed, {_plural(c['error'], 'error')}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def details_line(results: Sequence[CaseResult]) -> str:
    """The other statuses, the total, and the torch paths the callable cannot run."""
    c = counts(results)
    names = {"kink": "kink", "undefined": "undefined", "unsupported": "unsupported", "xfail": "xfail",
             "xpass": "xpass"}
    line = ", ".join(f"{c[s]} {label}" for s, label in names.items()) + f" ({_plural(len(results), 'result')} in all)"
    paths = len(unsupported_paths(results))
    return line + (f"; {paths} torch path{'s' * (paths != 1)} unsupported by the callable" if paths else "")


def unsupported_paths(results: Sequence[CaseResult]) -> list[tuple[CaseResult, Comparison]]:
    """Every torch path that the callable under test cannot run by construction."""
    return [(r, c) for r in results for c in r.comparisons if c.status == "unsupported"]


def unsupported_by_reason(result: CaseResult) -> dict[str, list[str]]:
    """A result's unsupported paths grouped by why: reason -> 'check > path' names."""
    grouped: dict[str, list[str]] = {}
    for c in result.comparisons:
        if c.status == "unsupported":
            grouped.setdefault(unsupported_reason(c), []).append(f"{c.check} > {c.path}")
    return grouped


def worst_comparison(result: CaseResult) -> Comparison | None:
    """The comparison to show for a case: failures and errors first, then the one whose worst element
    is furthest past (or nearest to) what it is allowed; its element's ulps, torch and exact values
    are shown together."""
    ranked = sorted(result.comparisons, key=lambda c: (not (c.status.problem or c.status == Status.XFAIL), -_ratio(c)))
    return ranked[0] if ranked else None


def _ratio(c: Comparison) -> float:
    """The worst element's error as a share of what it is allowed (0 with nothing compared)."""
    w = c.worst
    if w is None or not w.ulps:
        return 0.0
    if not w.allowed_ulps:
        return float("inf")
    return w.ulps / w.allowed_ulps if w.allowed_ulps != float("inf") else 0.0


def ulps_of_allowed(c: Comparison | None) -> str:
    """The worst element's error beside what was allowed, `0.5 of 4`."""
    if c is None or c.worst is None:
        return ""
    return f"{c.worst.ulps:.3g} of {c.worst.allowed_ulps:.3g}"


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename.

    UTF-8; what it cannot encode (a lone surrogate) is written as its backslash escape, never an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def holomorphy(results: Sequence[CaseResult]) -> list[tuple[CaseResult, str, str]]:
    """(result, output, Cauchy-Riemann verdict) for every output of the complex cases."""
    suffix = " holomorphy"
    return [(r, key[: -len(suffix)], verdict) for r in results for key, verdict in r.exact.items()
            if key.endswith(suffix)]


def where(r: CaseResult) -> str:
    """The dtype, with the device when it is not the CPU: 'float32', 'float64 on cuda'."""
    return r.dtype if r.device == "cpu" else f"{r.dtype} on {r.device}"
