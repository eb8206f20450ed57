"""The scenario scripts are executed by the test suite so they cannot rot."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args,expect", [
    ("compare_executors.py", ["--hours", "1"], ["local", "celery", "kubernetes"]),
    ("batch_size_what_if.py", ["--tasks", "12"], ["batch   1", "batch  64"]),
])
def test_scenario_script_runs(script, args, expect, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scenarios" / script), "--out", str(tmp_path), *args],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for word in expect:
        assert word in r.stdout
    assert any(tmp_path.rglob("*.png"))


def test_every_shipped_scenario_validates():
    from sim.scenario import load_scenario
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 11
    for f in files:
        s = load_scenario(f)
        assert s.description, f"{f.name} needs a one-line description"
