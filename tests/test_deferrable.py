"""Deferrable tasks and the triggerer (airflow-mechanics.md §1.11)."""
import numpy as np
import pytest

from sim import DAG, At, Constant, Deferral, Exponential, Interval, Scenario, Sensor, run
from sim.errors import ScenarioError
from sim.scenario import scenario_from_dict


def fan(n=40, first=0.5, wait=Exponential(20.0), resume=0.2):
    dag = DAG("d", At((0.0,)))
    for i in range(n):
        dag.task(f"w{i}", duration=first, deferrable=Deferral(wait=wait, resume=resume))
    return dag


def occupancy(r):
    """Triggers running per triggerer over time, rebuilt from the records' events."""
    ev = r.events
    ev = ev[ev["what"].isin(["trigger claimed", "trigger fired"])].sort_values("time", kind="stable")
    level, peak = {}, {}
    for who, what in zip(ev["who"].astype(str), ev["what"].astype(str)):
        level[who] = level.get(who, 0) + (1 if what == "trigger claimed" else -1)
        peak[who] = max(peak.get(who, 0), level[who])
        assert level[who] >= 0
    return peak


@pytest.mark.parametrize("profile", ["ideal", "airflow-2.10"])
@pytest.mark.parametrize("capacity,triggerers", [(5, 1), (3, 2), (1000, 1)])
def test_triggerer_never_holds_more_than_its_capacity(profile, capacity, triggerers):
    r = run(Scenario.build([fan()], profile=profile,
                           airflow={"parallelism": 64, "max_active_tasks_per_dag": 64,
                                    "triggerer_capacity": capacity, "triggerers": triggerers}))
    peak = occupancy(r)
    assert len(peak) == triggerers
    assert max(peak.values()) <= capacity
    stats = r.summary["triggerer"]
    assert stats["deferred"] == stats["fired"] == 40
    assert max(stats["max_running"].values()) <= capacity
    if capacity < 40:
        assert max(peak.values()) == capacity      # the limit binds: the check above could fail


def test_a_deferred_task_has_both_halves_in_the_records():
    dag = DAG("d", At((0.0,)))
    a = dag.task("a", duration=2)
    b = dag.task("b", duration=1, deferrable=Deferral(wait=30, resume=0.5))
    a >> b >> dag.task("c", duration=1)
    r = run(Scenario.build([dag], profile="ideal"))
    t = r.task_instances
    b_rows = t[t["task_id"] == "b"]
    assert list(b_rows["state"]) == ["deferred", "success"]
    assert list(b_rows["try_number"]) == [1, 1]              # resuming is not a new try
    first, second = b_rows.iloc[0], b_rows.iloc[1]
    assert first["ended_at"] - first["started_at"] == pytest.approx(1.0)
    assert second["queued_at"] == pytest.approx(first["ended_at"] + 30)   # ideal: at once on the event
    assert second["ended_at"] - second["started_at"] == pytest.approx(0.5)
    # ideal profile: the run takes exactly its work plus the trigger's wait
    assert r.summary["dag_runs"]["makespan_seconds"]["mean"] == pytest.approx(2 + 1 + 30 + 0.5 + 1)
    tr = r.transitions
    seq = [(str(f), str(to)) for f, to in zip(tr[tr["ti_uid"] == first["ti_uid"]]["from_state"],
                                              tr[tr["ti_uid"] == first["ti_uid"]]["to_state"])]
    assert seq == [("none", "scheduled"), ("scheduled", "queued"), ("queued", "running"),
                   ("running", "deferred"), ("deferred", "scheduled"), ("scheduled", "queued"),
                   ("queued", "running"), ("running", "success")]


def starvation(kind):
    """Four long waits and a stream of short tasks, on two executor slots."""
    waits = DAG("waits", At((0.0,)))
    for i in range(4):
        if kind == "deferrable":
            waits.task(f"w{i}", duration=1, deferrable=Deferral(wait=Constant(1800)))
        else:
            waits.task(f"w{i}", duration=1, sensor=Sensor(Constant(1800), mode="poke", poke_interval=60))
    work = DAG("work", Interval(120))
    work.task("short", duration=10)
    return run(Scenario.build([waits, work], profile="airflow-2.10", horizon=1800,
                              airflow={"parallelism": 2}))


def test_deferred_tasks_hold_no_slot_while_poke_sensors_starve_others():
    delays = {}
    for kind in ("deferrable", "poke"):
        t = starvation(kind).task_instances
        short = t[t["dag_id"] == "work"]
        delays[kind] = float((short["started_at"] - short["ready_at"]).mean())
    assert delays["deferrable"] < 5.0               # a few loops at most
    assert delays["poke"] > 300.0                   # waits behind the sensors' 30 minutes


def test_deferred_tasks_free_their_pool_slots():
    dag = fan(n=6, wait=Constant(100.0))
    other = DAG("other", At((10.0,)))
    other.task("o", duration=1, pool="small")
    r = run(Scenario.build([dag, other], profile="ideal",
                           airflow={"pools": {"small": 2}, "parallelism": 16}))
    t = r.task_instances
    o = t[t["dag_id"] == "other"].iloc[0]
    assert o["started_at"] == pytest.approx(10.0)


def test_more_triggerers_clear_a_backlog_sooner():
    """Capacity 1 and the one-second loop: each triggerer hands over about one trigger a second."""
    def makespan(n):
        r = run(Scenario.build([fan(n=30, wait=Constant(5.0))], profile="airflow-2.10",
                               airflow={"parallelism": 32, "max_active_tasks_per_dag": 32,
                                        "triggerer_capacity": 1, "triggerers": n}))
        return r.summary["dag_runs"]["makespan_seconds"]["mean"]
    one, three = makespan(1), makespan(3)
    assert one > 2 * 30 * 0.9                       # two passes per trigger: claim, then hand over
    assert three < one / 2


def test_mapped_deferrable_and_mapped_sensor_tasks_run():
    from sim.model.durations import Constant as C
    dag = DAG("m", At((0.0,)))
    d = dag.task("defer", duration=1, deferrable=Deferral(wait=5), expand=C(4))
    s = dag.task("sense", duration=1, sensor=Sensor(C(30), mode="reschedule", poke_interval=10), expand=C(3))
    d >> s
    r = run(Scenario.build([dag], profile="ideal"))
    t = r.task_instances
    assert (t[t["task_id"] == "defer"]["state"] == "deferred").sum() == 4
    final = t.drop_duplicates(["task_id", "map_index"], keep="last")
    assert set(final["state"]) == {"success"} and len(final) == 7


def test_scenario_files_take_deferrable_and_refuse_it_on_a_sensor():
    base = {"name": "x", "profile": "ideal", "dags": [{"dag_id": "d", "schedule": {"at": [0]}, "tasks": {
        "t": {"duration": "1s", "deferrable": {"wait": {"exponential": {"mean": "30s"}}, "resume": "2s"}}}}]}
    sc = scenario_from_dict(base)
    assert sc.dags[0].tasks["t"].deferrable.resume.mean == 2.0
    bad = {**base, "dags": [{"dag_id": "d", "schedule": {"at": [0]}, "tasks": {"t": {
        "duration": "1s", "deferrable": {"wait": "30s"}, "sensor": {"wait": "30s"}}}}]}
    with pytest.raises(ScenarioError, match="sensor or deferrable"):
        scenario_from_dict(bad)


def test_explain_tells_what_the_trigger_did():
    from sim.explain import explain
    r = run(Scenario.build([fan(n=6, wait=Constant(30.0))], profile="airflow-2.10",
                           airflow={"triggerer_capacity": 2}))
    text = explain(r, 0, task_id="w5")
    assert "deferred at" in text and "claimed the trigger" in text
    assert "at capacity" in text                 # the sixth trigger waited for room
    assert "handed back by the triggerer" in text


def test_a_retry_of_a_deferrable_task_starts_over_and_defers_again():
    dag = DAG("d", At((0.0,)))
    dag.task("t", duration=1, deferrable=Deferral(wait=10, resume=1), retries=1, retry_delay=5,
             failure_probability=1.0)
    r = run(Scenario.build([dag], profile="ideal"))
    t = r.task_instances
    assert list(t["state"]) == ["deferred", "up_for_retry", "deferred", "failed"]
    assert list(t["try_number"]) == [1, 1, 2, 2]


def test_a_standalone_dag_processor_host_is_billed():
    dag = DAG("d", Interval(600))
    dag.task("t", duration=1)
    inside = run(Scenario.build([dag], profile="airflow-2.10", horizon=3600)).summary["cost"]
    alone = run(Scenario.build([dag], profile="airflow-2.10", horizon=3600,
                               airflow={"standalone_dag_processor": True})).summary["cost"]
    assert "DAG processor host" in alone["breakdown_usd"] and "DAG processor host" not in inside["breakdown_usd"]
    assert alone["total_usd"] > inside["total_usd"]
