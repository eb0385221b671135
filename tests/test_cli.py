import json
import sys
from pathlib import Path

from harness.cli import main


def test_run_writes_report_and_prints_summary(tmp_path, capsys):
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: exp(x)\nchecks: [value, grad]\n")
    code = main(["run", str(case), "--reports", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "\n1 passed, 0 failed, 0 errors\n" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["schema"] == "harness.report/1" and report["summary"]["pass"] == 1
    (result,) = report["results"]
    assert {c["check"] for c in result["comparisons"]} == {"value", "grad"}
    assert all("max_ulps" in c and "worst" in c for c in result["comparisons"])


def test_failure_exits_1_and_bad_input_exits_2(tmp_path, capsys):
    failing = tmp_path / "f.yaml"
    failing.write_text("name: f\ninputs: {x: {shape: [64], sample: {uniform: [-3, 3]}}}\nexpr: sin(x)\n"
                       "checks: [{value: {tolerance: {ulps: 0, model: 0}}}]\ndtype: float32\n")
    bad = tmp_path / "b.yaml"
    bad.write_text("name: b\ninputs: {x: 0.5}\nexpr: expp(x)\nchecks: [value]\n")
    reports = str(tmp_path / "r")
    assert main(["run", str(failing), "--reports", reports]) == 1  # no float32 sin is exact at 64 points
    assert main(["run", str(bad), "--reports", reports]) == 2
    out = capsys.readouterr().out
    assert "unknown op 'expp' (did you mean 'exp'?)" in out
    assert json.loads((tmp_path / "r" / "report.json").read_text())["summary"]["error"] == 1


def test_wrong_derivative_exits_1(tmp_path, capsys, monkeypatch):
    case = tmp_path / "m.yaml"
    case.write_text("name: m\ninputs: {x: {shape: [8], sample: {uniform: [-2, 2]}}}\nexpr: sin(x)\n"
                    "target: meta_functions:sin_wrong_first\nchecks: [vjp]\n")
    assert main(["run", str(case), "--allow-target", "--reports", str(tmp_path)]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out


def test_filter_ops_show_and_usage(tmp_path, capsys):
    case = tmp_path / "c.yaml"
    case.write_text("cases:\n  - {name: alpha, inputs: {x: 1.0}, expr: x*x, checks: [grad]}\n"
                    "  - {name: beta, inputs: {x: 1.0}, expr: x, checks: [value]}\n")
    assert main(["run", str(case), "-k", "alp", "--reports", str(tmp_path)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    assert main(["ops"]) == 0
    listing = capsys.readouterr().out
    assert "softplus" in listing and "relu6" in listing and "ops; accuracy" in listing
    assert main(["show", str(case), "-k", "alpha"]) == 0
    shown = capsys.readouterr().out
    assert "dy/dx = 2*x" in shown and "torch 2.0" in shown
    assert main(["frobnicate"]) == 2
    assert main(["run", str(tmp_path / "missing.yaml"), "--reports", str(tmp_path)]) == 2


def _without_timings(path):
    doc = json.loads(path.read_text())
    for r in doc["results"]:
        r.pop("seconds")
    return doc


def test_parallel_and_sharded_runs_give_the_same_report(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    for i in range(4):
        (folder / f"c{i}.yaml").write_text(
            f"name: c{i}\ninputs: {{x: {{shape: [6], sample: {{uniform: [-2, 2]}}}}}}\nexpr: tanh(x) * {i + 1}\n"
            "checks: [value, vjp]\ndtype: [float32, float64]\n")
    assert main(["run", str(folder), "--reports", str(tmp_path / "serial")]) == 0
    assert main(["run", str(folder), "--reports", str(tmp_path / "parallel"), "--jobs", "2"]) == 0
    serial, parallel = (_without_timings(tmp_path / d / "report.json") for d in ("serial", "parallel"))
    assert serial == parallel
    assert main(["run", str(folder), "--reports", str(tmp_path / "again")]) == 0
    serial_text = (tmp_path / "serial" / "report.json").read_text()
    again_text = (tmp_path / "again" / "report.json").read_text()
    import re

    strip = re.compile(r'"seconds": [0-9.e-]+')
    assert strip.sub("", serial_text) == strip.sub("", again_text)  # byte for byte but timings
    names = []
    for k in (1, 2):
        assert main(["run", str(folder), "--reports", str(tmp_path / f"s{k}"), "--shard", f"{k}/2"]) == 0
        names += [r["name"] for r in json.loads((tmp_path / f"s{k}" / "report.json").read_text())["results"]]
    assert sorted(set(names)) == ["c0", "c1", "c2", "c3"] and len(names) == 8
    assert main(["run", str(folder), "--shard", "3/2", "--reports", str(tmp_path)]) == 2
    for name in ("junit.xml", "summary.md", "index.html"):
        assert (tmp_path / "serial" / name).exists()


def test_piped_output_is_one_whole_line_per_case_at_any_width(tmp_path):
    import subprocess
    import sys

    deep = tmp_path.joinpath(*(["a folder with a long name and spaces"] * 4))
    deep.mkdir(parents=True)
    case = deep / "cases.yaml"
    case.write_text("cases:\n- name: a-case-whose-name-is-longer-than-the-terminal-is-wide-by-far\n  inputs: {x: 0.5}\n"
                    "  expr: exp(x)\n  checks: [value]\n- name: broken\n  inputs: {x: 0.5}\n  expr: nope(x)\n"
                    "  checks: [value]\n")
    env = {**__import__("os").environ, "COLUMNS": "40"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(case), "--reports", str(tmp_path / "r"),
                           "--no-cache"], capture_output=True, text=True, env=env, timeout=300)
    lines = done.stdout.splitlines()
    (good,) = [line for line in lines if line.startswith("PASS a-case-whose-name-is-longer-than-the-terminal")]
    assert good.startswith("PASS a-case-whose-name-is-longer-than-the-terminal-is-wide-by-far [float64] value > y: ")
    assert "ulps allowed, torch 1.6487212707001282, exact 1.6487212707001282" in good
    (bad,) = [line for line in lines if line.startswith("ERROR broken")]
    assert f"{case}:8: unknown op 'nope'" in bad  # the whole path on the one line, paste-able
    assert lines[-2:] == ["1 passed, 0 failed, 1 error",
                          "0 kink, 0 undefined, 0 unsupported, 0 xfail, 0 xpass (2 results in all)"]
    assert done.returncode == 2


def test_version_and_help_start_without_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom harness.cli import main\nfor argv in (['--version'], ['--help'], ['run', '--help']):\n"
            "    assert main(argv) == 0\nassert 'torch' not in sys.modules and 'sympy' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sympy'))[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_ops_lists_the_catalogue_without_importing_torch():
    """The catalogue names its torch functions; `harness ops` (and loading cases) never imports torch,
    and the names it prints are the functions the harness calls."""
    import subprocess
    import sys

    code = ("import sys\nfrom harness.cli import main\nassert main(['ops']) == 0\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("selu: "))
    assert "torch: torch.nn.functional.selu |" in line  # what runs (torch.selu is another binding)
    import torch

    from harness.catalogue import CATALOGUE, OPS, torch_api

    assert OPS["selu"].torch is torch.nn.functional.selu and OPS["special.i0e"].torch is torch.special.i0e
    for op in CATALOGUE:  # every named function exists, and its public name is printed
        assert callable(op.torch) and torch_api(op).startswith(f"torch.{op.ref.name}"), op.name


def test_a_second_harness_ops_imports_neither_torch_nor_sympy(tmp_path):
    """The listing comes from the catalogue's SymPy forms; stored (sealed, under a fingerprint of the
    sources it comes from), a second `harness ops` prints it without importing SymPy. A listing
    planted without the store's key is not read."""
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom harness.cli import main\nassert main(['ops']) == 0\n"
            "print('imported:', sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sympy'}))\n")
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "store"), "COLUMNS": "100"}

    def listing():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()

    first, second = listing(), listing()
    assert first[-1] == "imported: ['sympy']" and second[-1] == "imported: []"
    assert first[:-1] == second[:-1] and any(line.startswith("softplus: torch: ") for line in second)
    (entry,) = [p for p in (tmp_path / "store").rglob("*.json")]
    mac, _, body = entry.read_bytes().partition(b"\n")
    entry.write_bytes(b"0" * len(mac) + b"\n" + body.replace(b"softplus", b"softplux"))  # forged
    third = listing()
    assert third[-1] == "imported: ['sympy']" and third[:-1] == first[:-1]


def test_a_selection_that_matches_nothing_says_so(tmp_path, capsys):
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: exp(x)\nchecks: [value]\n")
    assert main(["run", str(case), "-k", "nomatch", "--reports", str(tmp_path / "r")]) == 2
    assert f"no case selected: -k 'nomatch' matches none of the 1 cases under {case}" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "empty"), "--reports", str(tmp_path / "r")]) == 2


def test_show_of_a_case_that_errors_says_why_and_exits_2(capsys):
    bad = Path(__file__).parent / "data" / "bad" / "broadcast_mismatch.yaml"
    assert main(["show", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}:3: output 'out': inputs x (shape [3]), y (shape [4]) do not broadcast" in out
    assert "[float64] error" in out


def test_a_reader_closing_the_pipe_leaves_the_exit_code_as_it_was(tmp_path):
    import shlex
    import subprocess

    good = tmp_path / "good.yaml"
    good.write_text("cases:\n" + "".join(f"- name: c{i}\n  inputs: {{x: 0.5}}\n  expr: exp(x)\n  checks: [value]\n"
                                         for i in range(30)))
    command = (f"{shlex.quote(sys.executable)} -m harness run {shlex.quote(str(good))} --no-cache --reports"
               f" {shlex.quote(str(tmp_path / 'r'))} | head -1; exit ${{PIPESTATUS[0]}}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("PASS c0 ") and "Error" not in done.stderr
