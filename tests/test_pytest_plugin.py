"""The pytest plugin: case files as items, failures as report text, xfail, bad files."""

import sys
import textwrap

from classic_functions import CLASSIC_CASE as CLASSIC

GOOD = """
name: good
inputs: {x: 0.5}
expr: exp(x)
checks: [value, grad]
dtype: [float32, float64]
"""
WRONG = """
name: wrong
inputs: {x: {shape: [8], sample: {uniform: [-2, 2]}}}
expr: sin(x)
target: meta_functions:sin_wrong_first
checks: [value, vjp]
dtype: float64
"""
XFAIL = """
name: expected
inputs: {x: 23.5}
expr: softplus(x)
checks: [value]
xfail: "softplus returns x above its threshold"
"""


def _cases(pytester, **files):
    folder = pytester.mkdir("cases")
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).parent / "meta_functions.py", pytester.path / "meta_functions.py")
    # the copy is the module its cases name; this process's own import of it (tests/) would be
    # another file of the same name, which the harness refuses to mix up (pytester restores it)
    sys.modules.pop("meta_functions", None)
    return folder


def test_items_per_case_dtype_and_check(pytester):
    _cases(pytester, good=GOOD)
    result = pytester.runpytest("cases", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*good?float32?::value PASSED*", "*good?float64?::grad PASSED*"])


def test_a_failure_shows_the_report_text_not_a_traceback(pytester):
    _cases(pytester, wrong=WRONG)
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--harness-allow-target")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wrong ?float64? > vjp > y.backward(gradient=v) > point 0*ulps*not close!*"])
    assert "Traceback" not in result.stdout.str() and "def runtest" not in result.stdout.str()


def test_xfail_maps_to_pytest_xfail_and_bad_files_fail(pytester):
    _cases(pytester, expected=XFAIL, broken="name: broken\ninputs: {x: 1}\nexpr: expp(x)\nchecks: [value]\n")
    result = pytester.runpytest("cases")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*broken.yaml:3: unknown op 'expp' (did you mean 'exp'?)*"])


def test_runs_in_parallel_with_xdist(pytester):
    _cases(pytester, good=GOOD, other=GOOD.replace("name: good", "name: other"))
    result = pytester.runpytest("cases", "-n", "2")
    result.assert_outcomes(passed=8)


def test_a_case_level_xfail_is_xfailed_in_every_check_not_xpassed(pytester):
    # `wrong` fails in vjp only; under a case-level xfail its passing `value` item is part of the
    # expected failure (xfailed), not an xpass. A case that passes everywhere is an xpass.
    failing = WRONG + 'xfail: "sin with a wrong backward"\n'
    passing = GOOD.replace("name: good", "name: fine").replace("dtype: [float32, float64]", "dtype: float64")
    _cases(pytester, wrong=failing, fine=passing + 'xfail: "not really"\n')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--harness-allow-target", "-rxX")
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 2 and outcomes.get("xpassed") == 2, outcomes
    result.stdout.fnmatch_lines(["*wrong?float64?::value*the case fails in another check*"])



def test_a_check_no_path_of_which_can_run_is_a_skipped_item_not_a_failure(pytester):
    import shutil
    from pathlib import Path

    _cases(pytester, classic=CLASSIC)
    shutil.copy(Path(__file__).parent / "classic_functions.py", pytester.path / "classic_functions.py")
    sys.modules.pop("classic_functions", None)
    result = pytester.runpytest("cases", "--harness-allow-target", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*no torch path of jvp can run*forward mode needs a jvp staticmethod*"])


def test_the_error_that_asks_for_the_flag_names_the_plugins_flag(pytester):
    _cases(pytester, classic=CLASSIC)
    result = pytester.runpytest("cases")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*imports of user code need --harness-allow-target*"])


def test_only_case_files_opted_into_are_collected(pytester):
    """An unrelated project's YAML (even under a folder named cases) is never touched; the
    folders named on the command line, or in the `harness_cases` ini option, are."""
    other = pytester.mkdir("tests")
    (other / "cases").mkdir()
    (other / "cases" / "config.yaml").write_text("foo: 1\n")
    (other / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    pytester.runpytest().assert_outcomes(passed=1)  # no 'unknown key foo' item
    _cases(pytester, good=GOOD)
    pytester.runpytest().assert_outcomes(passed=1)  # cases/ not opted into: a plain run leaves it alone
    pytester.runpytest("cases").assert_outcomes(passed=4)
    pytester.makeini("[pytest]\nharness_cases = cases\n")
    pytester.runpytest().assert_outcomes(passed=5)


def test_a_device_list_gives_items_per_device(pytester):
    import torch

    _cases(pytester, dev="name: dev\ninputs: {x: 0.5}\nexpr: sin(x)\ndevice: [cpu, cuda]\nchecks: [value]\n")
    result = pytester.runpytest("cases", "-v")
    assert "too many values to unpack" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*dev?float64 on cpu?::value PASSED*"])
    if torch.cuda.is_available():
        result.stdout.fnmatch_lines(["*dev?float64 on cuda?::value PASSED*"])
    else:
        result.stdout.fnmatch_lines(["*dev?float64 on cuda?::value FAILED*", "*device 'cuda' is not available here*"])
