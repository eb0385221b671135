"""`harness fuzz`: random expressions and points, checked by the same `check_case` as `harness run`.

Hypothesis draws cases from `harness.strategies.cases`; a case that fails (or errors) makes
Hypothesis shrink it to a minimal expression and point, which is written as a case file that
`harness run` replays with the same verdict. The same seed gives the same run.

Each example runs under a time and a memory limit (`timeout`, `memory_mb`), like a case of
`harness run`: its point's domain check and its check each. An example past one is counted
("timeout", "memory") and skipped: it says nothing about torch, so it is never shrunk.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy

from harness import __version__
from harness.cases import Case
from harness.errors import CaseTimeout, HarnessError
from harness.report import write_atomic
from harness.report.text import visible
from harness.results import CaseResult
from harness.run import Options, check_case
from harness.strategies import CHECKS, COMPLEX_CHECKS, case_yaml, cases, complex_cases


class Falsified(AssertionError):
    """A drawn case failed: Hypothesis shrinks it."""


@dataclass
class FuzzReport:
    """What a campaign did: how many cases, how fast, and the minimal failure if any."""

    examples: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    failure: Case | None = None
    failure_results: list[CaseResult] = field(default_factory=list)
    saved: Path | None = None

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


def _database(folder: Path, configuration: list) -> DirectoryBasedExampleDatabase:
    """Hypothesis's example database in `folder`, one sub-folder per configuration and version (a
    stored example means the same case there); a folder that cannot be used is bad input, since
    Hypothesis would drop every read and write there without a word."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"--database {folder}: not a folder that can be made or used "
                           f"({exc.strerror or type(exc).__name__})") from None
    config = json.dumps([*configuration, __version__, hypothesis.__version__])
    return DirectoryBasedExampleDatabase(str(folder / hashlib.sha256(config.encode()).hexdigest()[:16]))


def fuzz(*, seed: int, max_examples: int, ops: Sequence[str] | None = None,
         dtypes: Sequence[str] = ("float32", "float64"), checks: Sequence[str] = CHECKS, max_depth: int = 3,
         inputs: Sequence[str] = ("x", "y"), save: Path | None = None, xfail: str | None = None,
         min_value: float = -10.0, max_value: float = 10.0, edge_probability: float = 0.15,
         progress: Callable[[int], None] | None = None, timeout: float = 60.0,
         memory_mb: float = 2000.0, database: Path | None = None) -> FuzzReport:
    """Run one campaign; on a failure, shrink it and save the minimal case under `save` (None: not
saved), marked xfail with the reason `xfail` if given.

    `database`: a folder for Hypothesis's example database, shared by every campaign that names it
    (several processes, or machines mounting it): a campaign first replays the failures stored
    there for the same configuration (ops, dtypes, checks, depth, inputs, range), then draws its
    own; what it shrinks is stored for the others. Without it nothing is stored and the same seed
    gives the same run.

    Each example may take `timeout` seconds and `memory_mb` MB beyond what the process holds
    (0: no limit); one past either is counted as "timeout" or "memory" and skipped."""
    if not (timeout >= 0 and memory_mb >= 0):
        raise HarnessError(f"the time and memory limits must be >= 0, got {timeout!r} s and {memory_mb!r} MB")
    campaign = _Campaign(Options(timeout=timeout, memory_mb=memory_mb), progress)
    strategy = _strategy(ops, dtypes, checks, max_depth, inputs, min_value, max_value, edge_probability,
                         timeout, memory_mb, campaign.limited)
    configuration = [sorted(ops) if ops is not None else None, list(dtypes), list(checks), max_depth, list(inputs),
                     min_value, max_value, edge_probability]
    shared = _database(database, configuration) if database is not None else None
    phases = [Phase.reuse, Phase.generate, Phase.shrink] if shared is not None else [Phase.generate, Phase.shrink]
    test = settings(max_examples=max_examples, deadline=None, database=shared, derandomize=False,
                    suppress_health_check=list(HealthCheck), phases=phases, print_blob=False)(
        hypothesis_seed(seed)(given(strategy)(campaign.one)))  # seed under settings: it turns the database off
    report = campaign.run(test)
    if report.failure is not None and save is not None:
        found = next((r.message for r in report.failure_results if r.status.problem), "")
        report.saved = save_case(report.failure, save, seed, found=found, xfail=xfail)
    return report


def _strategy(ops: Sequence[str] | None, dtypes: Sequence[str], checks: Sequence[str], max_depth: int,
              inputs: Sequence[str], min_value: float, max_value: float, edge_probability: float,
              timeout: float, memory_mb: float, on_limit: Callable[[str], None]) -> SearchStrategy[Case]:
    """Real cases, or complex expressions over complex inputs when the dtypes are complex."""
    from harness.cases import COMPLEX_DTYPES

    if any(d in COMPLEX_DTYPES for d in dtypes):
        if not all(d in COMPLEX_DTYPES for d in dtypes):
            raise HarnessError("fuzz either complex dtypes (complex64, complex128) or real ones, not both")
        return complex_cases(ops=ops, max_depth=max_depth, inputs=inputs, dtypes=dtypes,
                             checks=COMPLEX_CHECKS if tuple(checks) == CHECKS else checks)
    return cases(ops=ops, max_depth=max_depth, inputs=inputs, dtypes=dtypes, checks=checks,
                 min_value=min_value, max_value=max_value, edge_probability=edge_probability,
                 timeout=timeout, memory_mb=memory_mb, on_limit=on_limit)


class _Campaign:
    """One campaign's counts and its last failure, filled in by the examples Hypothesis runs."""

    def __init__(self, options: Options, progress: Callable[[int], None] | None) -> None:
        self.options, self.progress = options, progress
        self.report = FuzzReport()
        self.failed: tuple[Case, list[CaseResult]] | None = None

    def _count(self, status: str) -> None:
        self.report.statuses[status] = self.report.statuses.get(status, 0) + 1

    def _done(self) -> None:
        self.report.examples += 1
        if self.progress is not None:
            self.progress(self.report.examples)

    def limited(self, kind: str) -> None:
        """A drawn point whose domain check ran past a limit: counted, never checked."""
        self._count(kind)
        self._done()

    def one(self, case: Case) -> None:
        """Check one drawn case; a failure or error raises Falsified, so that Hypothesis shrinks it
        (past a limit there is no verdict, and nothing to shrink)."""
        try:
            results = check_case(case, self.options)  # the limits are set and cancelled in there, per dtype
        except CaseTimeout:  # a second alarm while the first one unwound
            results = []
        real = [r for r in results if not r.limited]  # the results that are verdicts on torch
        for r in results:
            self._count(r.limited or r.status.value)
        if not results:
            self._count("timeout")
        self._done()
        if any(r.status.problem for r in real):
            self.failed = (case, real)
            raise Falsified(real[0].message)

    def run(self, test: Callable[[], None]) -> FuzzReport:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(), hypothesis_constants_only():
                warnings.simplefilter("ignore")
                test()
        except Unsatisfiable:
            raise HarnessError("no case could be drawn: every expression or point from these ops and this range"
                               " was rejected (outside the domain, or past the time or memory limit)") from None
        except (Falsified, BaseExceptionGroup) as exc:
            if isinstance(exc, BaseExceptionGroup) and not exc.subgroup(Falsified):
                raise
            assert self.failed is not None
            self.report.failure, self.report.failure_results = self.failed
        self.report.seconds = time.perf_counter() - start
        return self.report


@contextmanager
def hypothesis_constants_only() -> Iterator[None]:
    """Hypothesis (from 6.131) mixes literals found in the source of the "local" modules loaded in
    the process into what it draws: an editable install of this package, the user's own modules,
    a test suite. What a seed draws would then depend on what else is imported (a campaign inside a
    test session drew other cases than the same campaign alone). While a campaign runs it draws
    from Hypothesis's own constants only, so that the same seed gives the same run anywhere.
    (Hypothesis offers no setting for this: its private hook is replaced when it has one.)"""
    try:
        from hypothesis.internal.conjecture import providers

        hook, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
        empty = providers.Constants(integers=providers.SortedSet(),
                                    floats=providers.SortedSet(key=providers.float_to_int),
                                    bytes=providers.SortedSet(), strings=providers.SortedSet())
    except (ImportError, AttributeError, TypeError):  # another Hypothesis: nothing to replace
        yield
        return
    cache.cache.clear()  # pools computed with local constants before
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = hook
        cache.cache.clear()


def save_case(case: Case, folder: Path, seed: int, *, found: str = "", xfail: str | None = None) -> Path:
    """Write the (shrunk) case as a file that `harness run` replays, named by its content (the same
    case, the same file), saying what it found; `xfail`: marked as an expected failure with that
    reason, so that a baseline gate or `pytest cases/` accepts the known finding."""
    from harness.cases import COMPLEX_ONLY
    from harness.catalogue import OPS
    from harness.expr import parse

    (name, text), = case.sources
    spec = case.inputs
    names = {i.name for i in spec}
    expr = parse(text, ops=set(OPS) | COMPLEX_ONLY, names=names)

    def value(i: object, p: int) -> float | complex:
        re = float(i.points[p][0].value)  # type: ignore[attr-defined]
        return complex(re, float(i.imag[p][0].value)) if i.imag else re  # type: ignore[attr-defined]

    points = [{i.name: value(i, p) for i in spec} for p in range(case.n_points)]
    checks = [c.kind for c in case.checks]
    content = case_yaml("-", expr, points, dtype=case.dtypes[0], checks=checks)
    stem = f"fuzz-{hashlib.sha256(content.encode()).hexdigest()[:12]}"
    doc = f"found by harness fuzz --seed {seed}, shrunk by Hypothesis: {found}" if found else \
        f"found by harness fuzz --seed {seed}, shrunk by Hypothesis"
    body = case_yaml(stem, expr, points, dtype=case.dtypes[0], checks=checks, doc=visible(doc)[:2000], xfail=xfail)
    path = folder / f"{stem}.yaml"
    write_atomic(path, body)
    return path
