"""User text made safe to show: `visible`, and one escaper per report format built on it.

Case names, file names, messages and xfail reasons come from YAML files anyone can write, so every
report writer passes each of them through one of these before it reaches a file or a terminal.

`visible` is for eyes, not an encoding: it replaces every character that would move the cursor,
break a line, reorder the text around it, start a terminal escape or that UTF-8 or XML 1.0 cannot
carry, with the escape Python would write for it (`\\n`, `\\x1b`, `\\u202e`, `\\ud800`). A backslash is
left as it is, so Windows paths and messages quoting code read unchanged; the price is that a name
spelling `\\x01` out literally shows like one holding the control character. report.json keeps the
exact strings.
"""

from __future__ import annotations

import re
from html import escape as _html_escape

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_PLANE_ENDS = "".join(chr(plane << 16 | low) for plane in range(1, 17) for low in (0xFFFE, 0xFFFF))
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 (tab, newline, carriage return, ESC, BEL ...), DEL, C1 (CSI, NEL ...)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides and isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates: no UTF-8 for them
    "\ufdd0-\ufdef\ufffe\uffff" + _PLANE_ENDS + "]"  # noncharacters
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    n = ord(char)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def visible(text: str) -> str:
    """`text` with every control, bidi, surrogate and noncharacter code point written as its escape."""
    return _INVISIBLE.sub(_escape, text)


def xml_text(text: str) -> str:
    """For XML text and attributes: only characters XML 1.0 carries (ElementTree escapes `& < > "`)."""
    return visible(text)


def html_text(text: str) -> str:
    """For HTML text and quoted attribute values: `visible`, then `& < > " '` as character references."""
    return _html_escape(visible(text), quote=True)


_MARKDOWN = {c: "\\" + c for c in "\\`*_#!|~$:."} | {"&": "&amp;", "<": "&lt;", "[": "&#91;", "]": "&#93;"}
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]#!|~$&<]|:(?=//)|(?<=www)\.", re.IGNORECASE)


def markdown_cell(text: str) -> str:
    """For a GFM table cell: `visible` (so one line), then every character Markdown or HTML gives a
    meaning escaped: backslash escapes for `` \\ ` * _ # ! | ~ $ `` (and the `:` of `://` and the `.` of
    `www.`, which would autolink), character references for `& < [ ]`, so not even an inert `](` or `<`
    is left. `>` stays: all it can close (a tag, a comment, an autolink) opens with `<`, and a cell never
    starts a line, so no blockquote."""
    return _MARKDOWN_SPECIAL.sub(lambda m: _MARKDOWN[m.group()], visible(text))
