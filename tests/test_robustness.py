"""Untrusted case files: a corpus of bad files, no code execution, limits, isolation, Ctrl-C."""

import json
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cases import BadCase, load_file, load_text
from harness.catalogue import OPS
from harness.cli import main
from harness.errors import HarnessError
from harness.expr import parse
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
    pytest.param("cotangent_overflow.yaml", "constant 2**(2**30) overflows float64", id="cotangent-overflow"),
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
    assert main(["run", str(folder), "--reports", str(tmp_path / "r")]) == 2  # an error, never 1 (a failure)
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
    assert done.returncode == 2  # a limit reached: an error, not a failure of torch
    (result,) = json.loads((tmp_path / "r" / "report.json").read_text())["results"]
    assert result["status"] == "error" and "out of memory" in result["message"]


HOSTILE_NAMES = {
    "ctl": "ctl \\x01\\x1b[31mred\\x1b[0m \\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07 [bold]rich[/bold] :warning:",
    "md": "md\\r# Fake heading\\r[link](http://x) ![img](http://x/i.png) <!-- <svg onload=alert(1)> |pipe|",
    "surrogate": "bad\\ud800name",
}


def _hostile_folder(tmp_path: Path) -> Path:
    """Good cases among every kind of hostile file the loader must contain."""
    import os

    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "good.yaml").write_text("name: good\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value, grad]\n")
    for stem, name in HOSTILE_NAMES.items():
        (folder / f"{stem}.yaml").write_text(f'name: "{name}"\ninputs: {{x: 0.5}}\nexpr: sin(x)\n'
                                             f'checks: [{{value: {{xfail: "{name}"}}}}, grad]\n')
    for bad in sorted(p for p in BAD.iterdir() if p.suffix == ".yaml" and "million" not in p.name):
        (folder / bad.name).write_bytes(bad.read_bytes())
    secret = tmp_path / "secret.txt"
    secret.write_text("name: TOPSECRET-7f3a\n")
    os.symlink(secret, folder / "secret.yaml")
    os.mkfifo(folder / "fifo.yaml")
    with open(folder / "huge.yaml", "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GB that must not be read
    (folder / "nl\n1 passed, 0 failed\n.yaml").write_text("name: nl\ninputs: {x: 0.5}\nexpr: zz\nchecks: [value]\n")
    return folder


def test_hostile_files_among_good_ones(tmp_path, capsys):
    import xml.dom.minidom
    import xml.etree.ElementTree as ET

    folder = _hostile_folder(tmp_path)
    reports = tmp_path / "r"
    code = main(["run", str(folder), "--reports", str(reports), "--no-cache"])
    out = capsys.readouterr().out
    assert code == 2  # bad input, not a crash (1) nor a pass
    results = json.loads((reports / "report.json").read_text())["results"]
    by_name = {r["name"]: r for r in results}
    assert by_name["good"]["status"] == "pass"
    for name in HOSTILE_NAMES.values():
        decoded = yaml.safe_load(f'"{name}"')
        assert by_name[decoded]["status"] == "xpass", decoded  # loaded and checked, names kept exactly
    assert {"secret", "fifo", "huge"} <= set(by_name)
    assert "refused: a symlink" in by_name["secret"]["message"]
    assert "not a regular file" in by_name["fifo"]["message"] and "limit 2000000" in by_name["huge"]["message"]
    for text in (out, *(p.read_text(errors="replace") for p in reports.iterdir())):
        assert "TOPSECRET" not in text  # a refused file is never read, so never quoted
        assert "\x1b" not in text and "\r" not in text
    ET.parse(reports / "junit.xml")
    xml.dom.minidom.parse(str(reports / "junit.xml"))
    lines = out.splitlines()
    assert not any(line.strip() == "1 passed, 0 failed" for line in lines)  # not faked by a file name
    assert sum(1 for line in lines if "nl\\n1 passed, 0 failed\\n.yaml:3: unknown name 'zz'" in line) == 1
    summary = (reports / "summary.md").read_text()
    assert "\n# Fake heading" not in summary and "<!--" not in summary and "](http" not in summary


def test_pytest_collects_the_rest_of_a_hostile_folder(tmp_path):
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    folder = _hostile_folder(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
                           "--junitxml", str(tmp_path / "j.xml"), str(folder)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert "error" not in done.stdout.strip().splitlines()[-1], done.stdout[-3000:]  # no collection error
    cases = ET.parse(tmp_path / "j.xml").iter("testcase")
    items = {(c.get("classname"), c.get("name")): [e.tag for e in c] for c in cases}
    by_file: dict[str, list[tuple[str, list[str]]]] = {}
    for (classname, name), outcome in items.items():
        by_file.setdefault(classname.removeprefix("cases.").removesuffix(".yaml"), []).append((name, outcome))
    assert [o for _, o in by_file["good"]] == [[], []]  # value and grad passed
    bad_files = [p.stem for p in BAD.iterdir() if p.suffix == ".yaml" and "million" not in p.name]
    for stem in [*bad_files, "huge"]:
        assert any("failure" in o for _, o in by_file[stem]), (stem, by_file.get(stem))
    for stem in ("secret", "fifo"):  # pytest itself does not collect these; if it did, they would fail
        assert all("failure" in o for _, o in by_file.get(stem, [])), by_file[stem]
    assert "TOPSECRET" not in done.stdout + done.stderr


def test_time_limits_nest_and_an_outer_one_is_never_lost():
    import time

    from harness.errors import CaseTimeout
    from harness.limits import time_limit

    start = time.monotonic()
    with pytest.raises(CaseTimeout):
        with time_limit(0.3):
            try:
                with time_limit(5.0):  # an inner limit does not extend the outer one
                    time.sleep(2)
            except CaseTimeout:
                pass  # swallowed inside: the outer limit still fires once the inner block ends
            time.sleep(2)
    assert time.monotonic() - start < 1.5


def test_show_gives_up_simplifying_but_still_shows(monkeypatch, tmp_path, capsys):
    import time

    import sympy

    import harness.show as show

    def slow(expr, *args, **kwargs):
        time.sleep(5)
        return expr

    monkeypatch.setattr(show, "SIMPLIFY_SECONDS", 0.05)
    monkeypatch.setattr(sympy, "simplify", slow)
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [grad]\n")
    start = time.monotonic()
    assert main(["show", str(case)]) == 0
    assert time.monotonic() - start < 4
    assert "not simplified: over 0.05 s" in capsys.readouterr().out


def test_show_of_a_case_past_its_time_limit(monkeypatch, tmp_path, capsys):
    import time

    import harness.show as show

    monkeypatch.setattr(show, "show", lambda case, options: time.sleep(10))
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [grad]\n")
    assert main(["show", str(case), "--timeout", "0.2"]) == 2
    assert f"{case}:1: error: timed out after 0.2 s" in capsys.readouterr().out


def test_python_m_harness_never_imports_the_checkouts_own_xml(tmp_path):
    import subprocess
    import sys

    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "__init__.py").write_text("raise SystemExit('the checkout hijacked xml')\n")
    (tmp_path / "c.yaml").write_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value]\n")
    done = subprocess.run([sys.executable, "-m", "harness", "run", "c.yaml", "--reports", "r", "--no-cache"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hijacked" not in done.stdout + done.stderr and (tmp_path / "r" / "junit.xml").exists()


@pytest.mark.parametrize("text, value", [("0x10", 16), ("-0b101", -5), ("0o17", 15), ("1_000", 1000),
                                         ("1.5e-3", Fraction(3, 2000)), ("1e-1100", Fraction(1, 10**1100)),
                                         ("1.7976931348623157e308", 17976931348623157 * Fraction(10) ** 292)])
def test_literals_in_range_are_exact(text, value):
    from harness.numbers import read_literal

    assert read_literal(text) == value


def test_yaml_integers_of_every_spelling(tmp_path):
    (case,) = load_text("name: c\nseed: 1:30\ninputs: {x: {shape: [0x3], sample: {uniform: [0, 1]}}}\n"
                        "constants: {a: 010, b: 0b11}\nexpr: x * a + b\nchecks: [value]\n")
    assert case.seed == 90 and case.inputs[0].shape == (3,)
    assert dict(case.constants)["a"].value == 8 and dict(case.constants)["b"].value == 3


def test_a_uniform_wider_than_float64_spans(tmp_path):
    (case,) = load_text("name: w\ninputs: {x: {shape: [64], sample: {uniform: [-1e308, 1e308]}, edges: none}}\n"
                        "expr: x\nchecks: [value]\n")
    values = [float(n.value) for n in case.inputs[0].points[0]]
    assert all(-1e308 <= v <= 1e308 for v in values) and max(values) > 1e307 and min(values) < -1e307


# ---------------------------------------------------------------- a grammar of hostile documents

_DIGITS = st.text("0123456789", min_size=1, max_size=1500)
NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    _DIGITS,  # up to 1,500 digits: past the 1,000-digit limit
    st.builds(lambda m, s, e: f"{m}e{s}{e}", _DIGITS.map(lambda d: d[:20]), st.sampled_from(["", "+", "-"]),
              st.integers(0, 10**9)),
    st.builds(lambda w, f: f"{w}.{f}", _DIGITS.map(lambda d: d[:30]), _DIGITS),
    st.sampled_from(["0x10", "0X1f", "-0b101", "0o17", "0777", "1:30", "190:20:30", "1_000", ".5", "5.", "-0.0",
                     ".inf", "-.inf", ".nan", "1e400", "1e-400", "1.0e+99999999", "0xZZ", "2j", "1__0", "0b", "inf"]),
)
_CHARS = st.characters(codec=None, exclude_categories=()) | st.sampled_from(
    ["\x00", "\x01", "\x1b[31m", "\x1b]8;;http://x\x07", "\r", "\n", "\u202e", "\ud800", "[bold]", "<!--", "|", "`"])


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar holding any text (escapes for everything but printable ASCII)."""
    out = []
    for ch in text:
        n = ord(ch)
        out.append(ch if 32 <= n < 127 and ch not in '"\\' else f"\\x{n:02x}" if n < 256 else
                   f"\\u{n:04x}" if n < 65536 else f"\\U{n:08x}")
    return '"' + "".join(out) + '"'


STRINGS = st.lists(_CHARS, max_size=12).map(lambda parts: _quoted("".join(parts)))
EXPRESSIONS = st.recursive(
    st.sampled_from(["x", "x", "x", "pi", "__import__", "x.real", "2j", "'s'"]) | NUMBERS,
    lambda inner: st.one_of(
        st.builds(lambda op, a: f"{op}({a})", st.sampled_from(["sin", "exp", "log", "sinc", "digamma", "nope"]), inner),
        st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["+", "*", "**", "/", "-"]), inner),
        st.builds(lambda a, n: f"leaky_relu({a}, negative_slope={n})", inner, NUMBERS),
        st.builds(lambda a, d: "(" * d + a + ")" * d, inner, st.integers(1, 300)),
    ), max_leaves=8).map(_quoted)
SHAPES = st.lists(st.sampled_from(["1", "3", "0", "-1", "2.5", "1000001", "9" * 401, "1e400", "x"]), max_size=20)


@st.composite
def hostile_documents(draw: st.DrawFn) -> str:
    number = draw(NUMBERS)
    shape = draw(SHAPES)
    depth = draw(st.integers(0, 700))
    inputs = draw(st.sampled_from([
        f"{{x: {number}}}", "{x: 0.5}", "{x: {shape: [3], sample: {uniform: [-1, 1]}}}",
        f"{{x: {{shape: [{', '.join(shape)}], sample: {{uniform: [{number}, {draw(NUMBERS)}]}}}}}}",
        f"{{x: {{shape: [{', '.join(shape)}], count: {number}, sample: {{normal: [0, {number}]}},"
        f" edges: [{', '.join(draw(st.lists(NUMBERS, max_size=5)))}]}}}}",
        f"{{x: &a {{shape: [3], sample: {{loguniform: [{number}, 10]}}}}}}",
        "[" * depth + "1" + "]" * depth,
    ]))
    def maybe(valid: str, hostile: st.SearchStrategy[str]) -> str:  # each field well-formed half the time,
        return draw(st.just(valid) | hostile)  # so that later fields are reached too

    case = (f"- name: {draw(STRINGS)}\n  inputs: {inputs}\n  expr: {draw(EXPRESSIONS)}\n"
            f"  seed: {maybe('7', NUMBERS)}\n"
            f"  tolerance: {{ulps: {maybe('4', NUMBERS)}, atol: {maybe('0', NUMBERS)}}}\n"
            f"  checks: [value, {{derivative: {{order: {maybe('2', NUMBERS)}}}}},"
            f" {{grad: {{xfail: {draw(STRINGS)}}}}}]\n")
    again = "- name: again\n  inputs: {x: *a}\n  expr: x\n  checks: [value]\n" if "&a" in inputs else ""
    return "cases:\n" + case + again


@settings(max_examples=250, deadline=None, derandomize=True, database=None)
@given(hostile_documents())
def test_a_grammar_of_hostile_documents_loads_to_cases_or_one_line_errors(document):
    import time

    from harness.limits import memory_limit, time_limit

    start = time.monotonic()
    with time_limit(20), memory_limit(2000):  # CaseTimeout or MemoryError would fail the test
        loaded = load_text(document, "<grammar>")
    assert time.monotonic() - start < 20
    assert loaded
    for case in loaded:
        if isinstance(case, BadCase):
            assert case.message.startswith("<grammar>:") and "\n" not in case.message, case.message
            assert len(case.message) < 600 and "Traceback" not in case.message


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(EXPRESSIONS)
def test_a_grammar_of_hostile_expressions_parses_or_says_why(text):
    import yaml as _yaml

    try:
        parse(_yaml.safe_load(text), ops=set(OPS), names={"x", "y"})
    except HarnessError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600


def test_an_xfail_never_hides_the_harness_failing_to_run_a_check(monkeypatch):
    import harness.checks as checks

    def crash(ctx, index, check):
        raise RuntimeError("a bug in the harness")

    monkeypatch.setattr(checks, "check_grad", crash)
    (case,) = load_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value, {grad: {xfail: torch is wrong}}]\n")
    (result,) = check_case(case, Options())
    assert result.status == "error" and "RuntimeError: a bug in the harness" in result.message
    (case,) = load_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nxfail: torch is wrong\nchecks: [value, grad]\n")
    (result,) = check_case(case, Options())
    assert result.status == "error"


def test_a_case_past_its_time_limit_exits_2_not_1(tmp_path, capsys, monkeypatch):
    import time

    import harness.run as run

    monkeypatch.setattr(run, "_check_dtype", lambda *args: time.sleep(10))
    case = tmp_path / "slow.yaml"
    case.write_text("name: slow\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value]\n")
    assert main(["run", str(case), "--timeout", "0.5", "--reports", str(tmp_path / "r"), "--no-cache"]) == 2
    assert "error: timed out after 0.5 s" in capsys.readouterr().out


def test_a_named_folder_that_is_a_symlink_out_of_its_parent_is_refused(tmp_path, monkeypatch, capsys):
    import os

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.yaml").write_text("name: TOPSECRET-11\n")
    (tmp_path / "cases").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "cases" / "link")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "cases/link", "--reports", "r", "--no-cache"]) == 2
    assert main(["show", "cases/link/secret.yaml"]) == 2
    out = capsys.readouterr().out
    assert "refused: cases/link is a symlink to a folder outside cases (not read)" in out and "TOPSECRET" not in out


@pytest.mark.parametrize("name, where, message", [
    ("broadcast_mismatch.yaml", 3, "output 'out': inputs x (shape [3]), y (shape [4]) do not broadcast together"),
    ("target_missing.yaml", 5, "cannot import target 'nomod:f': no module 'nomod'"),
    ("target_without_flag.yaml", 5, "imports of user code need --allow-target"),
])
def test_errors_found_while_preparing_name_their_own_line(name, where, message):
    (case,) = load_file(BAD / name)
    (result,) = check_case(case, Options(allow_targets=name == "target_missing.yaml"))
    assert result.status == "error" and result.bad_input
    assert result.message.startswith(f"{BAD / name}:{where}: ") and message in result.message
    assert "arg 0" not in result.message and "_stride_tricks" not in result.message
