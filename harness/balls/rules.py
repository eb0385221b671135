"""What each function class means to the ball evaluator, in one table: its closed form, its error
model and its jets, one row per class.

Each stage registers its column where its rule is written (`@closed_rule(select)` in `closed`,
`@model_rule(select)` in `model`, `@jet_rule(select)` in `jets`), so the row of `select` is
`RULES[select]` once `harness.balls` is imported. A class with no rule in a column takes its nearest
base's (kink_step a KinkFunction's, min_share a max_share's); with none at all, the stage's generic
rule: a SymPy function by its tables, any function's error model and jets through its closed form
and partial derivatives.

The classes are the catalogue's (`harness.catalogue.markers.MARKERS`, also the cache's vocabulary);
every concrete one has a closed form here (tests/test_rules.py holds the two together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Rules:
    """One class's rules: closed(expr, parts) -> BatchForm, model(expr, parts, under) -> Modelled,
    jet(expr, parts, values) -> JetFn; None: the base's, or the stage's generic rule."""

    closed: Callable[..., Any] | None = None
    model: Callable[..., Any] | None = None
    jet: Callable[..., Any] | None = None


COLUMNS = tuple(f.name for f in fields(Rules))
RULES: dict[type, Rules] = {}


def register(cls: type, column: str, rule: Callable[..., Any]) -> None:
    """`rule` as the `column` of `cls`'s row; a second rule for the same cell is a programming error."""
    if column not in COLUMNS:
        raise ValueError(f"no rule column {column!r}: {', '.join(COLUMNS)}")
    row = RULES.setdefault(cls, Rules())
    if getattr(row, column) is not None:
        raise ValueError(f"{cls.__name__} already has a {column} rule")
    setattr(row, column, rule)


def _column(column: str) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
    def decorator(*classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(rule: Callable[..., Any]) -> Callable[..., Any]:
            for cls in classes:
                register(cls, column, rule)
            return rule

        return add

    decorator.__doc__ = f"Register the decorated function as the {column} rule of each class given."
    return decorator


closed_rule = _column("closed")
model_rule = _column("model")
jet_rule = _column("jet")


def lookup(cls: type, column: str) -> Callable[..., Any] | None:
    """The `column` rule of `cls` or of its nearest base that has one (None: the generic rule)."""
    for base in cls.__mro__:
        row = RULES.get(base)
        if row is not None and getattr(row, column) is not None:
            return getattr(row, column)
    return None

