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
    main(["run", str(ROOT_CASES / "core" / "findings.yaml"), str(ROOT_CASES / "core" / "elementwise.yaml"),
          "-k", "kink", "--reports", str(tmp_path)])
    main(["run", str(ROOT_CASES / "core"), "--reports", str(tmp_path)])
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
