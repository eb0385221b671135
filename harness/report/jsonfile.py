"""`report.json`: every comparison's numbers under a versioned schema.

User strings are kept exactly (baselines match cases by name): the text is ASCII, with every control
and non-ASCII character (a lone surrogate too) as a JSON escape, so it is valid JSON that loads back the same."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from harness.report import counts
from harness.results import CaseResult

SCHEMA = "harness.report/1"


def _clean(value: Any) -> Any:
    """JSON has no inf or nan: write them as the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


SLIM_KEEPS = ("check", "path", "part", "status", "max_ulps")


def render(results: Sequence[CaseResult], versions: dict[str, str], timings: bool = True, slim: bool = False) -> str:
    """The report as JSON text; with `timings=False` the same inputs give the same bytes.

    `slim` (for baselines) keeps each comparison's status and error in ulps, and nothing else."""
    cases = []
    for r in results:
        item = asdict(r)
        if not timings:
            item.pop("seconds")
        if slim:
            item["comparisons"] = [{k: c[k] for k in SLIM_KEEPS} for c in item["comparisons"]]
        cases.append(item)
    doc = {"schema": SCHEMA, "versions": versions, "summary": counts(results), "results": cases}
    return json.dumps(_clean(doc), indent=1, sort_keys=False, ensure_ascii=True) + "\n"
