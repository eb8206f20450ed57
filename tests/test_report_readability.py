"""Issue #12's report and chart edges: numbers a person can read (no ± 1.5e-16, shares in %, no
exponents), the deployment each executor ran on (marked where it is a default), the profile and
time window on the page, latency ticks below one second, and chart helpers that take ``ax=``
and leave the user's matplotlib backend alone."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim import load_scenario
from sim.cli import main
from sim.compare import Comparison
from sim.deployment import describe
from sim.report import charts, compare_charts
from sim.report.html import ci_text, write_compare_report
from sim.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
DIAMOND = ROOT / "scenarios" / "seed-diamond.yaml"


def test_interval_text_has_no_float_noise_no_exponents_and_shares_in_percent():
    assert ci_text(0.0045, 1.5e-16) == "0.0045 ± 0"
    assert ci_text(129.94, 98.3) == "129.9 ± 98"
    assert ci_text(12345.6, 2345.1) == "12,346 ± 2,345"
    assert ci_text(0.00779, 0.00123, share=True) == "0.8 % ± 0.12 points"
    assert "e+" not in ci_text(238.7, 300.2) and "e+" not in ci_text(4.2e6, 3.1e5)


def test_importing_the_charts_leaves_the_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import sim.report.charts, sim.report.compare_charts, "
            "sim.report.sweep_charts; import matplotlib.pyplot as plt; "
            "print(matplotlib.get_backend(), len(plt.get_fignums()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout.split()
    assert out == ["svg", "0"]


@pytest.fixture(scope="module")
def run_result():
    return Simulation(load_scenario(DIAMOND, executor="celery")).run()


def test_every_run_chart_draws_into_a_given_axes(run_result):
    tis = run_result.task_instances
    cases = [lambda ax: charts.delay_breakdown(tis, ax=ax), lambda ax: charts.busy_slots(tis, 8, ax=ax),
             lambda ax: charts.gantt(tis, ax=ax), lambda ax: charts.workers_over_time(run_result.workers, ax=ax)]
    for draw in cases:
        fig = Figure()
        ax = fig.subplots()
        assert draw(ax) is fig
        assert ax.has_data() or ax.patches or ax.lines


def _comparison() -> Comparison:
    rng = np.random.default_rng(1)
    runs = pd.DataFrame({"executor": ["local", "celery"] * 2, "seed": [1, 1, 2, 2],
                         "deployment": ["local: parallelism 32", "celery: 1 worker x concurrency 16 [default]"] * 2,
                         "profile": "airflow-2.10", "horizon_s": 7200.0, "simulated_s": 7300.0})
    rows = []
    for ex in ("local", "celery"):
        for metric, desc, m, h in (("throughput_per_hour", "task instances succeeded per hour", 23.47, 0.334),
                                   ("ready_to_scheduled_s", "ready -> scheduled, mean (s)", 0.0045, 1.5e-16),
                                   ("scheduled_to_queued_s", "scheduled -> queued, mean (s)", 0.5, 0.03),
                                   ("queued_to_launched_s", "q", 0.06, 0.0), ("launched_to_started_s", "l", 0.09, 0.0),
                                   ("slot_utilisation", "executor slots busy (share)", 0.00779, 0.00123),
                                   ("cost_usd", "total cost (USD)", 0.58, 0.007),
                                   ("cost_per_1000_tasks_usd", "cost per 1,000 tasks (USD)", 12.2, 0.15),
                                   ("delay_p95_s", "ready -> started, p95 (s)", 1.0, 0.06)):
            rows.append({"executor": ex, "metric": metric, "description": desc, "mean": m, "ci95": h, "n": 2})
    return Comparison(runs, pd.DataFrame(rows), {"local": rng.exponential(0.5, 200), "celery": rng.exponential(2, 200)})


def test_compare_report_states_profile_window_seeds_deployments_and_reads_plainly(tmp_path):
    cmp = _comparison()
    page = write_compare_report(cmp, tmp_path, "demo").read_text()
    assert "Profile airflow-2.10" in page and "from 0 to 2 h" in page and "seeds 1, 2" in page
    assert "celery: 1 worker x concurrency 16 [default]" in page
    assert "e-16" not in page and "0.0045 ± 0" in page and "0.8 % ± 0.12 points" in page
    assert "pooled" in page                         # the two p95s are told apart


def test_latency_axis_has_ticks_below_one_second():
    fig = compare_charts.latency_cdf(_comparison())
    ax = fig.axes[0]
    ticks = [t for t in ax.get_xticks()]
    assert 0.1 in ticks and 0.01 in ticks and 1.0 in ticks
    assert ax.xaxis.get_major_formatter()(0.1) == "0.1 s"
    fig2 = Figure()
    ax2 = fig2.subplots()
    assert compare_charts.latency_cdf(_comparison(), ax=ax2) is fig2
    axes = Figure().subplots(1, 2)
    assert compare_charts.cost_bars(_comparison(), axes=axes) is axes[0].figure


def test_deployment_is_described_and_defaults_are_marked():
    etl = ROOT / "scenarios" / "etl-fleet.yaml"
    (celery,) = describe(load_scenario(etl, executor="celery"))
    assert celery.startswith("celery: 1 worker x concurrency 16") and "[default" in celery
    (kube,) = describe(load_scenario(etl, executor="kubernetes"))
    assert "0-10 x m5.xlarge" in kube and "[default" in kube
    mixed = describe(load_scenario(ROOT / "scenarios" / "mixed-queues.yaml"))
    assert mixed == ["celery: pool cpu: 1-6 workers (KEDA) x concurrency 8, queues default; "
                     "pool gpu: 1 worker(s) x concurrency 2, queues gpu"]
    hybrid = describe(load_scenario(ROOT / "scenarios" / "hybrid-celery-kubernetes.yaml"))
    assert [line.split(":")[0] for line in hybrid] == ["celery", "kubernetes"]


def test_run_and_compare_print_and_record_the_deployment(tmp_path, capsys):
    assert main(["run", str(DIAMOND), "--executor", "celery", "--no-progress", "--no-charts",
                 "--out", str(tmp_path / "r")]) == 0
    assert "on celery: 1 worker x concurrency 16" in capsys.readouterr().out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["deployment"][0].startswith("celery: ")
    assert main(["compare", str(DIAMOND), "--executors", "local,kubernetes", "--seeds", "2", "--jobs", "1",
                 "--no-charts", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "deployments:" in out and "kubernetes: node pool default" in out
    runs = pd.read_csv(tmp_path / "c" / "runs.csv")
    assert runs["deployment"].str.startswith(("local:", "kubernetes:")).all()
