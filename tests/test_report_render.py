"""The resilience report's HTML page renders its charts in headless Chromium, offline.

Needs Debian's ``chromium`` (``./run.sh test`` installs it as root when it is missing); skipped only when it is not
installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from resilience_report.build import main
from resilience_report.scorecard import TARGETS

from tests.report_samples import write_sample_metrics

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; ./run.sh test does it as root)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    write_sample_metrics(folder)
    assert main([str(folder), "--profile", str(ROOT / "resources" / "profiles" / "local.py")]) == 0
    return folder / "resilience-report.html"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_page_is_self_contained(page):
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must not load anything from the network"
    assert "<script src" not in text and "<link" not in text


def test_charts_render_in_headless_chromium(page, tmp_path):
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    expected = re.search(r'data-charts-expected="(\d+)"', dom)
    rendered = re.search(r'data-charts-rendered="(\d+)"', dom)
    assert expected and rendered, "the page's script did not run"
    assert int(expected.group(1)) >= 12  # performance, 3 per load run, percentiles, utilisation, recovery, ...
    assert rendered.group(1) == expected.group(1), f"{rendered.group(1)} of {expected.group(1)} charts rendered"
    assert 'data-rendered="no"' not in dom
    assert dom.count("<svg") == int(expected.group(1))
    # Each chart drew every series it announces: the browser measured a non-empty box for each line, point or bar.
    charts = re.findall(r'<figure class="chart" data-chart="([\w-]+)" data-series="(\d+)"[^>]*data-drawn="(\d+)"', dom)
    assert len(charts) == int(expected.group(1))
    for chart_id, announced, drawn in charts:
        assert int(announced) > 0 and drawn == announced, f"{chart_id}: {drawn} of {announced} series drew"
    kinds = {chart_id for chart_id, _, _ in charts}
    assert {"run-1-latency", "run-1-throughput", "run-1-users", "utilisation-1", "latency-percentiles"} <= kinds
    # The count is a debug line in the footer, not in the page's header.
    footer = dom.split("<footer>", 1)[1]
    assert f"{expected.group(1)} of {expected.group(1)} charts rendered" in footer
    assert "charts rendered" not in dom.split("<footer>", 1)[0]


def test_every_scorecard_row_is_shown_with_its_verdict(page, tmp_path):
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    overall = re.search(r'<div id="verdict" class="(\w+)" data-verdict="(\w+)">(\w+)</div>', dom)
    assert overall and overall.groups() == ("FAIL", "FAIL", "FAIL"), "the overall verdict is not at the top"
    assert dom.index('id="verdict"') < dom.index('id="scorecard"') < dom.index('id="failed-tests"')
    rows = dict(re.findall(r'<tr data-row="([\w-]+)" data-verdict="([\w ]+)">', dom))
    assert list(rows) == [t.key for t in TARGETS], "every target of the seed has its row, in order"
    assert set(rows.values()) == {"pass", "fail", "skipped", "not run"}
    for key, verdict in rows.items():
        row = dom[dom.index(f'data-row="{key}"') :].split("</tr>", 1)[0]
        assert f'<span class="v {verdict.replace(" ", "-")}">{verdict}</span>' in row, key
    assert rows["warm-start"] == "fail" and rows["session-creation"] == "skipped" and rows["cost"] == "not run"
    assert 'href="log.html#s1-t2"' in dom  # the warm start row links to its test in log.html
    assert 'id="stand-in"' in dom and "<b>local</b>" in dom


def test_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # Decompress the image data: a blank page is one colour; charts bring many.
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    assert len(set(pixels)) > 50, "the screenshot looks blank"
