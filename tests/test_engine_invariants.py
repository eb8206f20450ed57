"""Issue #12's engine cases: valid scenarios that crashed, wrote rows out of order or held more
executor slots than exist. Each check is an invariant of the records, so it holds for any run:
a try's times are in the order its life passes through them, and the tries holding executor
slots (queued_at to released_at) never outnumber the slots."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from sim import scenario_from_dict
from sim.executors.hybrid import CeleryKubernetesExecutor
from sim.simulation import Simulation

ORDER = ["ready_at", "scheduled_at", "queued_at", "launched_at", "started_at", "ended_at"]


def simulate(data: dict):
    sim = Simulation(scenario_from_dict(data))
    return sim.run(), sim


def times_in_order(tis) -> None:
    """Along each row, the times present never go back; a slot is released after it was taken."""
    t = tis[ORDER].to_numpy(dtype=float)
    for i, row in enumerate(t):
        seen = row[~np.isnan(row)]
        assert (np.diff(seen) >= -1e-9).all(), tis.iloc[i][ORDER + ["released_at"]].to_dict()
    held = tis.dropna(subset=["queued_at", "released_at"])
    assert (held["released_at"] >= held["queued_at"] - 1e-9).all()


def peak_slots(tis) -> int:
    """The most tries holding an executor slot at once, rebuilt from the rows (a release at the
    same instant as a take counts first)."""
    held = tis.dropna(subset=["queued_at"])
    ev = sorted([(q, 1) for q in held["queued_at"]] +
                [(r if not math.isnan(r) else math.inf, -1) for r in held["released_at"]],
                key=lambda e: (e[0], e[1]))
    n = peak = 0
    for _, d in ev:
        n += d
        peak = max(peak, n)
    return peak


def test_stuck_in_queued_with_crashing_workers_does_not_crash():
    """Was IllegalTransition scheduled -> scheduled: a worker crash leaves the old try's key with
    the executor while the new try is queued, and the stuck-in-queued check took the task
    instance twice. Airflow reads queued rows from the DB: each task instance once."""
    data = {"name": "illegal-transition", "airflow": {"task_queued_timeout": 30},
            "executor": {"kind": "celery",
                         "worker_pools": [{"name": "w0", "concurrency": 2, "crash_rate_per_hour": 4.406}]},
            "dags": [{"dag_id": "d0", "schedule": {"poisson_per_hour": 12}, "tasks": {
                "t2": {"duration": {"uniform": {"low": 26.934, "high": 110.692}}},
                "t3": {"duration": {"uniform": {"low": 115.251, "high": 147.229}}, "retries": 1}}}]}
    r, _ = simulate(data)
    causes = r.transitions["cause"].astype(str)
    assert causes.str.startswith("stuck in queued").any()       # the path that crashed is taken
    assert r.summary["task_instances"]["count"] > 0
    times_in_order(r.task_instances)


def test_kubernetes_requeued_try_keeps_one_pods_times():
    """A try re-queued by task_queued_timeout while its pod waits minutes for a new node: its row
    tells the attempt that ran (launched, started, released after it was queued)."""
    data = {"name": "k8s-requeue", "airflow": {"task_queued_timeout": 30},
            "executor": {"kind": "kubernetes"}, "horizon": "3h",
            "dags": [{"dag_id": "d0", "schedule": {"every": "1h"},
                      "tasks": {"a": {"duration": 60}, "b": {"duration": 60}}}]}
    r, _ = simulate(data)
    assert r.transitions["cause"].astype(str).str.startswith("stuck in queued").any()
    tis = r.task_instances
    assert len(tis) and (tis["state"] == "success").all()
    times_in_order(tis)
    assert r.summary["utilisation"]["executor_slots"] >= 0.0


def test_broker_outage_with_two_schedulers_never_oversubscribes_the_slots():
    """A publish that fails after its retries kept the key until the sends timed out in the
    records, but freed the slot at once: the other scheduler queued a third try into two slots."""
    data = {"name": "oversub", "airflow": {"parallelism": 1, "schedulers": 2},
            "executor": {"kind": "celery_kubernetes", "broker_outages": [{"start": 735.1, "end": 1035.1}]},
            "horizon": "2h",
            "dags": [{"dag_id": "d0", "schedule": {"every": "15m"},
                      "tasks": {"a": {"duration": 30}, "b": {"duration": 30}, "c": {"duration": 30}}}]}
    r, sim = simulate(data)
    tis = r.task_instances
    assert (tis["state"] == "failed").any()                    # the outage failed some publishes
    assert peak_slots(tis) <= sim.airflow.parallelism * sim.airflow.schedulers == 2
    times_in_order(tis)


def test_hybrid_queued_tasks_are_both_parts():
    """CeleryKubernetesExecutor.queued_tasks returned Celery's when it had any, hiding the
    Kubernetes part's from the stuck-in-queued check."""
    celery = SimpleNamespace(parallelism=1, queued_tasks={"c1": None, "c2": None})
    kube = SimpleNamespace(parallelism=1, queued_tasks={"k1": None})
    h = CeleryKubernetesExecutor(SimpleNamespace(env=None), celery, kube)
    assert list(h.queued_tasks) == ["c1", "c2", "k1"]
