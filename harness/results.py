"""The typed values that cross stage boundaries after loading: expected arrays, comparisons, results.

Nothing here holds SymPy or Arb objects: report writers and the CLI only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATUSES = ("pass", "fail", "kink", "undefined", "unsupported", "error", "xfail", "xpass")
# unsupported: a torch path the callable under test cannot run by construction (a torch.func
# transform on a classic autograd.Function, forward mode without jvp, ...); for a case, a check
# none of whose paths could run. Neither a pass nor an error.


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
    status: str
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


@dataclass(frozen=True)
class CaseResult:
    """One case in one dtype: its status and every comparison made."""

    name: str
    file: str
    line: int
    dtype: str
    status: str
    comparisons: tuple[Comparison, ...] = ()
    message: str = ""
    seconds: float = 0.0
    xfail: str | None = None
    bad_input: bool = False
    exact: dict[str, str] = field(default_factory=dict)  # output -> exact expression (text)
    device: str = "cpu"
    unrun: tuple[tuple[str, str], ...] = ()  # (check, why) for each check none of whose torch paths ran

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


def unsupported_reason(c: Comparison) -> str:
    """Why an unsupported path could not run: its message after the breadcrumb."""
    return c.message.partition(": unsupported: ")[2] or c.message
