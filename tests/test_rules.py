"""harness.balls.rules: one row per function class (closed form, error model, jets), filled by each
stage's decorator; every marker the catalogue defines has its closed form; a class takes its nearest
base's rule in each column, and none at all means the stage's generic rule."""

import pytest
import sympy
from flint import arb

from harness import balls, cache
from harness.balls import rules
from harness.catalogue import markers
from harness.numbers import FORMATS

X = sympy.Symbol("x", real=True)


def test_every_marker_has_a_closed_form_and_every_row_is_a_marker_an_op_or_sympy_s():
    for name, cls in markers.MARKERS.items():
        assert rules.lookup(cls, "closed") is not None, name
    for cls in balls.RULES:
        assert cls in markers.MARKERS.values() or cls in (markers.OpFunction, markers.KinkFunction) \
            or cls.__module__.startswith("sympy."), cls


def test_a_class_takes_its_nearest_base_s_rule_column_by_column():
    row = balls.RULES
    assert rules.lookup(markers.kink_step, "closed") is row[markers.KinkFunction].closed
    assert rules.lookup(markers.min_share, "model") is row[markers.max_share].model
    assert rules.lookup(markers.reverse_ratio, "closed") is row[markers.ratio].closed
    assert rules.lookup(markers.ratio, "jet") is None  # the generic jets, through its closed form
    assert rules.lookup(sympy.Max, "jet") is rules.lookup(markers.amax_fn, "jet")
    assert rules.lookup(sympy.sin, "closed") is None  # SymPy's own: the closed forms' tables


def test_a_cell_takes_one_rule_and_only_the_three_columns_exist():
    with pytest.raises(ValueError, match="select already has a closed rule"):
        rules.register(markers.select, "closed", lambda expr, parts: None)
    with pytest.raises(ValueError, match="no rule column 'value'"):
        rules.register(markers.select, "value", lambda expr, parts: None)
    assert rules.COLUMNS == ("closed", "model", "jet")


def test_a_new_marker_is_one_class_and_one_closed_rule(monkeypatch):
    """The README's recipe for a marker: the class (a Marker, so the cache knows it) and its closed
    form; the error model and the jets are then the generic ones, through that closed form."""
    monkeypatch.setattr(markers, "MARKERS", dict(markers.MARKERS))
    monkeypatch.setattr(rules, "RULES", dict(rules.RULES))

    class twice(markers.Marker):  # noqa: N801 (SymPy's lower-case function names)
        nargs = 1

        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return sympy.Integer(2)

    @rules.closed_rule(twice)
    def _closed_twice(expr, parts):
        (inner,) = parts
        return lambda b: [2 * x for x in inner(b)]

    e = twice(X) * X
    assert cache.decode(cache.encode(e)) == e
    batch = balls.Batch([[arb(3), arb(0.5)]], 2, fmt=FORMATS["float64"])
    assert [float(v) for v in balls.closed(e, (X,))(batch)] == [18.0, 0.5]
    values, bounds, kinks = balls.compile_modelled(e, (X,), FORMATS["float64"])(batch)
    assert [float(v) for v in values] == [18.0, 0.5] and all(bounds > -float("inf")) and kinks is None
