"""`report.json`: every comparison's numbers under a versioned schema.

User strings are kept exactly (baselines match cases by name): the text is ASCII, with every control
and non-ASCII character (a lone surrogate too) as a JSON escape, so it is valid JSON that loads back the same."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from harness.report import counts
from harness.results import CaseResult

SCHEMA = "harness.report/1"


def _plain(value: Any) -> Any:
    """Results as JSON values in one pass (dataclasses.asdict would deep-copy every number first):
    dataclasses as dicts, tuples as lists; JSON has no inf or nan, so those are the strings 'inf',
    '-inf', 'nan'."""
    if isinstance(value, float):
        return value if math.isfinite(value) else "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"{type(value).__name__} has no JSON form")


SLIM_KEEPS = ("check", "path", "part", "status", "max_ulps")


def render(results: Sequence[CaseResult], versions: dict[str, str], timings: bool = True, slim: bool = False) -> str:
    """The report as JSON text, one case per line; with `timings=False` the same inputs give the same
    bytes.

    `slim` (for baselines) keeps each comparison's status and error in ulps, and nothing else."""
    cases = []
    for r in results:
        item = _plain(r)
        if not timings:
            item.pop("seconds")
        if slim:
            item["comparisons"] = [{k: c[k] for k in SLIM_KEEPS} for c in item["comparisons"]]
        cases.append(_dumps(item))
    head = {"schema": SCHEMA, "versions": _plain(versions), "summary": _plain(counts(results))}
    lines = [f" {_dumps(k)}: {_dumps(v)}," for k, v in head.items()]
    body = ",\n".join(f"  {c}" for c in cases)
    return "{\n" + "\n".join(lines) + '\n "results": [\n' + body + ("\n" if cases else "") + " ]\n}\n"


def _dumps(value: Any) -> str:
    """One JSON value on one line (the C encoder: no indent), ASCII with escapes."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False)
