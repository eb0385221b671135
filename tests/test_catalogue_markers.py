"""The SymPy classes the catalogue adds: atomic ops and their derivatives, kink markers, `select`."""

import sympy

from harness.catalogue import OPS
from harness.catalogue.markers import as_sympy, kink_delta, kink_sign, kink_step, op_function
from harness.symbolic import closed_body

X = sympy.Symbol("x", real=True)


def test_an_op_stays_atomic_and_its_derivative_is_the_op_s_own():
    softplus = op_function(OPS["softplus"])
    e = softplus(X, 1, 20)  # operands, then the keyword values
    d = sympy.diff(e, X)
    assert type(d).__name__ == "softplus'" and d.args == e.args  # one kernel's value and derivative
    assert op_function(OPS["softplus"]) is softplus  # equal trees need the very same class
    syms, body = closed_body(type(d))  # its closed form over (x, beta, threshold), from the catalogue's
    x, beta = syms[0], syms[1]
    assert sympy.simplify(body - sympy.exp(beta * x) / (1 + sympy.exp(beta * x))) == 0


def test_a_kink_marker_is_a_step_away_from_its_point_and_carries_torch_s_value_there():
    assert kink_step(X, 0).diff(X) == kink_delta(X, 0)
    assert kink_step.away(True) == 1 and kink_step.away(False) == 0
    assert kink_sign.away(True) == 1 and kink_sign.away(False) == -1
    assert kink_sign(X, 0).diff(X) == 2 * kink_delta(X, 0)  # sign's jump is twice a step's


def test_only_exact_numbers_become_sympy():
    from fractions import Fraction

    import pytest

    assert as_sympy(Fraction(1, 3)) == sympy.Rational(1, 3) and as_sympy(7) == 7
    for bad in ("1/3", 0.5, True):
        with pytest.raises(TypeError):
            as_sympy(bad)


def test_every_function_class_the_catalogue_defines_is_an_op_or_a_registered_marker():
    """A function class that is not a Marker would be missing from the cache's vocabulary (an
    Uncachable miss at every run) and from the ball evaluator's checklist (tests/test_rules.py)."""
    import inspect

    from harness import cache
    from harness.catalogue import markers

    bases = {markers.OpFunction, markers.Marker, markers.KinkFunction, markers.step_function}
    concrete = [c for c in vars(markers).values() if inspect.isclass(c) and issubclass(c, sympy.Function)
                and c.__module__ == markers.__name__ and c not in bases]
    assert len(concrete) >= 19
    assert {c.__name__: c for c in concrete} == markers.MARKERS
    for c in concrete:
        e = c(*(X,) * (min(c.nargs) if isinstance(c.nargs, sympy.FiniteSet) else 2))
        assert cache.decode(cache.encode(e)) == e, c.__name__


def test_a_second_marker_of_the_same_name_is_refused():
    import pytest

    from harness.catalogue.markers import Marker

    with pytest.raises(TypeError, match="a second marker named select"):
        type("select", (Marker,), {})
