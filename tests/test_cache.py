"""The symbolic cache: exact round trips, verdicts that never change, and entries that cannot hurt."""

import json
import os
import shutil
from pathlib import Path

import pytest
import sympy

from harness import cache
from harness import store as harness_store
from harness.cases import load_paths
from harness.catalogue import ELEMENTWISE, OPS
from harness.catalogue.markers import op_function
from harness.report import jsonfile
from harness.run import Options, check_case
from harness.timing import STOPWATCH

ROOT = Path(__file__).resolve().parent.parent
X, Y = sympy.symbols("x y", real=True)
# kinks, where(), piecewise ops, removable singularities (sinc at 0), reductions, matmul, softmax
CASE_FILES = [ROOT / "cases" / "core", ROOT / "cases" / "ops" / "tensor.yaml"]
# left out: the slowest cases, three quarters of the files' time, whose cache entries hold no node type,
# function, constant or op that the other cases' lack (what is cached is what these tests are about)
SLOW = {"composite-sampled", "det-inv", "var-std", "compiled-composite", "compiled-activations", "compiled-reductions",
        "softmax-family", "matmul-sampled-matrices", "higher-activations", "reductions-sampled",
        "arith-polynomial-sampled"}


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
    """The case set's report with the cache in `folder` (None: no cache), and that store's hits and misses."""
    cache.use(folder)
    try:
        cases = [c for c in load_paths([str(p) for p in CASE_FILES]) if c.name not in SLOW]
        report = _report([r for case in cases for r in check_case(case, Options())])
        return report, cache.STORE.hits, cache.STORE.misses
    finally:
        cache.use(Path(os.environ["HARNESS_CACHE"]))


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """Computed once for the module's tests (the run is their time): the report of a run filling a
    cache (what it returns is what it computed: the same as with no cache), with its folder."""
    folder = tmp_path_factory.mktemp("filled")
    cold, _, misses = _run(folder)
    assert misses > 0 and list(folder.rglob("*.json"))
    return cold, folder


def test_a_cache_never_changes_a_verdict(filled):
    cold, folder = filled
    warm, hits, misses = _run(folder)
    assert hits > 0 and misses == 0  # every derivative came from disk
    assert cold == warm  # byte for byte: statuses, errors in ulps, messages


def test_damaged_or_foreign_entries_are_misses(filled, tmp_path):
    _, source = filled
    folder = tmp_path / "c"
    shutil.copytree(source, folder)  # the key too: sealed damage is sealed with the store's own key
    cache.use(folder)
    store = cache.STORE
    cache.use(Path(os.environ["HARNESS_CACHE"]))
    assert store.enabled()
    recomputed = sympy.Symbol("recomputed", real=True)
    files = sorted(folder.rglob("*.json"))
    questions = []
    for i, path in enumerate(files):
        mac, _, body = path.read_bytes().partition(b"\n")
        question = json.loads(body)["question"]
        questions.append(json.loads(question))
        assert store.answer(questions[-1], lambda: recomputed) != recomputed  # intact: answered from disk
        damage = [b"", b"{not json", mac + b"\n" + body[: len(body) // 2],  # truncated
                  store.seal("another", ["i", "1"]),  # sealed here, for another question
                  json.dumps({"question": question, "answer": ["i", "1"]}).encode(),  # no MAC
                  store.seal(question, ["f", "builtins.eval", ["s", "x"]])]  # sealed, outside the vocabulary
        path.write_bytes(damage[i % len(damage)])
    hits, misses = store.hits, store.misses
    assert [store.answer(q, lambda: recomputed) for q in questions] == [recomputed] * len(files)
    assert store.misses - misses == len(files) and store.hits == hits  # each damaged entry was read, and refused


def test_a_changed_catalogue_reads_a_new_folder(tmp_path, monkeypatch):
    source = Path(cache.__file__).parent
    copy = tmp_path / "harness"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(harness_store, "__file__", str(copy / "store.py"))  # the sources are read beside it
    seen = {cache._fingerprint()}
    for changed in ("catalogue/elementwise.py", "catalogue/markers.py", "catalogue/structural.py", "symbolic.py"):
        with open(copy / changed, "a", encoding="utf-8") as f:
            f.write("\n# a changed op\n")
        seen.add(cache._fingerprint())
    (copy / "catalogue" / "newly_added.py").write_text("# a module the package gains\n")
    seen.add(cache._fingerprint())
    assert len(seen) == 6  # every file of the catalogue package, and a new one, is in the fingerprint


def test_the_symbolic_stage_is_timed():
    STOPWATCH.reset()
    cache.use(None)
    try:
        cache.diff(sympy.sin(X) * sympy.exp(X), X)
    finally:
        cache.use(Path(os.environ["HARNESS_CACHE"]))
    assert STOPWATCH.seconds["symbolic"] > 0
