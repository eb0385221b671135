"""SymPy expressions compiled to functions of Arb balls: closed forms, and the error model.

The package: `upward` (error bounds as floats rounded upward), `batch` (the batches and small
ball functions), `rules` (one row per function class: its closed form, error model and jets, each
registered by its stage), `closed` (closed forms), `model` (the error model), `jets` (magnitudes of
derivative terms); each imports only the ones before it.

Every compiled expression evaluates a whole batch at once: a `Batch` holds one column of balls
per symbol (the same expression at many points, or at every element of an elementwise output),
and each node of the expression is one pass over its columns. Results are memoized per compiled
node within a batch, so the subexpressions a value shares with its first and second derivatives
(sin(x) in sin(x), cos(x) and -sin(x)) are evaluated once.

`closed` compiles an expression to its ball values (one table of node types, as sympy2jax does
for JAX). `compile_modelled` does the same for the harness's own trees and derivative
expressions, and runs the error model beside the value: a bound on the rounding error that a
floating-point evaluation of the same tree in the case's dtype can make. The model charges each
operation its kernel's accuracy and propagates input errors through partial derivatives
(first-order running error analysis); sums charge the magnitude of the terms they add, which is
what lets a result that cancels to 0 be compared against an absolute floor. The bounds and the
term magnitudes are float64 arrays rounded upward (`upward`); the values stay balls.
"""

from __future__ import annotations

from harness.balls.batch import (
    EXPRESSIONS,
    HUGE,
    MAX_POLYGAMMA_SHIFTS,
    MODERATE,
    ONE,
    SUBTREES,
    ZERO,
    Batch,
    Column,
    Decision,
    overflow_edge,
    precision,
)
from harness.balls.closed import (
    BatchForm,
    ClosedForm,
    closed,
    closed_form,
    compile_closed,
    defined,
    finite,
)
from harness.balls.jets import (
    Jet,
    JetFn,
    compile_jets,
    tree_depth,
)
from harness.balls.model import (
    Kinks,
    Modelled,
    ModelResult,
    Shared,
    all_but,
    compile_modelled,
    underflow,
)
from harness.balls.rules import COLUMNS, RULES, Rules, lookup

__all__ = ['all_but', 'Batch', 'BatchForm', 'closed', 'closed_form', 'ClosedForm', 'Column', 'COLUMNS',
           'compile_closed', 'compile_jets', 'compile_modelled', 'Decision', 'defined', 'EXPRESSIONS',
           'finite', 'HUGE', 'Jet', 'JetFn', 'Kinks', 'lookup', 'MAX_POLYGAMMA_SHIFTS', 'Modelled',
           'ModelResult', 'MODERATE', 'ONE', 'overflow_edge', 'precision', 'Rules', 'RULES', 'Shared',
           'SUBTREES', 'tree_depth', 'underflow', 'ZERO']
