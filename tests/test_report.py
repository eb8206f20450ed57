"""The HTML report renders in headless Chromium with its grid and charts visible."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(page: Path, tmp_path: Path) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium (.ci/run installs Debian's chromium package)")
        pytest.skip("Chromium is not installed here (apt-get install chromium); CI installs it")
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
                        "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def attr(dom: str, name: str) -> int:
    m = re.search(rf'{name}="(\d+)"', dom)
    assert m, f"{name} not set: the page's check script did not run"
    return int(m.group(1))


def test_run_report_renders_grid_and_charts(tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(ROOT / "scenarios" / "seed-diamond.yaml"), "--out", str(out), "--no-progress"]) == 0
    dom = render(out / "report.html", tmp_path)
    charts = len(list((out / "charts").glob("*.png")))
    assert charts >= 3
    assert attr(dom, "data-images-ok") == charts           # every chart decoded and laid out
    assert attr(dom, "data-grid-cells") == 12 * 4          # 12 DAG runs x 4 tasks
    assert "Grid: DAG runs" in dom and "seed-diamond on the local executor" in dom


def test_compare_report_renders(tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(ROOT / "scenarios" / "seed-diamond.yaml"), "--executors", "local,kubernetes",
                 "--seeds", "2", "--jobs", "1", "--out", str(out)]) == 0
    dom = render(out / "report.html", tmp_path)
    assert attr(dom, "data-images-ok") == len(list((out / "charts").glob("*.png"))) == 5
    assert "executors compared" in dom
