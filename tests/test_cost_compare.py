"""Cost arithmetic checked by hand, common random numbers across executors, and sim compare."""
from pathlib import Path

import numpy as np
import pytest

from sim.cost.model import billed_hours, load_catalogue, price
from sim.scenario import scenario_from_dict
from sim.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def test_billing_by_hand():
    cat = load_catalogue()
    assert billed_hours(3600, cat) == 1.0                      # one node for one hour ...
    assert billed_hours(3600, cat) * price("m5.xlarge", cat) == pytest.approx(0.192)  # ... costs its price
    assert billed_hours(10, cat) == pytest.approx(60 / 3600)   # the 60 s minimum applies
    assert billed_hours(61.2, cat) == pytest.approx(62 / 3600)  # then per second
    assert billed_hours(0, cat) == 0.0
    with pytest.raises(ValueError, match="not in the price catalogue"):
        price("z9.huge", cat)


def one_task(executor: dict, horizon="1h") -> dict:
    return {"name": "cost", "seed": 1, "horizon": horizon, "profile": "ideal", "executor": executor,
            "dags": [{"dag_id": "d", "schedule": {"at": [0]}, "tasks": {"t": {"duration": "10m"}}}]}


def test_local_cost_is_its_hosts_for_the_window():
    r = Simulation(scenario_from_dict(one_task({"kind": "local"}))).run()
    c = r.summary["cost"]
    window_h = r.summary["simulated_seconds"] / 3600
    cat = load_catalogue()
    expected = billed_hours(window_h * 3600, cat) * (price("m5.xlarge", cat) + price("m5.large", cat))
    assert c["total_usd"] == pytest.approx(expected, abs=1e-4)
    assert set(c["breakdown_usd"]) == {"scheduler host", "metadata DB"}


def test_kubernetes_cost_counts_nodes_control_plane_and_spot_discount():
    ex = {"kind": "kubernetes", "cluster": {"autoscaler": "none", "node_pools": [
        {"name": "spot", "spot": True, "initial_nodes": 2, "instance_type": "m5.xlarge"}]}}
    r = Simulation(scenario_from_dict(one_task(ex))).run()
    c = r.summary["cost"]
    cat = load_catalogue()
    window = r.summary["simulated_seconds"]
    nodes = 2 * billed_hours(window, cat) * price("m5.xlarge", cat) * (1 - cat["spot_discount"])
    assert c["breakdown_usd"]["nodes (spot)"] == pytest.approx(nodes, abs=1e-4)
    assert c["breakdown_usd"]["Kubernetes control plane"] == pytest.approx(0.10 * window / 3600, abs=1e-4)


def test_same_seed_same_durations_on_every_executor():
    """Common random numbers: each executor sees the same task durations for the same seed."""
    data = {"name": "crn", "seed": 5, "horizon": "2h", "profile": "airflow-2.10",
            # the recorded run is then the drawn duration alone (Airflow's own work in it aside)
            "overheads": {"task_run_cpu": 0, "task_run_latency": 0},
            "dags": [{"dag_id": "d", "schedule": {"poisson_per_hour": 20},
                      "tasks": {"a": {"duration": {"exponential": {"mean": "30s"}}},
                                "b": {"duration": {"lognormal": {"mean": "20s", "cv": 0.8}}}},
                      "dependencies": "a >> b"}]}
    durations = {}
    for kind in ("local", "celery", "kubernetes"):
        r = Simulation(scenario_from_dict(data, executor=kind)).run()
        t = r.task_instances.sort_values(["run_id", "task_id"])
        durations[kind] = (t["ended_at"] - t["started_at"]).round(9).to_numpy()
        due = r.dag_runs.sort_values("run_id")["due_at"].to_numpy()
        durations[kind + "-due"] = due
    assert np.array_equal(durations["local"], durations["celery"])
    assert np.array_equal(durations["local"], durations["kubernetes"])
    assert np.array_equal(durations["local-due"], durations["kubernetes-due"])


def test_compare_writes_every_chart_and_intervals_shrink(tmp_path):
    from sim.compare import compare
    path = ROOT / "scenarios" / "seed-diamond.yaml"
    small = compare(path, ["local", "kubernetes"], seeds=3, jobs=1)
    big = compare(path, ["local", "kubernetes"], seeds=8, jobs=2)
    out = big.write(tmp_path / "cmp")
    names = {p.name for p in (out / "charts").iterdir()}
    for chart in ("latency_cdf", "delay_by_stage", "cost", "cost_vs_p95", "throughput"):
        assert f"{chart}.png" in names and f"{chart}.svg" in names
    assert (out / "comparison.csv").exists() and (out / "runs.csv").exists()

    def half(c, ex, metric):
        t = c.table
        return float(t[(t.executor == ex) & (t.metric == metric)]["ci95"].iloc[0])
    # the 95 % interval of the mean narrows with more seeds (about as 1/sqrt(n))
    assert half(big, "kubernetes", "makespan_mean_s") < half(small, "kubernetes", "makespan_mean_s")
    assert half(big, "local", "makespan_mean_s") < half(small, "local", "makespan_mean_s")
    # parallel and serial give the same numbers
    again = compare(path, ["local", "kubernetes"], seeds=3, jobs=2)
    assert small.runs.equals(again.runs)


def test_compare_takes_settings_only_the_compared_executor_knows():
    """Celery-only settings on a Local scenario: the seed comes from the Celery load, not from
    loading the file with those settings under its own executor (which refuses them)."""
    from pathlib import Path

    from sim.compare import compare
    path = Path(__file__).resolve().parents[1] / "scenarios" / "seed-diamond.yaml"
    c = compare(path, ["celery"], seeds=2, jobs=1,
                sets=["executor.worker_pools=[{name: w, replicas: 2}]", "horizon=20m"])
    assert set(c.runs["executor"]) == {"celery"} and len(c.runs) == 2


def test_pareto_front_keeps_what_nothing_beats_on_both_axes():
    from sim.analysis import pareto_front
    pts = [(5.0, 1.0, "cheap"), (1.0, 3.0, "fast"), (4.0, 4.0, "worse than cheap"), (2.0, 2.0, "middle"),
           (2.0, 2.0, "middle twin")]
    assert [p[2] for p in pareto_front(pts)] == ["fast", "middle", "middle twin", "cheap"]
