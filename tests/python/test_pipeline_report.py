"""`qlake report --html`: a self-contained page whose plots a real browser draws. The page
is loaded in Debian's headless chromium (installed by scripts/setup.sh) and the DOM after
its script ran must hold the plots with their marks."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from pipeline_util import write_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Figures(HTMLParser):
    def __init__(self):
        super().__init__()
        self.body_rendered = None
        self.figures = {}  # data-plot -> data-rendered
        self.marks = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_rendered = a.get("data-rendered")
        if tag == "figure" and "data-plot" in a:
            self.figures[a["data-plot"]] = int(a.get("data-rendered", "0"))
        if tag == "rect" and a.get("class") == "mark":
            self.marks += 1
        for k in ("src", "href"):
            if k in a:
                self.external.append(a[k])


def test_html_report_renders_in_headless_chromium(run_qlake, qlake_bin, tmp_path):
    assert CHROMIUM, "chromium not found: run scripts/setup.sh (it installs Debian's chromium)"
    mirror = tmp_path / "mirror"
    run_qlake("synth", "-q", "--out", mirror, "--from", "2025-01-02", "--to", "2025-01-08",
              "--scale", "0.01", "--datasets", "stocks_daily,stocks_minute",
              "--faults", "duplicate_rows,negative_volume")
    (mirror / "us_stocks_sip/day_aggs_v1/2025/01/2025-01-06.csv.gz").unlink()
    proj = tmp_path / "proj"
    write_project(proj, mirror, ["stocks_daily", "stocks_minute"])
    run_qlake("sync", "--now", "2025-01-09T18:00:00Z", cwd=proj)
    run_qlake("sync", "--now", "2025-01-09T18:00:00Z", cwd=proj)
    out = tmp_path / "report.html"
    run_qlake("report", "--html", out, "--now", "2025-01-09T18:00:00Z", cwd=proj)
    page = out.read_text()
    # Self-contained: no external scripts, styles or images.
    static = Figures()
    static.feed(page)
    assert static.external == []
    assert not re.search(r"<script[^>]+src=", page)
    data = json.loads(re.search(r'id="qlake-data">(.*?)</script>', page, re.S).group(1))
    names = ["stocks_daily", "stocks_minute", "features/stocks_daily", "features/stocks_minute"]
    assert [d["dataset"] for d in data["datasets"]] == names
    assert {d["dataset"]: d["missing"] for d in data["datasets"]}["stocks_daily"] == ["2025-01-06"]

    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", "--virtual-time-budget=5000",
                          "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    f = Figures()
    f.feed(dom.stdout)
    assert f.body_rendered == "1", "the page's script did not finish"
    plots = f.figures
    assert set(plots) == {f"{kind}-{n}" for kind in ("rows", "days", "quarantine")
                          for n in names} | {"runs"}
    assert plots["rows-features/stocks_minute"] >= 4
    # Rows: one bar per committed day per series (written, quarantined).
    assert plots["rows-stocks_minute"] >= 4
    # Days: 4 committed (01-02 03 07 08) + 1 missing (01-06) for stocks_daily.
    assert plots["days-stocks_daily"] == 5
    assert plots["quarantine-stocks_minute"] >= 1
    assert plots["runs"] == 2
    assert f.marks == sum(plots.values())
