"""The symbolic cache: exact round trips, verdicts that never change, and entries that cannot hurt."""

import json
import os
import shutil
from pathlib import Path

import pytest
import sympy

from harness import cache
from harness.cases import load_paths
from harness.functions import op_function
from harness.ops import ELEMENTWISE, OPS
from harness.report import jsonfile
from harness.run import Options, check_case
from harness.timing import STOPWATCH

ROOT = Path(__file__).resolve().parent.parent
X, Y = sympy.symbols("x y", real=True)
# kinks, where(), piecewise ops, removable singularities (sinc at 0), reductions, matmul, softmax
CASE_FILES = [ROOT / "cases" / "core", ROOT / "cases" / "ops" / "tensor.yaml"]


def _derivatives(expr):
    first = [sympy.diff(expr, s) for s in (X, Y)]
    return [expr, *first, *(sympy.diff(d, s) for d in first for s in (X, Y))]


@pytest.mark.parametrize("name", sorted(n for n in ELEMENTWISE if OPS[n].arity <= 2 and OPS[n].kind == "elementwise"))
def test_every_elementwise_op_and_its_derivatives_round_trip(name):
    op = OPS[name]
    cls = op_function(op)
    keywords = [sympy.Rational(1, 3)] * (cls.n_args - op.arity)
    expr = cls(*(X, Y)[: op.arity], *keywords) * Y + X
    for e in _derivatives(expr):
        try:
            encoded = cache.encode(e)
        except cache.Uncachable:
            continue
        back = cache.decode(json.loads(json.dumps(encoded)))
        assert back == e and sympy.srepr(back) == sympy.srepr(e)


def test_closed_forms_round_trip():
    for e in [sympy.Piecewise((X, X > 0), (X**2, sympy.Or(sympy.Eq(X, Y), X < -1)), (0, True)),
              sympy.Max(X, Y) + sympy.atan2(Y, X) * sympy.pi, sympy.polygamma(2, X) / sympy.Rational(-7, 3),
              sympy.Heaviside(X) * sympy.DiracDelta(Y) + sympy.E ** sympy.erfinv(X)]:
        assert cache.decode(cache.encode(e)) == e


def test_what_the_encoding_lacks_is_not_cached():
    with pytest.raises(cache.Uncachable):
        cache.encode(sympy.besselj(1, X))
    with pytest.raises(cache.Uncachable):
        cache.encode(sympy.Symbol("z") + 1)  # a symbol without real=True


def _report(results):
    return jsonfile.render(results, {}, timings=False)


def _run(folder):
    cache.use(folder)
    try:
        return _report([r for case in load_paths([str(p) for p in CASE_FILES]) for r in check_case(case, Options())])
    finally:
        cache.use(Path(os.environ["HARNESS_CACHE"]))


def test_a_cache_never_changes_a_verdict(tmp_path):
    fresh = _run(None)  # no cache at all
    cold = _run(tmp_path)  # filling the cache
    stored = list(tmp_path.rglob("*.json"))
    assert stored
    cache.use(tmp_path)
    hits_before = cache.STORE.hits
    warm = _report([r for case in load_paths([str(p) for p in CASE_FILES]) for r in check_case(case, Options())])
    assert cache.STORE.hits > hits_before and cache.STORE.misses == 0  # every derivative came from disk
    cache.use(None)
    assert fresh == cold == warm  # byte for byte: statuses, errors in ulps, messages


def test_damaged_or_foreign_entries_are_misses(tmp_path):
    folder = tmp_path / "c"
    expected = _run(None)
    _run(folder)
    files = sorted(folder.rglob("*.json"))
    damage = [b"", b"{not json", json.dumps({"question": "another", "answer": ["i", "1"]}).encode(),
              json.dumps({"question": None, "answer": ["f", "os.system", ["s", "x"]]}).encode()]
    for i, path in enumerate(files):
        entry = json.loads(path.read_text())
        if i % 5 == 4:  # the right question, an answer outside the vocabulary
            entry["answer"] = ["f", "builtins.eval", ["s", "x"]]
            path.write_text(json.dumps(entry))
        else:
            path.write_bytes(damage[i % 4])
    assert _run(folder) == expected


def test_a_changed_catalogue_reads_a_new_folder(tmp_path, monkeypatch):
    source = Path(cache.__file__).parent
    copy = tmp_path / "harness"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "__file__", str(copy / "cache.py"))
    before = cache._fingerprint()
    with open(copy / "ops.py", "a", encoding="utf-8") as f:
        f.write("\n# a changed op\n")
    assert cache._fingerprint() != before


def test_the_symbolic_stage_is_timed():
    STOPWATCH.reset()
    cache.use(None)
    try:
        cache.diff(sympy.sin(X) * sympy.exp(X), X)
    finally:
        cache.use(Path(os.environ["HARNESS_CACHE"]))
    assert STOPWATCH.seconds["symbolic"] > 0
