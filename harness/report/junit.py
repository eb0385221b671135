"""`junit.xml`: one testcase per case, dtype and check, for CI systems that read JUnit XML.

Every user string goes through `xml_text`, so the file is well-formed XML 1.0 whatever a case holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from harness.report import where
from harness.report.text import xml_text
from harness.results import CaseResult, Comparison


def render(results: Sequence[CaseResult]) -> str:
    suite = ET.Element("testsuite", name="harness")
    tally = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for r in results:
        checks = sorted({x.check for x in r.comparisons}) or ["-"]
        for check in checks:
            comparisons = [x for x in r.comparisons if x.check == check]
            case = ET.SubElement(suite, "testcase", classname=xml_text(f"{r.file}:{r.line}"),
                                 name=xml_text(f"{r.name}[{where(r)}] {check}"),
                                 time=f"{r.seconds / len(checks):.3f}")
            tally["tests"] += 1
            outcome = _outcome(r, comparisons)
            if outcome is not None:
                kind, message, text = outcome
                ET.SubElement(case, kind, message=message).text = text
                tally[{"failure": "failures", "error": "errors", "skipped": "skipped"}[kind]] += 1
            cannot = [x.message for x in comparisons if x.status == "unsupported"]
            if cannot and outcome is None:
                ET.SubElement(case, "system-out").text = "\n".join(map(xml_text, cannot))
    for key, value in tally.items():
        suite.set(key, str(value))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _outcome(r: CaseResult, comparisons: list[Comparison]) -> tuple[str, str, str] | None:
    """(element, message, text) for a testcase that did not simply pass; text has one line per message."""
    failing = [x for x in comparisons if x.status.problem]
    if r.status == "error" and not comparisons:
        return "error", xml_text(r.message), xml_text(r.message)
    if failing and r.status != "xfail":
        kind = "error" if all(x.status == "error" for x in failing) else "failure"
        return kind, xml_text(failing[0].message), "\n".join(xml_text(x.message) for x in failing)
    if r.status == "xfail" or any(x.status == "xfail" for x in comparisons):
        return "skipped", xml_text(f"xfail: {r.xfail or r.message}"), ""
    if comparisons and all(x.status == "unsupported" for x in comparisons):
        return "skipped", xml_text(comparisons[0].message), "\n".join(xml_text(x.message) for x in comparisons)
    return None
