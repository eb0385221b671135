"""Untrusted case files: a corpus of bad files, no code execution, limits, isolation, Ctrl-C."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cases import BadCase, load_file, load_text
from harness.cli import main
from harness.errors import HarnessError
from harness.expr import parse
from harness.ops import OPS
from harness.run import Options, check_case

BAD = Path(__file__).parent / "data" / "bad"
EXPECTED = [line.split(" | ") for line in (BAD / "expected.txt").read_text().splitlines()
            if line and not line.startswith("#")]


@pytest.mark.parametrize("name, line, message", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_bad_file_gives_its_one_line_error(name, line, message):
    loaded = load_file(BAD / name)
    bad = [c for c in loaded if isinstance(c, BadCase)]
    assert bad, f"{name} loaded without an error"
    text = bad[0].message
    assert text.startswith(f"{BAD / name}:{line}: "), text
    assert message in text and "\n" not in text


@pytest.mark.parametrize("name, message", [
    pytest.param("cotangent_shape.yaml", "v for 'y' has shape [2], expected [3]", id="cotangent-shape"),
    pytest.param("target_without_flag.yaml", "imports of user code need --allow-target", id="target-needs-flag"),
])
def test_run_time_errors_name_the_file_and_line(name, message):
    (case,) = load_file(BAD / name)
    (result,) = check_case(case, Options())
    assert result.status == "error" and message in result.message
    assert f"{BAD / name}:" in result.message


def test_binary_garbage_and_a_10_mb_file(tmp_path):
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)) * 10)
    (bad,) = load_file(garbage)
    assert bad.message == f"{garbage}:1: not UTF-8 text (byte 128)"
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 10_000_000 + "\n")
    (bad,) = load_file(big)
    assert "limit 2000000" in bad.message and bad.message.startswith(f"{big}:1:")


@pytest.mark.parametrize("text", ["x.__class__.__bases__", "__builtins__", "open('/etc/passwd')", "exec('1')",
                                  "eval('1')", "lambda: 0", "[c for c in x]", "f'{x}'", "x if x else x",
                                  "(x := 1)", "x.real", "getattr(x, 'a')", "__import__('os')"])
def test_no_code_from_case_text(text):
    with pytest.raises(HarnessError):
        parse(text, ops=set(OPS), names={"x"})


def test_a_case_that_runs_too_long_becomes_an_error():
    (case,) = load_text("name: slow\ninputs: {x: {shape: [300000], sample: {uniform: [-1, 1]}}}\n"
                        "expr: exp(sin(x)) * tanh(x)\nchecks: [value, vjp, grad2]\n")
    (result,) = check_case(case, Options(timeout=0.3))
    assert result.status == "error" and result.message.endswith("error: timed out after 0.3 s")


def test_one_exception_never_stops_the_run(tmp_path, monkeypatch):
    folder = tmp_path / "cases"
    folder.mkdir()
    for i in range(3):
        (folder / f"c{i}.yaml").write_text(f"name: c{i}\ninputs: {{x: 0.5}}\nexpr: exp(x) * {i}\nchecks: [value]\n")
    import harness.run as run

    original = run.prepare

    def explode(case, dtype, options, device="cpu"):
        if case.name == "c1":
            raise RuntimeError("sympy blew up")
        return original(case, dtype, options, device)

    monkeypatch.setattr(run, "prepare", explode)
    assert main(["run", str(folder), "--reports", str(tmp_path / "r")]) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    statuses = {r["name"]: r["status"] for r in report["results"]}
    assert statuses == {"c0": "pass", "c1": "error", "c2": "pass"}
    (c1,) = [r for r in report["results"] if r["name"] == "c1"]
    assert "RuntimeError: sympy blew up" in c1["message"] and ".yaml:1:" in c1["message"]


def test_ctrl_c_leaves_valid_reports_of_what_finished(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cases"
    folder.mkdir()
    for i in range(3):
        (folder / f"c{i}.yaml").write_text(f"name: c{i}\ninputs: {{x: 0.5}}\nexpr: exp(x)\nchecks: [value]\n")
    import harness.cli as cli

    calls = []

    def interrupt_second(case, options):
        calls.append(case.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return check_case(case, options)

    monkeypatch.setattr(cli, "check_case", interrupt_second)
    baseline = tmp_path / "baseline.json"
    code = main(["run", str(folder), "--reports", str(tmp_path / "r"), "--update-baseline", str(baseline)])
    assert code == 130
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["name"] for r in report["results"]] == ["c0"]
    assert (tmp_path / "r" / "index.html").exists() and (tmp_path / "r" / "junit.xml").exists()
    assert not baseline.exists()  # a partial run is no baseline
    out = capsys.readouterr().out
    assert "interrupted: 1 of 3 cases finished" in out and "1 passed, 0 failed" in out


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["name", "inputs", "expr", "checks", "dtype", "x", "cases",
                                                       "outputs", "sample", "shape", "points", "v"]), children,
                                      max_size=5), max_leaves=20))
def test_the_loader_never_raises_on_random_yaml(document):
    import yaml

    text = yaml.safe_dump(document)
    for case in load_text(text, "<random>"):
        assert case.name is not None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=60) | st.text(alphabet="x()+-*/.,[]:=<>!0123456789expsinlogabc_ '\"", max_size=60))
def test_the_parser_raises_only_its_own_error(text):
    try:
        parse(text, ops=set(OPS), names={"x", "y"})
    except HarnessError:
        pass


def test_a_case_past_its_memory_limit_becomes_an_error(tmp_path):
    import subprocess
    import sys

    case = tmp_path / "big.yaml"
    case.write_text("name: big\ninputs: {x: {shape: [100000], sample: {uniform: [-1, 1]}}}\nexpr: exp(x)\n"
                    "checks: [value]\n")  # loads within the limit; its check does not
    # in a subprocess: the limit applies to a whole process's address space
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(case), "--memory-limit", "100",
                           "--reports", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    (result,) = json.loads((tmp_path / "r" / "report.json").read_text())["results"]
    assert result["status"] == "error" and "out of memory" in result["message"]
