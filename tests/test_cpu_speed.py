"""`overheads.cpu_speed`: the hosts' cores relative to the profile's measuring machine. Airflow's
own CPU work takes 1/cpu_speed as long; task durations and waiting do not change."""
from __future__ import annotations

import dataclasses

import pytest

from sim.airflow.config import Overheads
from sim.scenario import load_profile, scenario_from_dict
from sim.simulation import Simulation


def _doc(executor: str, overheads: dict, celery: dict | None = None) -> dict:
    ex = {"kind": executor}
    if executor == "celery":
        ex["celery"] = {"worker_concurrency": 4, "workers_on_scheduler_host": True, **(celery or {})}
    mids = [f"p{i}" for i in range(12)]
    return {"name": "speed", "seed": 3, "horizon": "200s", "profile": "airflow-2.10",
            "airflow": {"parallelism": 8},
            "overheads": {"scheduler_host_cores": 2, **overheads}, "executor": ex,
            "dags": [{"dag_id": "fan", "schedule": {"at": ["5s", "60s"]},
                      "tasks": {t: {"duration": "1s"} for t in ["start", *mids]},
                      "dependencies": f"start >> [{', '.join(mids)}]"},
                     {"dag_id": "cpu", "schedule": {"at": ["120s"]},
                      "tasks": {"a": {"duration": "2s", "cpu_bound": True}, "b": {"duration": "0.5s"}},
                      "dependencies": "a >> b"}]}


@pytest.mark.parametrize("executor", ["local", "celery"])
def test_faster_cores_are_the_same_as_smaller_cpu_figures(executor):
    """cpu_speed 2 with the profile's figures runs exactly as speed 1 with every CPU figure halved:
    the setting is a change of the machine, not of the model."""
    base = Overheads(**{f.name: getattr(scenario_from_dict(_doc(executor, {})).overheads, f.name)
                        for f in dataclasses.fields(Overheads)})
    halved = {k: getattr(base, k) / 2.0 for k in Overheads.CPU_WORK}
    # Celery's CPU figure outside the overheads: the start-up its worker's preloaded imports save
    preload = {"worker_preload_cpu": load_profile("airflow-2.10")["celery"]["worker_preload_cpu"] / 2.0}
    fast = Simulation(scenario_from_dict(_doc(executor, {"cpu_speed": 2.0}))).run()
    small = Simulation(scenario_from_dict(_doc(executor, halved, preload))).run()
    cols = ["dag_id", "run_id", "task_id", "queued_at", "started_at", "ended_at"]
    assert fast.task_instances[cols].equals(small.task_instances[cols])


def test_speed_moves_airflow_work_but_not_the_tasks_own():
    slow = Simulation(scenario_from_dict(_doc("local", {"cpu_speed": 0.5}))).run().task_instances
    one = Simulation(scenario_from_dict(_doc("local", {}))).run().task_instances
    # the lone chain's second task: start-up (fork and parsing) is CPU, so it takes longer
    pick = lambda t: t[(t["dag_id"] == "cpu") & (t["task_id"] == "b")].iloc[0]
    assert (pick(slow)["started_at"] - pick(slow)["queued_at"]) > 1.8 * (pick(one)["started_at"] - pick(one)["queued_at"])
    # a sleeping task's run keeps its 0.5 s; only Airflow's run overhead doubles
    run = lambda r: r["ended_at"] - r["started_at"]
    assert run(pick(slow)) - 0.5 == pytest.approx(2 * (run(pick(one)) - 0.5), rel=0.3)
    # a CPU-bound task's own 2 s are its duration on this machine: they do not scale either
    a = lambda t: t[(t["dag_id"] == "cpu") & (t["task_id"] == "a")].iloc[0]
    assert run(a(slow)) - 2.0 == pytest.approx(2 * (run(a(one)) - 2.0), rel=0.3)


def test_speed_one_is_the_profile_itself():
    ov = scenario_from_dict(_doc("local", {})).overheads
    assert ov.at_cpu_speed() is ov


@pytest.mark.parametrize("bad", [0, -1, "fast", float("inf")])
def test_bad_speed_is_refused(bad):
    from sim.errors import SimError
    with pytest.raises(SimError, match="cpu_speed"):
        scenario_from_dict(_doc("local", {"cpu_speed": bad}))
