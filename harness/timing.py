"""Where a run's time goes: wall time per stage, each stage's own time (not its nested stages').

Stages: parse (case files to cases), symbolic (SymPy: exact outputs and their derivatives),
reference (Arb: certified values and error bounds), torch (every autograd path), compare (ulps
and summaries) and report (the files). The totals are per process (a `--jobs` run keeps one per
worker); `benchmarks/suite_stages.py` reads them from a serial run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("parse", "symbolic", "reference", "torch", "compare", "report")


class Stopwatch:
    """Accumulates each stage's own seconds; a nested stage's time is not its parent's."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._nested: list[float] = []

    def reset(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed - self._nested.pop()
            if self._nested:
                self._nested[-1] += elapsed


STOPWATCH = Stopwatch()
stage = STOPWATCH.stage
