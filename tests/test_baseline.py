"""The regression gate: newly failing cases and grown errors fail it, fixed cases are listed."""

import json

from harness import baseline
from harness.cli import main
from harness.results import CaseResult, Comparison


def result(status, ulps=1.0, name="c"):
    comparison = Comparison("grad", "p", "x", "pass" if status != "fail" else "fail", max_ulps=ulps)
    return CaseResult(name, "f.yaml", 1, "float64", status, (comparison,))


def doc(*results):
    from harness.report import jsonfile

    return json.loads(jsonfile.render(results, {}, timings=False, slim=True))


def test_newly_failing_and_grown_errors_are_regressions():
    old = doc(result("pass", 2.0), result("pass", 1.0, name="d"), result("fail", name="e"))
    gate = baseline.compare([result("fail"), result("pass", 5.0, name="d"), result("pass", name="e")], old)
    assert len(gate.regressions) == 2 and not gate.ok
    assert "newly fail" in gate.regressions[0] and "grew from 1 to 5 ulps" in gate.regressions[1]
    assert gate.fixed == ("e [float64]: fail -> pass",)


def test_known_failures_and_small_growth_pass_the_gate():
    old = doc(result("fail"), result("pass", 3.0, name="d"))
    gate = baseline.compare([result("fail"), result("pass", 5.9, name="d")], old, factor=2.0)
    assert gate.ok


def test_cli_gate_and_update(tmp_path, capsys):
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: {shape: [64], sample: {uniform: [-3, 3]}}}\nexpr: sin(x)\n"
                    "checks: [value]\n")
    base = tmp_path / "baseline.json"
    assert main(["run", str(case), "--reports", str(tmp_path / "r"), "--update-baseline", str(base)]) == 0
    assert main(["run", str(case), "--reports", str(tmp_path / "r"), "--baseline", str(base)]) == 0
    assert "0 regressions, 0 fixed" in capsys.readouterr().out
    case.write_text("name: c\ninputs: {x: {shape: [64], sample: {uniform: [-3, 3]}}}\nexpr: sin(x)\n"
                    "checks: [{value: {tolerance: {ulps: 0, model: 0}}}]\n")
    code = main(["run", str(case), "--reports", str(tmp_path / "r"), "--baseline", str(base)])
    out = capsys.readouterr().out
    assert code == 1 and "REGRESSION: c [float64]: newly fail" in out
    assert main(["run", str(case), "--reports", str(tmp_path / "r"), "--baseline", str(tmp_path / "nope.json")]) == 2


def test_error_growth_on_another_cpu_is_drift_and_statuses_still_gate():
    """A baseline written on an AVX-512 machine, read on an AVX2 one: the same torch rounds its
    matrix kernels differently there, so grown errors are listed, not gated; a new failure is."""
    old = doc(result("pass", 1.0), result("pass", 1.0, name="d"))
    old["versions"] = {"cpu": "x86_64 AVX512"}
    gate = baseline.compare([result("pass", 5.0), result("pass", 1.0, name="d")], old, cpu="x86_64 AVX2")
    assert gate.ok and gate.other_cpu == "x86_64 AVX512" and "grew from 1 to 5 ulps" in gate.drift[0]
    gate = baseline.compare([result("pass", 5.0), result("fail", name="d")], old, cpu="x86_64 AVX2")
    assert not gate.ok and "newly fail" in gate.regressions[0] and len(gate.drift) == 1
    same = baseline.compare([result("pass", 5.0)], old, cpu="x86_64 AVX512")  # the baseline's own CPU: gated
    assert not same.ok and not same.drift and same.other_cpu is None
    del old["versions"]  # written before the CPU was recorded: not known to be this one
    assert baseline.compare([result("pass", 5.0)], old, cpu="x86_64 AVX2").other_cpu == "a CPU it does not record"


def _gate_on_another_cpu(tmp_path, capsys, cpu_text: str) -> list[str]:
    """A baseline written here, its CPU then rewritten to `cpu_text`: the gate's printed lines."""
    from harness.cli import cpu

    case = tmp_path / "c.yaml"
    case.write_text("name: c\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value]\n")
    base = tmp_path / "baseline.json"
    assert main(["run", str(case), "--reports", str(tmp_path / "r"), "--update-baseline", str(base)]) == 0
    written = json.loads(base.read_text())
    assert written["versions"]["cpu"] == cpu() and cpu().split()[0]  # "x86_64 AVX2 AuthenticAMD", say
    written["versions"]["cpu"] = cpu_text
    base.write_text(json.dumps(written))
    capsys.readouterr()
    assert main(["run", str(case), "--reports", str(tmp_path / "r"), "--baseline", str(base)]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_cli_records_the_cpu_and_says_when_growth_is_not_gated(tmp_path, capsys):
    out = "\n".join(_gate_on_another_cpu(tmp_path, capsys, "another-machine AVX512"))
    assert "written on another-machine AVX512, this run is on" in out and ", 0 drifted" in out


def test_a_baselines_cpu_is_printed_as_one_short_line(tmp_path, capsys):
    """The file's own text: a newline in it cannot start a line of the log (a forged summary)."""
    lines = _gate_on_another_cpu(tmp_path, capsys, "evil\n0 regressions, 0 fixed\r\x1b[2J" + "x" * 100_000)
    (said,) = [line for line in lines if "listed, not gated" in line]
    assert "written on evil 0 regressions, 0 fixed \\x1b[2Jxxx" in said and len(said) < 400
    assert not any(line.startswith("0 regressions") for line in lines)
