"""The HTML report in a real headless browser (Debian's chromium; .ci/run installs it)."""

import shutil
import subprocess

import pytest

from harness.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_html_report_renders_with_visible_plots(tmp_path):
    from tests_support import ROOT, ROOT_CASES

    reports = ROOT / "reports"
    main(["run", str(ROOT_CASES / "core" / "findings.yaml"), "--reports", str(tmp_path)])  # torch's findings: plots
    page = (tmp_path / "index.html").as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120).stdout
    assert "<table>" in dom and dom.count("<svg") >= 4 and "<polyline" in dom
    shot = reports / "index.png"
    reports.mkdir(exist_ok=True)
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1300,1800", f"--screenshot={shot}", page],
                   capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a page with a table and plots, not blank


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGBA pixels of an 8-bit, non-interlaced PNG (what chromium writes)."""
    import struct
    import zlib

    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        chunks.setdefault(kind, []).append(png[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6)
    size = 4 if colour == 6 else 3
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    rows, previous, stride = [], bytearray(width * size), width * size
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - size] if i >= size else 0
            b, c = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if size == 4 else bytes(x for j in range(width) for x in (*line[j * 3:j * 3 + 3], 255)))
        previous = line
    return width, height, rows


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_page_links_only_to_sections_and_marks_failures_kinks_and_undefined_points(tmp_path):
    """A kink case, an undefined one and a failing xfail: the summary links only to sections that
    exist, each check's part is one figure with its paths overlaid (not one per path), the axes have
    ticks, and the screenshot shows the markers in their colours."""
    import re

    from tests_support import ROOT_CASES

    main(["run", str(ROOT_CASES / "core" / "elementwise.yaml"), "-k", "relu-kink", "--reports", str(tmp_path / "a")])
    main(["run", str(ROOT_CASES / "core" / "elementwise.yaml"), "--reports", str(tmp_path / "r")])
    page = (tmp_path / "r" / "index.html").read_text()
    ids, links = set(re.findall(r"id='(r\d+)'", page)), re.findall(r"href='#(r\d+)'", page)
    assert links and set(links) <= ids and len(links) == len(set(links))
    for section in page.split("<h2 ")[1:]:
        titles = re.findall(r'text-anchor="middle">([^<]*): error in ulps</text>', section)
        assert len(titles) == len(set(titles))  # one figure per check and part, its paths overlaid
    assert "vjp &gt; x: values" not in page  # a VJP's values (weighted by a random cotangent) are not plotted
    assert page.count('text-anchor="end">1e') >= 3 and "stroke-dasharray" in page
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    shot = tmp_path / "kink.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1000,2400", f"--screenshot={shot}",
                    (tmp_path / "a" / "index.html").as_uri()], capture_output=True, timeout=120, check=True)
    width, height, rows = _pixels(shot.read_bytes())
    colours = {rows[y][x * 4:x * 4 + 3] for y in range(height) for x in range(width)}
    assert bytes.fromhex("9a6700") in colours  # the kink triangles (and the status word), drawn
    assert bytes.fromhex("0550ae") in colours and bytes.fromhex("bc4c00") in colours  # two paths' own colours
