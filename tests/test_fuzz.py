"""`harness fuzz` under its limits: a slow or huge example is counted and skipped, never shrunk;
any op set draws cases; a bad op list is one line of bad input."""

import time

import pytest
from hypothesis import HealthCheck, given, settings

from harness import run, strategies
from harness.cases import load_text
from harness.cli import main
from harness.errors import HarnessError
from harness.expr import Call, names_in
from harness.fuzz import fuzz
from harness.results import CaseResult, Comparison
from harness.strategies import expressions

QUICK = {"seed": 0, "dtypes": ("float64",), "checks": ("value",), "max_depth": 2, "save": None}


@pytest.fixture
def fresh_domain_cache():
    strategies._domain.cache_clear()  # verdicts are remembered per (point, limits)
    yield
    strategies._domain.cache_clear()


def _nth_call(monkeypatch, target, name: str, n: int, action):
    """Replace target.name by a wrapper that does `action()` instead on its n-th call."""
    original, calls = getattr(target, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            return action()
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)
    return calls


def test_a_slow_example_is_counted_as_a_timeout_and_the_campaign_goes_on(monkeypatch):
    _nth_call(monkeypatch, run, "_check_dtype", 2, lambda: time.sleep(60))
    start = time.perf_counter()
    report = fuzz(max_examples=6, ops=["add", "mul"], timeout=1.0, **QUICK)
    assert time.perf_counter() - start < 30
    assert report.statuses.get("timeout") == 1 and report.failure is None  # not a failure, not shrunk
    assert report.examples >= 6 and report.statuses.get("pass", 0) >= 5


def test_an_example_over_the_memory_limit_is_counted_and_skipped(monkeypatch):
    _nth_call(monkeypatch, run, "_check_dtype", 2, lambda: bytearray(1024 * 2**20))
    report = fuzz(max_examples=6, ops=["add", "mul"], memory_mb=200, **QUICK)
    assert report.statuses.get("memory") == 1 and report.failure is None
    assert report.examples >= 6 and report.statuses.get("pass", 0) >= 5
    assert bytearray(300 * 2**20)  # and the limit is lifted afterwards


def test_a_slow_domain_check_skips_the_point(monkeypatch, fresh_domain_cache):
    _nth_call(monkeypatch, strategies, "_defined", 1, lambda: time.sleep(60))
    report = fuzz(max_examples=4, ops=["add", "mul"], timeout=1.0, **QUICK)
    assert report.statuses.get("timeout") == 1 and report.failure is None
    assert report.statuses.get("pass", 0) >= 4


def test_a_campaign_whose_every_point_is_rejected_is_bad_input(monkeypatch, fresh_domain_cache):
    monkeypatch.setattr(strategies, "_defined", lambda *args: False)
    with pytest.raises(HarnessError, match="no case could be drawn"):
        fuzz(max_examples=1, ops=["add"], **QUICK)


def test_limit_errors_are_told_from_real_errors():
    """By the field the runner sets where a limit ran out, never by the words of a message."""
    def result(status, message, *comparisons, limit=""):
        return CaseResult("c", "f.yaml", 1, "float64", status, comparisons=comparisons, message=message, limit=limit)

    assert result("error", "f.yaml:1: error: timed out after 60 s", limit="timeout").limited == "timeout"
    assert result("error", "f.yaml:1: error: timed out after 60 s").limited == ""  # words alone are no limit
    memory = Comparison("grad", "p", "", "error", message="c > grad: error: out of memory", limit="memory")
    assert result("error", memory.message, memory).limited == "memory"
    bug = Comparison("value", "p", "", "error", message="c > value: ZeroDivisionError: (at x.py:1)")
    assert result("error", memory.message, memory, bug).limited == ""
    assert result("fail", "f.yaml:1: error: timed out after 60 s", limit="timeout").limited == ""


def test_the_runner_marks_a_check_that_ran_out_of_memory(monkeypatch):
    import harness.checks as checks
    from harness.run import check_case

    def greedy(ctx, index, check):
        raise MemoryError

    monkeypatch.setattr(checks, "check_grad", greedy)
    (case,) = load_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value, grad]\n")
    (result,) = check_case(case)
    assert result.status == "error" and result.limited == "memory"
    (error,) = [c for c in result.comparisons if c.status == "error"]
    assert error.boundary and error.limit == "memory" and "out of memory" in error.message


@pytest.mark.parametrize("ops", [["sinc"], ["exp", "sin"], ["add"], ["mul", "sub"]], ids="+".join)
def test_any_op_set_draws_expressions(ops):
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(expressions(ops=ops, max_depth=3, inputs=("x", "y")))
    def check(tree):
        unary_only = all(strategies.OPS[o].arity == 1 for o in ops)
        assert names_in(tree) == ({"x"} if unary_only else {"x", "y"})
        assert _ops_in(tree) <= set(ops)

    check()


def _ops_in(tree) -> set[str]:
    return {tree.op} | set().union(*map(_ops_in, tree.args)) if isinstance(tree, Call) else set()


def test_a_fuzz_campaign_of_one_unary_op_runs():
    report = fuzz(max_examples=5, ops=["sinc"], **QUICK)
    assert report.examples >= 5 and report.failure is None


def test_too_many_inputs_for_the_depth_is_an_error():
    with pytest.raises(HarnessError, match="3 inputs do not fit"):
        expressions(ops=["add"], max_depth=1, inputs=("x", "y", "z"))


@pytest.mark.parametrize("ops, message", [([], "at least one op"), (["nope"], "unknown op 'nope'"),
                                          (["sum"], "elementwise ops")])
def test_bad_op_lists_are_harness_errors(ops, message):
    with pytest.raises(HarnessError, match=message):
        fuzz(max_examples=2, ops=ops, **QUICK)


@pytest.mark.parametrize("flag, value, message", [
    ("--ops", "", "at least one op"), ("--ops", ",", "at least one op"), ("--ops", "exp,nope", "unknown op 'nope'"),
    ("--checks", "", "none was named"), ("--checks", "grad,wirtinger", "for real dtypes are value, grad"),
])
def test_bad_op_or_check_lists_on_the_command_line_are_one_line(flag, value, message, capsys, tmp_path):
    assert main(["fuzz", flag, value, "--max-examples", "2", "--save", str(tmp_path)]) == 2
    out = capsys.readouterr().out.strip()
    assert message in out and len(out.splitlines()) == 1 and "Traceback" not in out


def test_the_limits_are_command_line_options(capsys, tmp_path):
    code = main(["fuzz", "--ops", "add", "--max-examples", "2", "--dtype", "float64", "--max-depth", "1",
                 "--timeout", "30", "--memory-limit", "500", "--save", str(tmp_path)])
    assert code == 0 and "2 cases in" in capsys.readouterr().out
    assert main(["fuzz", "--ops", "add", "--timeout", "-1", "--save", str(tmp_path)]) == 2


def test_a_reproducer_is_written_only_where_save_says_named_by_content_and_xfail(tmp_path, monkeypatch):
    from harness.cases import load_file
    from harness.fuzz import fuzz

    monkeypatch.chdir(tmp_path)
    kwargs = dict(seed=3, max_examples=40, ops=["softplus"], dtypes=("float64",), checks=("grad",),
                  inputs=("x",), min_value=0, max_value=40)  # softplus' threshold: a known finding
    unsaved = fuzz(**kwargs)
    assert unsaved.failure is not None and unsaved.saved is None and not list(tmp_path.rglob("*.yaml"))
    one = fuzz(**kwargs, save=tmp_path / "a", xfail="softplus above its threshold, torch issue #1")
    two = fuzz(**kwargs, save=tmp_path / "b", xfail="softplus above its threshold, torch issue #1")
    assert one.saved.name == two.saved.name and one.saved.name.startswith("fuzz-")
    assert one.saved.read_text() == two.saved.read_text()
    (case,) = load_file(one.saved)
    assert case.xfail is not None and case.xfail.reason == "softplus above its threshold, torch issue #1"
    assert "shrunk by Hypothesis: " in case.doc and "ulps" in case.doc  # says what it found
    from harness.run import Options, check_case

    assert {r.status for r in check_case(case, Options())} == {"xfail"}


def test_campaigns_share_what_they_find_through_a_database(tmp_path):
    """Two processes at once on one database (as machines mounting one folder would), then a third
    campaign whose own single example finds nothing: with the database it replays a stored finding
    first and saves the very file a finder saved (same content, same name)."""
    import os
    import subprocess
    import sys

    common = {"ops": ("softplus",), "dtypes": ("float64",), "checks": ("grad2",), "max_depth": 1,
              "min_value": 0.0, "max_value": 40.0}
    flags = ["--ops", "softplus", "--dtype", "float64", "--checks", "grad2", "--max-depth", "1", "--range", "0", "40"]
    finders = [subprocess.Popen([sys.executable, "-m", "harness", "fuzz", *flags, "--seed", seed, "--max-examples",
                                 "30", "--database", "db", "--save", f"found-{seed}"], cwd=tmp_path,
                                env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
               for seed in ("3", "5")]
    alone = fuzz(seed=7, max_examples=1, save=tmp_path / "alone", **common)  # no database: finds nothing
    assert alone.failure is None and not (tmp_path / "alone").exists()
    outputs = [p.communicate(timeout=600)[0] for p in finders]
    # softplus's second derivative: torch's sigmoid * (1 - sigmoid) cancels near x = 3 (found by both)
    assert [p.returncode for p in finders] == [1, 1], outputs
    found = {f.name for seed in ("3", "5") for f in (tmp_path / f"found-{seed}").iterdir()}
    shared = fuzz(seed=7, max_examples=1, save=tmp_path / "shared", database=tmp_path / "db", **common)
    assert shared.failure is not None
    (replayed,) = (tmp_path / "shared").iterdir()
    assert replayed.name in found  # one of the finders' minimal cases, byte for byte


def test_a_campaign_draws_no_literals_from_the_modules_it_finds_loaded(tmp_path, monkeypatch):
    """Hypothesis mixes literals from the loaded "local" modules into its draws, so what a seed drew
    depended on what else was imported (inside this test suite a complex campaign drew a branch-cut
    point it never draws alone). During a campaign Hypothesis sees none; after it, its own hook is back."""
    import sys

    from hypothesis.internal.conjecture import providers

    import harness.fuzz as fuzz_module

    (tmp_path / "user_constants.py").write_text("FLOATS = (0.25, -0.75, 1.5, 3.0, 0.125)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # "local" to Hypothesis: under the working directory
    import user_constants  # noqa: F401

    try:
        assert len(providers._get_local_constants().floats) >= 5  # Hypothesis would draw these
        seen = []

        def recording(case, options):
            seen.append(len(providers._get_local_constants().floats))
            return run.check_case(case, options)

        monkeypatch.setattr(fuzz_module, "check_case", recording)
        fuzz(seed=6, max_examples=3, dtypes=("complex128",), save=None)
        assert seen and set(seen) == {0}
        assert len(providers._get_local_constants().floats) >= 5  # restored
    finally:
        sys.modules.pop("user_constants", None)


def test_a_database_that_is_not_a_folder_is_bad_input(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert main(["fuzz", "--seed", "1", "--max-examples", "1", "--ops", "add", "--database",
                 str(tmp_path / "a-file")]) == 2
    assert f"harness fuzz: --database {tmp_path / 'a-file'}: not a folder that can be made or used" in \
        capsys.readouterr().out
