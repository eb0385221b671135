"""The typed values that cross stage boundaries after loading: expected arrays, comparisons, results.

Nothing here holds SymPy or Arb objects: report writers and the CLI only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Status(StrEnum):
    """What a comparison, or a case in one dtype, came to. A str: written and compared as its name.

    unsupported: a torch path the callable under test cannot run by construction (a torch.func
    transform on a classic autograd.Function, forward mode without jvp, ...); for a case, a check
    none of whose paths could run. Neither a pass nor an error."""

    PASS = "pass"
    FAIL = "fail"
    KINK = "kink"
    UNDEFINED = "undefined"
    UNSUPPORTED = "unsupported"
    ERROR = "error"
    XFAIL = "xfail"
    XPASS = "xpass"

    @property
    def problem(self) -> bool:
        """A failure or an error: what fails a run, a gate, a pytest item or an assertion."""
        return self in (Status.FAIL, Status.ERROR)


STATUSES = tuple(s.value for s in Status)
LIMITS = ("timeout", "memory")  # the limits a case (or one check) can run past


@dataclass(frozen=True, eq=False)
class Expected:
    """The exact reference for one compared array, as float64 pairs hi + lo, with flags."""

    hi: np.ndarray
    lo: np.ndarray
    bound: np.ndarray  # error-model bound on a float evaluation of the same tree
    kink: np.ndarray  # at a kink: hi/lo hold torch's documented convention
    undefined: np.ndarray  # outside the domain: the exact value is not a finite real
    infinite: np.ndarray  # the exact value is +-inf (a pole or a limit): torch must return that infinity
    uncertified: int = 0


@dataclass(frozen=True)
class Tolerance:
    """What an element may differ by: max(ulps * ulp(exact), model * bound, atol)."""

    ulps: float
    atol: float = 0.0
    model: float = 2.0


@dataclass(frozen=True)
class Worst:
    """The element where the error (relative to what is allowed) peaks."""

    point: int
    inputs: str
    component: str
    torch: float
    exact: float
    ulps: float
    abs_error: float
    rel_error: float
    allowed_ulps: float


@dataclass(frozen=True)
class Comparison:
    """One torch path of one check against the reference, over every point."""

    check: str
    path: str
    part: str
    status: Status
    count: int = 0
    mismatched: int = 0
    kinks: int = 0
    undefined: int = 0
    uncertified: int = 0
    unbounded: int = 0  # defined elements whose allowance is not finite (the message says so)
    max_ulps: float = 0.0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: Worst | None = None
    message: str = ""
    torch_values: tuple[float, ...] = ()  # every element, for small comparisons (<= 16 in all)
    exact_values: tuple[float, ...] = ()
    point_ulps: tuple[float, ...] = ()  # the largest error in ulps at each point (each optimizer step)
    # plot data per element: x, torch, exact, ulps, allowed, status; x is `abscissa`: an input's value or the index
    series: tuple[tuple[float, float, float, float, float, str], ...] = ()
    abscissa: str = "input"
    bad_input: bool = False  # an error the case file causes (a limit, a shape), not a failure of the harness
    boundary: bool = False  # an error of the check itself (bad input, a limit, a crash), not of a torch path
    limit: str = ""  # "timeout" or "memory": the error is only that limit running out

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))


@dataclass(frozen=True)
class CaseResult:
    """One case in one dtype: its status and every comparison made."""

    name: str
    file: str
    line: int
    dtype: str
    status: Status
    comparisons: tuple[Comparison, ...] = ()
    message: str = ""
    seconds: float = 0.0
    xfail: str | None = None
    bad_input: bool = False
    exact: dict[str, str] = field(default_factory=dict)  # output -> exact expression (text)
    device: str = "cpu"
    unrun: tuple[tuple[str, str], ...] = ()  # (check, why) for each check none of whose torch paths ran
    limit: str = ""  # "timeout" or "memory": the case (in this dtype) ran past that limit
    exact_side: str = ""  # "expr", or "traced from forward: N ATen ops" (harness.trace), or both compared
    untraced: str = ""  # why the target's forward could not be traced, when the case has expr: instead

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def failed(self) -> bool:
        return self.status.problem

    @property
    def limited(self) -> str:
        """ "timeout" or "memory" when every error here is only a limit running out, else ""."""
        if self.status != Status.ERROR:
            return ""
        if self.limit:
            return self.limit
        errors = [c for c in self.comparisons if c.status == Status.ERROR]
        kinds = {c.limit for c in errors}
        if not errors or "" in kinds:
            return ""
        return "timeout" if "timeout" in kinds else "memory"


def unsupported_reason(c: Comparison) -> str:
    """Why an unsupported path could not run: its message after the breadcrumb."""
    return c.message.partition(": unsupported: ")[2] or c.message
