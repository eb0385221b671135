"""The check registry: the table every other module derives its checks from."""

import inspect

import pytest

import harness.checks as checks
from harness.paths import FAMILIES
from harness.registry import CHECKS, fuzzed, lookup, paths_of
from harness.strategies import CHECKS as FUZZED
from harness.strategies import COMPLEX_CHECKS

SCALAR = """
name: scalar
inputs: {x: {shape: [3], sample: {uniform: [0.5, 2]}}, y: {shape: [3], sample: {uniform: [0.5, 2]}}}
outputs: {a: sum(x * y), b: sum(exp(x) + y)}
checks: [value, grad, vjp, jvp, jacobian, grad2, hvp, hessian, multi]
"""
ELEMENTWISE = """
name: elementwise
inputs: {x: {shape: [3], sample: {uniform: [0.5, 2]}}}
expr: exp(x) * x
checks: [{derivative: {order: 3}}]
"""


def test_every_path_a_check_runs_is_in_the_table(run_case):
    ran = set()
    for text in (SCALAR, ELEMENTWISE):
        (result,) = run_case(text)
        assert result.status == "pass", result.message
        for c in result.comparisons:
            lookup(c.check, c.path, 3)  # KeyError for a path the table does not know
        ran |= {c.path for c in result.comparisons}
    table = {p.name for kind in CHECKS for p in paths_of(kind, 3) if kind not in ("minimize", "wirtinger")}
    assert ran == table



def test_the_table_names_only_known_families():
    assert {f for c in CHECKS.values() for p in c.paths for f in p.families} <= set(FAMILIES)
    assert lookup("vjp", "torch.func.vjp [torch.compile eager]").families == {"torch.func", "compiled"}
    with pytest.raises(KeyError):
        lookup("vjp", "torch.func.vjpp")


def test_each_entry_runs_by_its_function_and_compiles_only_its_own_paths():
    for name, c in CHECKS.items():
        fn = checks.runner(name)
        assert fn.__name__ == c.run and list(inspect.signature(fn).parameters) == ["ctx", "index", "check"], name
        assert set(c.compiled) <= {p.name for p in c.paths}, name
        assert {o.name for o in c.options} >= set(c.random), name


def test_what_the_fuzzer_draws_comes_from_the_table():
    assert FUZZED == fuzzed("real") == ("value", "grad", "vjp", "jvp", "jacobian", "grad2", "hessian")
    assert COMPLEX_CHECKS == fuzzed("complex") == ("value", "vjp", "wirtinger")
