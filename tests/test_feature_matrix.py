"""Every executor, one or two schedulers, each profile, on one DAG that uses every task feature
(retries with failures, a deferrable task, sensors in both modes, dynamic mapping, a trigger rule):
every run finishes, nothing is stuck, and the task instances end in the same states everywhere,
because the workload's draws do not depend on the deployment (common random numbers)."""
import itertools

import pytest

from sim import DAG, Constant, Deferral, Exponential, Interval, Scenario, Sensor, Uniform, run

EXECUTORS = ["local", "celery", "kubernetes", "celery_kubernetes", ("local", "kubernetes")]
CASES = [(k, n, p) for k, n, p in itertools.product(EXECUTORS, [1, 2], ["airflow-2.10", "airflow-3", "ideal"])
         if not (p == "airflow-3" and k == "celery_kubernetes")]     # removed in Airflow 3


def everything():
    d = DAG("mix", Interval(300))
    a = d.task("a", duration=Exponential(10), retries=1, retry_delay=5, failure_probability=0.2)
    b = d.task("b", duration=2, deferrable=Deferral(wait=Exponential(30), resume=1))
    s = d.task("s", duration=1, sensor=Sensor(Exponential(60), mode="reschedule", poke_interval=20))
    m = d.task("m", duration=Uniform(1, 5), expand=Uniform(0, 12), retries=1, failure_probability=0.1)
    p = d.task("p", duration=3, sensor=Sensor(Constant(30), mode="poke", poke_interval=10))
    z = d.task("z", duration=1, trigger_rule="all_done")
    a >> [b, s] >> m >> z
    p >> z
    return d


def outcome(kind, schedulers, profile):
    kind = list(kind) if isinstance(kind, tuple) else kind
    r = run(Scenario.build([everything()], profile=profile, horizon=3600, seed=3, executor=kind,
                           airflow={"parallelism": 8, "schedulers": schedulers, "triggerer_capacity": 3}))
    assert r.summary["stuck"]["count"] == 0
    assert r.summary["dag_runs"]["count"] == 12
    t = r.task_instances
    final = t.drop_duplicates(["run_id", "task_id", "map_index"], keep="last")
    return sorted(zip(final["run_id"].astype(str), final["task_id"].astype(str), final["map_index"],
                      final["state"].astype(str)))


@pytest.fixture(scope="module")
def reference():
    return outcome("local", 1, "ideal")


@pytest.mark.parametrize("kind,schedulers,profile", CASES, ids=lambda v: "+".join(v) if isinstance(v, tuple) else str(v))
def test_every_deployment_runs_the_same_workload_to_the_same_end(kind, schedulers, profile, reference):
    states = {s for *_, s in reference}
    assert {"success", "failed", "upstream_failed"} <= states     # the workload exercises failures too
    assert outcome(kind, schedulers, profile) == reference
