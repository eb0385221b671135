"""The op catalogue: every entry complete, names resolved, keywords and variants, values against torch."""

import numpy as np
import pytest
import sympy
import torch
from tests_support import ROOT_CASES

from harness.balls import compile_closed, precision
from harness.cases import Case, load_paths
from harness.catalogue import (
    CATALOGUE,
    OPS,
    Arithmetic,
    Condition,
    Elementwise,
    Predicate,
    Structural,
    Where,
    resolve,
    torch_api,
)
from harness.catalogue.markers import op_function, select
from harness.errors import HarnessError


def test_catalogue_has_no_duplicates():
    names = [op.name for op in CATALOGUE]
    assert len(names) == len(set(names)) == len(OPS)


def test_every_op_has_torch_side_exact_side_domain_and_kinks():
    for op in CATALOGUE:
        assert op.ref.function() is op.torch or op.ref.adapt is not None, op.name  # the named torch function
        assert callable(op.exact), op.name
        assert op.domain, op.name
        assert isinstance(op.kinks, tuple), op.name
        for kink in op.kinks:
            assert kink.where and kink.convention, op.name
            if op.kind == "elementwise" and op.arity == 1:
                assert kink.at is not None, f"{op.name}: a one-input kink needs its location"
            elif op.kind == "elementwise" and op.name != "where":
                assert op.partials is not None, f"{op.name}: a kink of several inputs needs explicit partials"


def test_each_kind_of_op_is_its_own_type_with_one_calling_convention():
    kinds = {Arithmetic: "arithmetic", Elementwise: "elementwise", Predicate: "predicate", Structural: "structural"}
    for op in CATALOGUE:
        assert [t for t in kinds if isinstance(op, t)] != [], op.name
        assert op.kind == kinds[next(t for t in kinds if isinstance(op, t))], op.name
    a, b = sympy.symbols("a b", real=True)
    # apply(operands, keywords, evaluate): the node of the exact tree
    assert OPS["add"].apply((a, b)) == a + b
    assert OPS["add"].apply((sympy.S(2), sympy.S(3)), (), False) != 5  # kept as written
    assert OPS["softplus"].apply((a,), (sympy.S(1), sympy.S(20))) == op_function(OPS["softplus"])(a, 1, 20)
    assert OPS["clamp"].apply((a,), (sympy.Rational(-1), sympy.Rational(1))).args[1:] == (-1, 1)
    total = OPS["sum"].apply([np.array([a, b], dtype=object)], (None,), True)
    assert sympy.simplify(total - (a + b)) == 0
    # definition(*arguments): the closed form in SymPy's own functions
    assert OPS["softplus"].definition(a, sympy.S(1), sympy.S(20)).has(sympy.log)
    assert OPS["sub"].definition(sympy.S(2), sympy.S(2)) != 0  # unevaluated, as constants are built
    for op in (OPS["sum"], OPS["gt"], OPS["where"]):
        with pytest.raises(TypeError):
            op.definition(a)


def test_a_comparison_is_only_the_condition_of_a_where():
    a, b = sympy.symbols("a b", real=True)
    with pytest.raises(HarnessError, match="only allowed as the condition of where"):
        OPS["gt"].apply((a, b))
    with pytest.raises(HarnessError, match="needs a comparison as its condition"):
        OPS["where"].apply((a, a, b))
    assert isinstance(OPS["where"], Where)
    one, two = sympy.S(1), sympy.S(2)
    # x > y picks the first branch where x - y is positive; x < y compares y - x; x != y picks the other way
    assert OPS["where"].apply((Condition(OPS["gt"], a, b), one, two)) == select(a - b, one, two, 0)
    assert OPS["where"].apply((Condition(OPS["lt"], a, b), one, two)) == select(b - a, one, two, 0)
    assert OPS["where"].apply((Condition(OPS["ge"], a, b), one, two)) == select(a - b, one, two, 1)
    assert OPS["where"].apply((Condition(OPS["ne"], a, b), one, two)) == select(a - b, two, one, 2)


def _ops_used(node, found):
    from harness.expr import Call, Index, Seq

    if isinstance(node, Call):
        if node.op in OPS:  # (complex cases also use angle, sgn, conj, real, imag)
            found.add(resolve(node.op, node.keywords)[0].name)
        found.add(node.op)
        for a in node.args:
            _ops_used(a, found)
    elif isinstance(node, Index):
        _ops_used(node.value, found)
    elif isinstance(node, Seq):
        for a in node.items:
            _ops_used(a, found)


def test_every_op_appears_in_a_bundled_case():
    found: set[str] = set()
    for case in load_paths([str(ROOT_CASES)]):
        assert isinstance(case, Case), case.message
        for _, tree in case.outputs:
            _ops_used(tree, found)
    missing = [op.name for op in CATALOGUE if op.name not in found]
    assert not missing, f"no bundled case uses {missing}"


def test_exact_definitions_agree_with_torch_at_a_point():
    for op in CATALOGUE:
        if op.kind != "elementwise" or op.arity != 1 or op.name == "clamp":  # clamp needs a bound
            continue
        x = sympy.Rational(7, 4) if op.name == "acosh" else sympy.Rational(3, 4)
        keywords = [k for _, k in op.keywords if not isinstance(k, str)]
        with precision(200):
            exact = float(compile_closed(sympy.sympify(op.exact(x, *keywords)), [])([]))
        lead = [int(k) for k in keywords[: len(op.leading)]]
        got = float(op.torch(*lead, torch.tensor(float(x), dtype=torch.float64)))
        assert abs(got - exact) <= 1e-13 * max(1.0, abs(exact)), op.name


def test_atomic_functions_differentiate_to_atomic_derivatives():
    x = sympy.Symbol("x", real=True)
    tanh = op_function(OPS["tanh"])
    d = sympy.diff(tanh(x**2), x)
    assert str(d) == "2*x*tanh'(x**2)"


def test_torch_api_names():
    assert torch_api(OPS["softplus"]) == "torch.nn.functional.softplus"
    assert torch_api(OPS["special.i0e"]) == "torch.special.i0e"
    assert torch_api(OPS["linalg.det"]) == "torch.linalg.det"


def test_new_entries_agree_with_torch_where_it_is_right(run_case):
    (result,) = run_case("""
        name: new
        inputs: {x: {points: [-3.5, 0.75, 12.0]}, n: {points: [2.5, -3.0, 0.0]}}
        outputs:
          i: special.i1e(x)
          l: ldexp(x, n)
        checks: [value]
    """)
    assert result.status == "pass", result.message
    (grad,) = run_case("""
        name: ldexp
        inputs: {x: {points: [-3.5, 0.75, 12.0]}, n: {points: [2.5, -3.0, 0.0]}}
        expr: ldexp(x, n)
        checks: [grad, jvp]
    """)
    assert grad.status == "pass", grad.message


def test_i1e_backward_is_a_finding(run_case):
    # torch's i1e' = i0e - i1e*(sign + 1/x) cancels: 21 ulps at x = -3.5 (mpmath agrees with the exact side)
    (result,) = run_case("""
        name: i1e
        inputs: {x: -3.5}
        expr: special.i1e(x)
        checks: [grad]
    """)
    assert result.status == "fail" and result.comparisons[0].worst.exact == pytest.approx(-0.018140389050285106)


def test_clamp_with_tensor_bounds_passes_the_gradient_at_a_bound_to_x(run_case):
    (result,) = run_case("""
        name: clamp
        inputs: {x: {points: [0.5, -2.0, 3.0, 0.25]}, lo: {points: [0.5, -1.0, -1.0, 0.0]},
                 hi: {points: [1.0, 1.0, 2.0, 1.0]}}
        expr: clamp_tensors(x, lo, hi)
        checks: [value, grad]
    """)
    assert result.status == "pass", result.message
    grads = {c.part: c.exact_values for c in result.comparisons
             if c.check == "grad" and c.path == "autograd.grad(y, inputs)"}
    assert grads["x"][0] == 1.0 and grads["lo"][0] == 0.0  # x = min: the gradient goes to x, as torch's
