"""Reports nothing can break: hostile case names, files, messages and xfail reasons in every report."""

import io
import json
import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from harness.report import html, jsonfile, junit, markdown, unsupported_by_reason, where, write_atomic
from harness.report.console import print_report
from harness.report.text import html_text, markdown_cell, visible, xml_text
from harness.results import CaseResult, Comparison

HOSTILE = [
    "nul\x00 bel\x07 bs\x08 vt\x0b ff\x0c esc\x1b del\x7f nel\x85 csi\x9b",
    "lone \ud800 and \udfff surrogates",
    "ansi \x1b[38;5;99mEVIL\x1b[0m osc \x1b]8;;http://evil\x07click\x1b]8;;\x07 c1 \x9d0;title\x9c",
    "rich [bold]x[/bold] [link=http://evil]y[/link] [/] :warning: :thumbs_up:",
    "cr\roverwrite\nnew line\r\nwindows\ttab\u2028line sep\u2029para sep",
    "# heading",
    "[link](http://x) ![img](http://x/i.png) <http://auto> http://bare www.bare.com",
    "pipe | back\\slash \\| ` tick *star* _under_ ~~strike~~ $math$ &amp; &#124; &lt;b&gt;",
    "<!-- comment --> <svg onload=alert(1)> </script><script>alert(1)</script> & \"q\" 'a' <b>bold</b>",
    "bidi \u202eevil\u202c \u2066isolate\u2069 \u200fmark \u061c",
    "nonchar \ufffe \uffff \ufdd0 \U0001fffe \U0010ffff",
    "\\x01 spelled out, C:\\cases\\a.yaml",
    "",
]
BAD = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff"
                 "\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0010ffff]")


def _series() -> tuple[tuple[float, float, float, float, float], ...]:
    return ((0.0, 1.0, 1.0, 0.0, 1.0), (1.0, 2.0, 2.5, 3.0, 1.0))


def hostile_results() -> list[CaseResult]:
    """Every status a report shows, each with hostile text in every user field."""
    out = []
    for i, h in enumerate(HOSTILE):
        fail = Comparison(check="value", path=f"p{h}", part="real", status="fail", mismatched=1, count=2,
                          max_ulps=3.0, message=f"value > p: {h}", series=_series(), torch_values=(float("nan"), 2.0),
                          exact_values=(1.0, 2.5))
        unsupported = Comparison(check="jvp", path="forward_ad.make_dual", part="real", status="unsupported",
                                 message=f"jvp > forward_ad.make_dual: unsupported: {h}")
        out += [
            CaseResult(name=f"fail {h}", file=f"cases/{h}.yaml", line=i, dtype="float64", status="fail",
                       comparisons=(fail, unsupported), message=h),
            CaseResult(name=f"error {h}", file=f"cases/{h}.yaml", line=i, dtype=h, status="error", message=h),
            CaseResult(name=f"xfail {h}", file="x.yaml", line=i, dtype="float32", status="xfail", xfail=h,
                       comparisons=(Comparison(check="grad", path="autograd.grad", part="real", status="xfail",
                                               message=h, series=_series()),), message=h),
            CaseResult(name=f"kink {h}", file="k.yaml", line=i, dtype="float64", status="kink", device=h,
                       comparisons=(Comparison(check="grad", path="autograd.grad", part="real", status="kink",
                                               message=h, series=_series()),), message=h),
            CaseResult(name=f"pass {h}", file="p.yaml", line=i, dtype="complex128", status="pass",
                       comparisons=(Comparison(check="value", path="call", part="real", status="pass"), unsupported),
                       exact={f"{h} holomorphy": h, h: "exp(z)"}),
        ]
    return out


# --- visible and the escapers -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "shown"), [
    ("a\x00b", "a\\x00b"), ("\x1b[31m", "\\x1b[31m"), ("\x07", "\\x07"), ("\x7f\x85\x9f", "\\x7f\\x85\\x9f"),
    ("l1\nl2\r\n\t", "l1\\nl2\\r\\n\\t"), ("\ud800", "\\ud800"), ("\udfff", "\\udfff"), ("\u202e", "\\u202e"),
    ("\u2066\u2069\u200e\u200f\u061c", "\\u2066\\u2069\\u200e\\u200f\\u061c"), ("\u2028\u2029", "\\u2028\\u2029"),
    ("\ufffe\uffff\ufdd0", "\\ufffe\\uffff\\ufdd0"), ("\U0001fffe\U0010ffff", "\\U0001fffe\\U0010ffff"),
])
def test_visible_writes_the_python_escape(text, shown):
    assert visible(text) == shown


def test_visible_leaves_printable_text_and_backslashes_alone():
    for text in ("softplus-classic", "point 0 (x=-30.0): rel 0.00102", "é ∂ 𝔸 αβ ✓ 中文 עברית", "C:\\a\\b",
                 "\\x01", "[bold]x[/bold] <b> | # ` * _", "\ufeff\u00a0\u200b"):
        assert visible(text) == text


@given(st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from("".join(HOSTILE)))))
def test_visible_gives_one_line_of_encodable_xml_safe_text(text):
    shown = visible(text)
    assert BAD.search(shown) is None and len(shown.splitlines()) <= 1
    shown.encode("utf-8")  # strict: no surrogate left
    cell = markdown_cell(text)
    assert "<" not in cell and "](" not in cell and "\n" not in cell and not re.search(r"(?<!\\)(\\\\)*\|", cell)
    assert not set("<>\"'") & set(html_text(text))
    ET.fromstring(f"<a b='{html_text(text)}'>{html_text(text)}</a>")  # html_text is XML-safe too
    element = ET.Element("a", b=xml_text(text))
    element.text = xml_text(text)
    assert ET.fromstring(ET.tostring(element, encoding="unicode")).text in (shown, None)


# --- junit.xml ----------------------------------------------------------------------------------------


def test_junit_is_well_formed_shows_every_string_and_counts_right(tmp_path):
    rs = hostile_results()
    text = junit.render(rs)
    assert BAD.search(text.replace("\n", "")) is None  # nothing raw that XML 1.0 cannot carry
    root = ET.fromstring(text)
    xml.dom.minidom.parseString(text.encode("utf-8"))
    write_atomic(tmp_path / "junit.xml", text)
    xml.dom.minidom.parse(str(tmp_path / "junit.xml"))
    cases = list(root.iter("testcase"))
    assert root.get("tests") == str(len(cases)) == str(sum(len({c.check for c in r.comparisons}) or 1 for r in rs))
    for kind, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert root.get(key) == str(sum(1 for c in cases if c.find(kind) is not None))
    assert root.get("failures") == root.get("errors") == str(len(HOSTILE))
    names = {c.get("name") for c in cases}
    classnames = {c.get("classname") for c in cases}
    for r in rs:
        for check in sorted({x.check for x in r.comparisons}) or ["-"]:
            assert visible(f"{r.name}[{where(r)}] {check}") in names
        assert visible(f"{r.file}:{r.line}") in classnames
    messages = {e.get("message") for c in cases for e in c if e.tag in ("failure", "error", "skipped")}
    bodies = [e.text or "" for c in cases for e in c]
    for h in HOSTILE:
        assert visible(h) in messages and f"xfail: {visible(h)}" in messages
        assert f"value > p: {visible(h)}" in bodies  # one message per line of the body
        assert f"jvp > forward_ad.make_dual: unsupported: {visible(h)}" in bodies  # the pass case's system-out
    assert any("\\ud800" in m for m in messages) and any("\\x1b[38;5;99m" in m for m in messages)


# --- summary.md ---------------------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def test_markdown_shows_every_string_literally_one_row_each():
    rs = hostile_results()
    text = markdown.render(rs)
    lines = text.split("\n")
    ours = {"<details><summary>kinks, undefined points, unsupported checks and expected failures</summary>",
            "</details>"}
    columns = 0
    for line, after in zip(lines, lines[1:] + [""]):
        assert BAD.search(line) is None
        if line not in ours:
            assert "<" not in line and "](" not in line and "<!--" not in line, line
        if after.startswith("|---"):  # a header: its delimiter row says how many cells each row has
            columns = after.count("|") - 1
        if line.startswith("| "):
            assert _unescaped_pipes(line) == columns + 1, line  # no cell splits, none merges
    rows = [line for line in lines if line.startswith("| ")]
    n = len(HOSTILE)
    headers, statuses = 5, 5  # the count table lists pass, fail, kink, error and xfail
    failures, noted = 2 * n, 2 * n  # fail and error; xfail and kink
    cannot = 2 * n  # the fail and the pass case each have one unsupported reason
    assert len(rows) == headers + statuses + failures + noted + cannot + n  # + one holomorphy row a case
    headings = [line for line in lines if line.startswith("#")]
    assert headings == ["# harness: symbolic vs autodiff", "## Failures", "## Torch paths the callable cannot run",
                        "## Complex cases: holomorphy"]
    assert text.count("\n") == len(lines) - 1


class _Cells(HTMLParser):
    """Rows of table cells (their text) and every tag of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_markdown_renders_each_cell_as_its_literal_text():
    markdown_it = pytest.importorskip("markdown_it")
    rs = hostile_results()
    rendered = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown.render(rs))
    parsed = _Cells()
    parsed.feed(rendered)
    assert set(parsed.tags) <= {"h1", "h2", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "details",
                                "summary"}  # no link, image, emphasis, code, strikethrough, svg, script
    assert parsed.tags.count("strong") == 1 and parsed.tags.count("h1") == 1
    rows = [tuple(row) for row in parsed.rows]

    def shown(*texts: str) -> tuple[str, ...]:
        return tuple(visible(t).strip(" ") for t in texts)  # a table cell's outer spaces are not its text

    assert len(rows) == len(markdown.render(rs).split("\n| ")) - 1  # one <tr> for each line that starts a row
    for r in rs:
        if r.status in ("fail", "error"):
            assert shown(r.name, where(r), r.status, r.message) in rows
        if r.status in ("kink", "xfail"):
            assert shown(r.name, where(r), r.status, r.xfail or r.message) in rows
        for reason, names in unsupported_by_reason(r).items():
            assert shown(r.name, where(r), ", ".join(names), reason) in rows
        for key, verdict in r.exact.items():
            if key.endswith(" holomorphy"):
                assert shown(r.name, where(r), key.removesuffix(" holomorphy"), verdict) in rows


def test_markdown_cell_escapes():
    assert markdown_cell("a|b") == "a\\|b" and markdown_cell("\\|") == "\\\\\\|"
    assert markdown_cell("![x](http://y)") == "\\!&#91;x&#93;(http\\://y)"
    assert markdown_cell("www.x.org") == "www\\.x.org" and markdown_cell("WWW.x.org") == "WWW\\.x.org"
    assert markdown_cell("<!-- & -->") == "&lt;\\!-- &amp; -->" and markdown_cell("a\nb") == "a\\\\nb"
    assert markdown_cell("*a* _b_ `c` ~d~ $e$ #f") == "\\*a\\* \\_b\\_ \\`c\\` \\~d\\~ \\$e\\$ \\#f"
    assert markdown_cell("check > path: 1.5 (x=-3)") == "check > path: 1.5 (x=-3)"


# --- index.html ---------------------------------------------------------------------------------------


def test_html_escapes_every_string_in_text_and_attributes():
    rs = hostile_results()
    page = html.render(rs, {"torch": "</script><script>alert(1)</script>", "x\x1b": "\ud800"})
    page.encode("utf-8")
    assert BAD.search(page.replace("\n", "")) is None
    lowered = page.lower()
    assert "<script" not in lowered and "</script" not in lowered and "<!--" not in page
    parsed = _Cells()
    parsed.feed(page)
    assert not [a for a in parsed.attributes if a.startswith("on")]  # no onload=, onclick=: only our attributes
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "strong", "small",
                                "table", "tr", "th", "td", "a", "span", "code", "div", "figure", "figcaption", "svg",
                                "line", "text", "polyline", "circle", "rect", "polygon"}
    rows = [tuple(row) for row in parsed.rows]
    for r in rs:
        assert any(row[:2] == (visible(r.name), visible(where(r))) for row in rows)
        assert any(row[-1] == visible(f"{r.file}:{r.line}") for row in rows)
    assert html_text("<a href='x' onclick=\"y\">&") == "&lt;a href=&#x27;x&#x27; onclick=&quot;y&quot;&gt;&amp;"


# --- the console --------------------------------------------------------------------------------------

SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styles


@pytest.mark.parametrize("terminal", [True, False])
@pytest.mark.parametrize("verbose", [True, False])
def test_console_prints_user_text_inert_and_one_line(terminal, verbose):
    rs = hostile_results()
    out = io.StringIO()
    colour = "truecolor" if terminal else "auto"  # auto: none, into a file
    print_report(rs, Console(file=out, force_terminal=terminal, color_system=colour, width=80), verbose)
    text = SGR.sub("", out.getvalue())
    assert "\x1b" not in text and "\r" not in text and BAD.search(text.replace("\n", "")) is None
    assert "⚠" not in text and "👍" not in text  # no emoji codes
    lines = text.split("\n")
    for h in HOSTILE:
        if terminal:  # a table, then each failure's message on a line of its own
            assert f"FAIL {visible(h)}" in lines and f"ERROR {visible(h)}" in lines
        elif h:  # a line per result, its message (if any) at the end
            assert any(line.startswith("FAIL ") and line.endswith(f": {visible(h)}") for line in lines)
            assert any(line.startswith("ERROR ") and line.endswith(f": {visible(h)}") for line in lines)
        assert f"  value > p: {visible(h)}" in lines
    rich = "rich [bold]x[/bold] [link=http://evil]y[/link] [/] :warning: :thumbs_up:"
    assert (f"FAIL {rich}" in lines) if terminal else any(line.endswith(f": {rich}") for line in lines)
    if not terminal:
        assert "\x1b" not in out.getvalue()


def test_console_table_shows_markup_literally():
    out = io.StringIO()
    rs = [r for r in hostile_results() if r.name.startswith("fail rich")]
    print_report(rs, Console(file=out, width=400), verbose=True)
    text = out.getvalue()
    assert "fail rich [bold]x[/bold] [link=http://evil]y[/link] [/] :warning: :thumbs_up:" in text
    assert "[nan, 2]" in text and "[1, 2.5]" in text  # value lists are not markup either


# --- writing ------------------------------------------------------------------------------------------


def test_write_atomic_never_raises_on_surrogates(tmp_path):
    write_atomic(tmp_path / "s.txt", "a\ud800b\udfff")
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == "a\\ud800b\\udfff"
    assert [p.name for p in tmp_path.iterdir()] == ["s.txt"]


def test_every_report_writes_and_reads_back(tmp_path):
    rs = hostile_results()
    for name, text in (("report.json", jsonfile.render(rs, {"torch": "\ud800"})), ("junit.xml", junit.render(rs)),
                       ("summary.md", markdown.render(rs)), ("index.html", html.render(rs, {}))):
        write_atomic(tmp_path / name, text)
        assert (tmp_path / name).read_bytes().decode("utf-8") == text  # nothing needed replacing
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in doc["results"]] == [r.name for r in rs]  # exact, surrogates and all
    assert [r["xfail"] for r in doc["results"]] == [r.xfail for r in rs]
    assert (tmp_path / "report.json").read_bytes().isascii()
