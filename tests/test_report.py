"""Report writers: JUnit XML, Markdown, HTML with plots; all pure functions of the results."""

import xml.etree.ElementTree as ET

from classic_functions import CLASSIC_CASE as CLASSIC

from harness.cases import load_text
from harness.report import html, junit, markdown, write_atomic
from harness.run import check_case

CASES = """
cases:
  - {name: fine, inputs: {x: 0.5}, expr: exp(x), checks: [value, grad]}
  - name: bad  # torch's tanh' is 1 - y*y: 0 where tanh(x) rounds to 1 (a finding, README), exact 8.2e-9
    inputs: {x: 10.0}
    expr: tanh(x)
    checks: [grad]
    dtype: float32
  - {name: kinked, inputs: {x: 0.0}, expr: relu(x), checks: [grad]}
  - {name: broken, inputs: {x: 1.0}, expr: expp(x), checks: [value]}
"""


def results():
    out = []
    for case in load_text(CASES, "cases/r.yaml"):
        out += check_case(case)
    return out


def test_junit_xml_is_valid_and_counts():
    rs = results()
    root = ET.fromstring(junit.render(rs))
    assert root.tag == "testsuite" and root.get("errors") == "1"
    names = [c.get("name") for c in root.iter("testcase")]
    assert "fine[float64] value" in names and "fine[float64] grad" in names
    statuses = {c.get("name"): [e.tag for e in c] for c in root.iter("testcase")}
    assert next(r.status for r in rs if r.name == "bad") == "fail"
    assert statuses["bad[float32] grad"] == ["failure"] and statuses["fine[float64] grad"] == []
    assert statuses["broken[-] -"] == ["error"]
    assert root.get("failures") == "1" and int(root.get("tests")) == len(names)  # the header counts its testcases


def test_markdown_summary():
    text = markdown.render(results())
    assert text.startswith("# harness") and "passed" in text and "| broken | - | error |" in text
    assert "kinked" in text


def test_html_has_a_table_and_plots_for_kinks_and_failures():
    page = html.render(results(), {"torch": "x"})
    assert page.startswith("<!doctype html>") and "<table>" in page
    assert "kinked [float64]" in page and "<svg" in page and "<polyline" in page
    assert "<script" not in page  # nothing runs, nothing loads from the network


def test_write_atomic_leaves_no_temporary_files(tmp_path):
    write_atomic(tmp_path / "a" / "r.txt", "hello")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r.txt"]
    assert (tmp_path / "a" / "r.txt").read_text() == "hello"


def test_complex_cases_report_their_holomorphy():
    (case,) = load_text("name: cx\ninputs: {z: {points: [{re: 1, im: 2}]}}\noutputs: {ex: exp(z), a: abs(z)}\n"
                        "checks: [value]\ndtype: complex128\n", "cases/c.yaml")
    rs = check_case(case)
    text, page = markdown.render(rs), html.render(rs, {})
    for shown in (text, page):
        assert "holomorphy" in shown and "holomorphic (Cauchy-Riemann holds)" in shown and "not holomorphic" in shown



def classic_results():
    from harness.run import Options

    (case,) = load_text(CLASSIC, "cases/classic.yaml")
    return check_case(case, Options(allow_targets=True))


def test_unsupported_paths_are_counted_apart_in_every_report():
    import json

    from rich.console import Console

    from harness.report import jsonfile
    from harness.report.console import print_report

    rs = classic_results()
    (r,) = rs
    assert r.status == "unsupported" and r.message.startswith("check jvp: no torch path could run")
    root = ET.fromstring(junit.render(rs))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert root.get("tests") == str(len(cases)) == "4"  # value, vjp, jvp, and the forward traced against expr
    assert cases["classic[float64] forward"].find("failure") is None
    assert root.get("skipped") == str(sum(1 for c in cases.values() if c.find("skipped") is not None)) == "1"
    assert root.get("failures") == root.get("errors") == "0"
    assert "forward mode needs a jvp staticmethod" in cases["classic[float64] jvp"].find("skipped").text
    assert "setup_context" in cases["classic[float64] vjp"].find("system-out").text  # passed, one path unsupported
    text = markdown.render(rs)
    assert "## Torch paths the callable cannot run" in text and "vjp > torch.func.vjp" in text
    assert "| unsupported | 1 |" in text
    page = html.render(rs, {})
    assert "Torch paths the callable cannot run (4)" in page and "jvp &gt; forward_ad.make_dual" in page
    assert json.loads(jsonfile.render(rs, {}))["summary"]["unsupported"] == 1
    console = Console(record=True, width=200)
    print_report(rs, console)
    out = console.export_text()
    assert "0 passed, 0 failed, 0 errors\n" in out and "1 unsupported" in out and "(1 result in all)" in out
    assert "4 torch paths unsupported" in out
    assert "UNSUPPORTED in 1 case: jvp > forward_ad.make_dual: Softplus: forward mode needs a jvp" in out
    verbose = Console(record=True, width=200)
    print_report(rs, verbose, verbose=True)
    assert "UNSUPPORTED classic [float64]: jvp > forward_ad.make_dual: Softplus" in verbose.export_text()


def test_a_line_whose_worst_element_is_another_checks_expected_failure_says_so():
    """A kink case whose worst element is in a check marked xfail: the line names that status, so
    an error far past its allowance under KINK does not read as one the kink excused."""
    from harness.report.console import result_line

    text = """
cases:
  - name: mixed  # relu's kink at 0; tanh' at 10 in float32 is 0 in torch (a finding), marked xfail
    inputs: {x: 0.0, y: 10.0}
    expr: relu(x) + tanh(y)
    checks: [value, {grad: {xfail: {reason: "finding: tanh' is 1 - y^2 in torch"}}}]
    dtype: float32
"""
    (result,) = check_case(load_text(text, "cases/m.yaml")[0])
    line = result_line(result)
    assert result.status == "kink" and line.startswith("KINK mixed [float32] grad > y (xfail): "), line
    fine = result_line(results()[0])
    assert fine.startswith("PASS fine [float64] ") and "(pass)" not in fine  # a pass names no status
