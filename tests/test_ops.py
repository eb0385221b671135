import sympy
import torch
from tests_support import ROOT_CASES

from harness.functions import op_function
from harness.ops import CATALOGUE, OPS


def test_catalogue_has_no_duplicates():
    names = [op.name for op in CATALOGUE]
    assert len(names) == len(set(names)) == len(OPS)


def test_every_op_has_torch_side_exact_side_domain_and_kinks():
    for op in CATALOGUE:
        assert callable(op.torch), op.name
        assert callable(op.exact), op.name
        assert op.domain, op.name
        assert isinstance(op.kinks, tuple), op.name
        if op.kinks:
            assert op.partials is not None, f"{op.name} has kinks but no explicit partials"


def test_every_op_appears_in_a_bundled_case():
    text = "\n".join(p.read_text() for p in ROOT_CASES.rglob("*.yaml"))
    symbols = {"add": "+", "sub": " - ", "mul": "*", "div": "/", "neg": "-", "pow": "**", "matmul": "@"}
    for op in CATALOGUE:
        assert f"{op.name}(" in text or symbols.get(op.name, "\0") in text, f"no case uses {op.name}"


def test_exact_definitions_agree_with_torch_at_a_point():
    x = sympy.Rational(3, 4)
    for op in CATALOGUE:
        if op.kind != "elementwise":
            continue
        keywords = [k for _, k in op.keywords]
        exact = float(op.exact(x, *keywords).evalf(30))
        got = float(op.torch(torch.tensor(0.75, dtype=torch.float64)))
        assert abs(got - exact) <= 1e-14 * max(1.0, abs(exact)), op.name


def test_atomic_functions_differentiate_to_atomic_derivatives():
    x = sympy.Symbol("x", real=True)
    tanh = op_function(OPS["tanh"])
    d = sympy.diff(tanh(x**2), x)
    assert str(d) == "2*x*tanh'(x**2)"
