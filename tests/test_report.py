"""Report writers: JUnit XML, Markdown, HTML with plots; all pure functions of the results."""

import xml.etree.ElementTree as ET

from harness.cases import load_text
from harness.report import html, junit, markdown, write_atomic
from harness.run import check_case

CASES = """
cases:
  - {name: fine, inputs: {x: 0.5}, expr: exp(x), checks: [value, grad]}
  - name: bad
    inputs: {x: {shape: [5], sample: {uniform: [-1, 1]}}}
    expr: sin(x)
    checks: [{value: {tolerance: {ulps: 0, model: 0}}}]
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
    bad_status = next(r.status for r in rs if r.name == "bad")
    if bad_status == "fail":
        assert statuses["bad[float32] value"] == ["failure"]
    assert statuses["broken[-] -"] == ["error"]


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
