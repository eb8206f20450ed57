"""Sensors in poke and reschedule mode (airflow-mechanics.md §1.10)."""
import numpy as np
import pytest

from sim import DAG, At, Constant, Interval, Scenario, Sensor, run


def sensor_dag(mode, wait=600.0, poke=2.0, interval=60.0, timeout=7200.0, soft_fail=False):
    dag = DAG("s", At((0.0,)))
    s = dag.task("wait_for_file", duration=poke,
                 sensor=Sensor(Constant(wait), mode=mode, poke_interval=interval, timeout=timeout, soft_fail=soft_fail))
    s >> dag.task("after", duration=5)
    return dag


def rows(r, task="wait_for_file"):
    t = r.task_instances
    return t[t["task_id"] == task]


def test_poke_sensor_holds_its_slot_for_its_whole_life():
    r = run(Scenario.build([sensor_dag("poke")], profile="ideal", horizon=10))
    w = rows(r)
    assert len(w) == 1 and w["state"].iloc[0] == "success"
    life = float(w["ended_at"].iloc[0] - w["started_at"].iloc[0])
    assert life == pytest.approx(600 + 2)                  # ten 60 s intervals, then the last poke
    slot = float(w["released_at"].iloc[0] - w["queued_at"].iloc[0])
    assert slot == pytest.approx(life)                     # ideal profile: no start-up, no loop lag


def test_reschedule_sensor_holds_slots_only_while_poking():
    r = run(Scenario.build([sensor_dag("reschedule")], profile="ideal", horizon=10))
    w = rows(r)
    assert list(w["state"])[-1] == "success" and set(w["state"].iloc[:-1]) == {"up_for_reschedule"}
    assert set(w["try_number"]) == {1}                     # rescheduling is not a new try
    assert len(w) == 11                                    # pokes at 0, 62, ..., the condition holds at 600
    slot = float((w["released_at"] - w["queued_at"]).sum())
    assert slot == pytest.approx(2.0 * len(w))             # slot-seconds = the pokes' durations
    tr = r.transitions
    causes = set(tr[tr["to_state"] == "scheduled"]["cause"].astype(str))
    assert "sensor rescheduled: poke interval passed" in causes


@pytest.mark.parametrize("soft_fail,state", [(True, "skipped"), (False, "failed")])
def test_sensor_timeout(soft_fail, state):
    r = run(Scenario.build([sensor_dag("reschedule", wait=5000, timeout=300, soft_fail=soft_fail)],
                           profile="ideal", horizon=10))
    w = rows(r)
    assert w["state"].iloc[-1] == state
    assert float(w["ended_at"].iloc[-1] - w["started_at"].iloc[0]) == pytest.approx(310.0, abs=62)
    after = rows(r, "after")["state"].iloc[0]
    assert after == ("skipped" if soft_fail else "upstream_failed")


def starvation(mode):
    """Four sensors waiting 30 min and a stream of short tasks, on two slots."""
    sensors = DAG("sensors", At((0.0,)))
    for i in range(4):
        sensors.task(f"s{i}", duration=1, sensor=Sensor(Constant(1800), mode=mode, poke_interval=60))
    work = DAG("work", Interval(120))
    work.task("job", duration=Constant(20))
    r = run(Scenario.build([sensors, work], profile="airflow-2.10", horizon=1800,
                           airflow={"parallelism": 2, "max_active_tasks_per_dag": 16}))
    t = r.task_instances
    jobs = t[t["dag_id"] == "work"]
    return (jobs["started_at"] - jobs["ready_at"]).to_numpy()


def test_poke_sensors_starve_other_tasks_reschedule_sensors_do_not():
    poke, resched = starvation("poke"), starvation("reschedule")
    assert np.median(poke) > 600          # the two slots are held by pokers for most of 30 min
    assert np.median(resched) < 5         # pokes take a slot for a second every minute
