"""`junit.xml`: one testcase per case, dtype and check, for CI systems that read JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from harness.report import counts, where
from harness.results import CaseResult


def render(results: Sequence[CaseResult]) -> str:
    c = counts(results)
    suite = ET.Element("testsuite", name="harness", tests=str(len(results)),
                       failures=str(c["fail"]), errors=str(c["error"]), skipped=str(c["xfail"]))
    for r in results:
        checks = sorted({x.check for x in r.comparisons}) or ["-"]
        for check in checks:
            comparisons = [x for x in r.comparisons if x.check == check]
            case = ET.SubElement(suite, "testcase", classname=f"{r.file}:{r.line}",
                                 name=f"{r.name}[{where(r)}] {check}", time=f"{r.seconds / len(checks):.3f}")
            failing = [x for x in comparisons if x.status in ("fail", "error")]
            if r.status == "error" and not comparisons:
                ET.SubElement(case, "error", message=r.message).text = r.message
            elif failing and r.status != "xfail":
                kind = "error" if all(x.status == "error" for x in failing) else "failure"
                ET.SubElement(case, kind, message=failing[0].message).text = "\n".join(x.message for x in failing)
            elif r.status == "xfail" or any(x.status == "xfail" for x in comparisons):
                ET.SubElement(case, "skipped", message=f"xfail: {r.xfail or r.message}")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
