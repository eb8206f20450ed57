"""KubernetesExecutor and its cluster (airflow-mechanics.md §2.4, §2.5, §3 P9-P20): node capacity,
the cluster autoscaler, the ideal profile's critical path, pod creation batches, image pulls,
CeleryKubernetesExecutor routing, spot interruptions, the slot rule and ``sim run`` on
``scenarios/k8s-short-tasks.yaml``.

Every scenario is built with ``scenario_from_dict`` (the shape of a scenario YAML file) and run with
a fixed seed. Assertions look at what a run records: one row per try (``task_instances``; its
``worker`` is the pod's name), one row per pod with its start-up stages (``pods``), the node count
per pool over time (``nodes``), state changes with their causes (``transitions``) and what the
components did (``events``). The cluster's own node objects (``Cluster.all_nodes``: created_at,
ready_at, gone_at) name which node came and went when.

Tests marked ``xfail(strict=True)`` document behaviour that contradicts Airflow or Kubernetes; the
reason says what is wrong and where. They turn into failures (XPASS) once the engine is fixed.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main as cli
from sim.infra.cluster import AUTOSCALERS, SPOT_NOTICE
from sim.scenario import load_profile, scenario_from_dict
from sim.simulation import Simulation

from ideal_dags import DIAMOND_CONSTANT, DIAMOND_DEPS, DIAMOND_RANDOM, critical_path  # tests/ideal_dags.py

ROOT = Path(__file__).resolve().parents[1]
K8S_SHORT_TASKS = ROOT / "scenarios" / "k8s-short-tasks.yaml"
#: "Very large" for limits that must never bind.
BIG = 1_000_000
EPS = 1e-9
TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}
#: Pod requests when a task sets none (TaskSpec defaults).
TASK_CPU, TASK_MEMORY = 1.0, 512.0
#: The start-up timings of the profile kubernetes: sections.
TIMINGS = ("api_create_time", "bind_time", "image_size_mb", "pull_bandwidth_mb_s", "init_container_time",
           "container_start_time", "airflow_boot_time", "watcher_delay")


# --------------------------------------------------------------------------- helpers
def k8s_scenario(dags: list[dict], *, profile: str = "ideal", kind: str = "kubernetes",
                 kubernetes: dict | None = None, cluster: dict | None = None,
                 airflow: dict | None = None, overheads: dict | None = None,
                 executor: dict | None = None, seed: int = 0, horizon: float | str = 3600.0) -> dict:
    """A scenario dict on the Kubernetes (or CeleryKubernetes) executor; Airflow's own limits out of
    the way unless given."""
    ex: dict = {"kind": kind}
    if kubernetes:
        ex["kubernetes"] = kubernetes
    if cluster:
        ex["cluster"] = cluster
    ex.update(executor or {})
    af = {"parallelism": 10_000, "default_pool_task_slot_count": BIG,
          "max_active_tasks_per_dag": BIG, "max_active_runs_per_dag": BIG}
    af.update(airflow or {})
    data = {"name": "k8s-test", "seed": seed, "horizon": horizon, "profile": profile,
            "airflow": af, "executor": ex, "dags": dags}
    if overheads:
        data["overheads"] = overheads
    return data


def dag(dag_id: str, schedule: dict, tasks: dict, dependencies: str | list = "") -> dict:
    return {"dag_id": dag_id, "schedule": schedule, "max_active_runs": BIG, "max_active_tasks": BIG,
            "tasks": tasks, "dependencies": dependencies}


def simulate(data: dict):
    """(RunResult, Simulation) of a scenario dict."""
    sim = Simulation(scenario_from_dict(data))
    return sim.run(), sim


def kube(sim):
    """The simulation's KubernetesExecutor (alone, or inside CeleryKubernetesExecutor)."""
    (k,) = [k for ex in sim.executors.values() for k in ex.kubernetes_executors()]
    return k


def requests_of(data: dict) -> dict:
    """(dag_id, task_id) -> (cpu, memory) requested by the task's pod, from the scenario dict."""
    out = {}
    for d in data["dags"]:
        for task_id, t in d["tasks"].items():
            out[(d["dag_id"], task_id)] = (float(t.get("cpu", TASK_CPU)), float(t.get("memory", TASK_MEMORY)))
    return out


def pods_with_requests(result, sim, data: dict) -> pd.DataFrame:
    """The pods table plus each pod's requests (cpu, mem), its pool and the time the kube-scheduler
    took the binding decision (``bind_at`` = bound_at - bind_time; the node's room is reserved from
    then), ``never`` bound pods getting +inf."""
    p = result.pods.copy()
    req = requests_of(data)
    p["cpu"] = [req[(d, t)][0] for d, t in zip(p["dag_id"].astype(str), p["task_id"].astype(str))]
    p["mem"] = [req[(d, t)][1] for d, t in zip(p["dag_id"].astype(str), p["task_id"].astype(str))]
    pool_of = {n.name: n.pool.name for n in kube(sim).cluster.all_nodes}
    p["pool"] = [pool_of.get(n, "") for n in p["node"].astype(str)]
    p["bind_at"] = (p["bound_at"] - kube(sim).cfg.bind_time).fillna(math.inf)
    return p


def max_overlap_weighted(starts, ends, weights) -> float:
    """Largest sum of weights of intervals [start, end) open at once (at equal times, ends first)."""
    if len(starts) == 0:
        return 0.0
    t = np.r_[starts, ends]
    w = np.r_[weights, -np.asarray(weights, dtype=float)]
    order = np.lexsort((w, t))
    return float(np.cumsum(w[order]).max())


def max_overlap(starts, ends) -> int:
    return int(round(max_overlap_weighted(starts, ends, np.ones(len(starts)))))


def events_of(result, prefix: str) -> pd.DataFrame:
    ev = result.events
    return ev[ev["what"].astype(str).str.startswith(prefix)]


def final_states(result) -> pd.Series:
    """ti_uid -> the state of its last try."""
    tis = result.task_instances.sort_values(["ti_uid", "try_number"])
    return tis.groupby("ti_uid")["state"].last().astype(str)




# =========================================================================== 1. node capacity
#: (cpu, memory) requests that fit differently in the pools below: 3.5 cores or 12000 MiB only
#: fit the "big" pool, 0.1 core is tiny.
REQUESTS = [(0.25, 256), (0.5, 1024), (1, 512), (2, 4096), (3.5, 2048), (1.5, 12000), (0.1, 100), (1, 3000)]
CAPACITY_POOLS = [
    {"name": "small", "cores": 2, "memory": 4096, "max_nodes": 3, "initial_nodes": 1},
    {"name": "big", "instance_type": "m5.2xlarge", "cores": 4, "memory": 16384, "max_nodes": 4},
    {"name": "tall", "cores": 8, "memory": 8192, "max_nodes": 1, "min_nodes": 1},
]


def capacity_scenario(autoscaler: str, scoring: str, seed: int) -> dict:
    tasks = {}
    for i in range(24):
        cpu, mem = REQUESTS[i % len(REQUESTS)]
        tasks[f"t{i:02d}"] = {"duration": {"exponential": {"mean": "90s"}}, "cpu": cpu, "memory": mem}
    return k8s_scenario([dag("mixed", {"poisson_per_hour": 30}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 64},
                        cluster={"autoscaler": autoscaler, "scoring": scoring, "node_pools": CAPACITY_POOLS},
                        airflow={"task_queued_timeout": 0}, seed=seed, horizon="90m")


@pytest.mark.parametrize("autoscaler,scoring,seed", [("karpenter", "least_allocated", 5),
                                                     ("karpenter", "most_allocated", 6),
                                                     ("cluster-autoscaler", "least_allocated", 7)])
def test_no_node_holds_more_than_its_capacity(autoscaler, scoring, seed):
    """For each node, the most CPU and memory requested at once by the pods bound on it (from
    the binding decision, bound_at - bind_time, to ended_at) is at most its pool's cores and
    memory. Tasks request 0.1 to 3.5 cores and 100 to 12000 MiB on three pools of different shapes;
    the cluster is busy enough that nodes do fill up."""
    data = capacity_scenario(autoscaler, scoring, seed)
    r, sim = simulate(data)
    assert not r.stuck
    p = pods_with_requests(r, sim, data)
    alive = p["ended_at"].isna()            # the last pods, between their task's end and their exit
    assert len(p) > 500 and (p.loc[~alive, "phase"] == "Succeeded").all() and alive.sum() <= 2
    assert (p["node"].astype(str) != "").all()
    p = p.assign(ended_at=p["ended_at"].fillna(np.inf))     # an alive pod holds its node to the end
    cap = {pool["name"]: (pool["cores"], pool["memory"]) for pool in CAPACITY_POOLS}
    fullest = 0.0
    for node, g in p.groupby("node"):
        cores, memory = cap[g["pool"].iloc[0]]
        cpu = max_overlap_weighted(g["bind_at"], g["ended_at"], g["cpu"])
        mem = max_overlap_weighted(g["bind_at"], g["ended_at"], g["mem"])
        assert cpu <= cores + EPS, f"{node}: {cpu} cores requested at once on a {cores}-core node"
        assert mem <= memory + EPS, f"{node}: {mem} MiB requested at once on a {memory} MiB node"
        fullest = max(fullest, cpu / cores, mem / memory)
    assert fullest >= 0.9, "the test never filled a node: it checks nothing"
    # every pod went to a pool whose node can hold it at all
    for pool, (cores, memory) in cap.items():
        on = p[p["pool"] == pool]
        assert (on["cpu"] <= cores).all() and (on["mem"] <= memory).all()
    assert set(p["pool"]) == set(cap), "every pool should have been used"
    # the node and its pods: a pod's node existed (and was ready) while it was bound there
    nodes = {n.name: n for n in kube(sim).cluster.all_nodes}
    for row in p.itertuples():
        n = nodes[row.node]
        assert n.ready_at <= row.bind_at + EPS
        assert n.gone_at is None or n.gone_at >= row.ended_at - EPS


# =========================================================================== 2. autoscaler
AUTOSCALER_POOLS = [
    {"name": "a", "cores": 2, "memory": 8192, "max_nodes": 4},
    {"name": "b", "instance_type": "m5.2xlarge", "cores": 8, "memory": 32768, "max_nodes": 3,
     "min_nodes": 1, "initial_nodes": 1},
]
#: (id, autoscaler, autoscaler_settings, burst times)
AUTOSCALER_CASES = [
    ("cluster-autoscaler", "cluster-autoscaler", None, [0, 200, 2700, 2800, 6000]),
    ("karpenter", "karpenter", None, [0, 200, 900, 1000, 2000]),
    ("cluster-autoscaler-overridden", "cluster-autoscaler",
     {"scan_interval": 5, "provision_min": 20, "provision_max": 30, "scale_down_unneeded_time": 120,
      "scale_down_delay_after_add": 0}, [0, 200, 900, 1000, 2000]),
    ("karpenter-overridden", "karpenter",
     {"scan_interval": "2s", "provision_min": 90, "provision_max": 90, "scale_down_unneeded_time": "5m",
      "scale_down_delay_after_add": "1m"}, [0, 200, 1500, 1600, 3000]),
]


def autoscaler_scenario(autoscaler: str, settings: dict | None, bursts: list, seed: int = 3) -> dict:
    tasks = {}
    cpus = [0.5, 1, 2, 1, 3, 6, 0.5, 2, 1, 1.5, 2, 1]
    for i, cpu in enumerate(cpus):
        tasks[f"t{i:02d}"] = {"duration": {"uniform": {"low": "1m", "high": "6m"}}, "cpu": cpu,
                              "memory": 1024 * (1 + i % 3)}
    cluster = {"autoscaler": autoscaler, "node_pools": AUTOSCALER_POOLS}
    if settings:
        cluster["autoscaler_settings"] = settings
    return k8s_scenario([dag("bursty", {"at": bursts}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 64}, cluster=cluster,
                        airflow={"task_queued_timeout": 0}, seed=seed, horizon=max(bursts) + 1)


def effective_autoscaler(autoscaler: str, settings: dict | None) -> dict:
    from sim.scenario.units import parse_duration
    a = dict(AUTOSCALERS[autoscaler])
    for k, v in (settings or {}).items():
        a[k] = parse_duration(v)
    return a


def check_node_log(r, sim) -> None:
    """The nodes table is the count of nodes (provisioning or ready) per pool after each change."""
    nodes = kube(sim).cluster.all_nodes
    for row in r.nodes.itertuples():
        alive = [n for n in nodes if n.pool.name == row.pool and n.created_at <= row.time
                 and (n.gone_at is None or n.gone_at > row.time)]
        later = r.nodes[(r.nodes["pool"] == row.pool) & (r.nodes["time"] == row.time)]
        if row.Index == later.index[-1]:       # the last entry of that instant
            assert len(alive) == row.nodes, (row, [n.name for n in alive])


def check_scale_ups(r, sim, p: pd.DataFrame, a: dict) -> int:
    """Every node the autoscaler added was added while some pod was pending (created, not bound)
    that no ready node had room for; never more nodes at once than such pods; and a node of a
    pool that can hold at least one of them. Returns the number of nodes added."""
    cluster = kube(sim).cluster
    nodes = cluster.all_nodes
    added = [n for n in nodes if n.created_at > 0 or n.ready_at > n.created_at]
    by_time: dict = defaultdict(list)
    for n in added:
        by_time[n.created_at].append(n)
    for t, new in sorted(by_time.items()):
        # scale-ups happen on the autoscaler's scan grid
        assert t / a["scan_interval"] == pytest.approx(round(t / a["scan_interval"]), abs=1e-6), t
        pending = p[(p["created_at"] <= t) & (p["bind_at"] > t)]
        ready = [n for n in nodes if n.ready_at <= t and (n.gone_at is None or n.gone_at > t)
                 and not (n.created_at == t and n in new)]
        free = {}
        for n in ready:
            on = p[(p["node"] == n.name) & (p["bind_at"] <= t) & (p["ended_at"] > t)]
            free[n.name] = (n.pool.cores - on["cpu"].sum(), n.pool.memory - on["mem"].sum())
        unfit = [row for row in pending.itertuples()
                 if not any(c >= row.cpu - EPS and m >= row.mem - EPS for c, m in free.values())]
        assert unfit, f"t={t}: {[n.name for n in new]} added while no pod waited for room"
        assert len(new) <= len(unfit), f"t={t}: {len(new)} nodes added for {len(unfit)} unplaceable pods"
        for n in new:
            assert any(row.cpu <= n.pool.cores and row.mem <= n.pool.memory for row in unfit), \
                f"t={t}: {n.name} cannot hold any of the waiting pods"
            # provisioning takes what the autoscaler profile says
            assert a["provision_min"] - EPS <= n.ready_at - n.created_at <= a["provision_max"] + EPS
            assert cluster_pool_count(nodes, n.pool.name, t) <= n.pool.max_nodes
    return len(added)


def cluster_pool_count(nodes, pool: str, t: float) -> int:
    return sum(1 for n in nodes if n.pool.name == pool and n.created_at <= t and (n.gone_at is None or n.gone_at > t))


def check_scale_downs(sim, p: pd.DataFrame, a: dict, end: float) -> int:
    """Every removed node was ready and had no pod bound during the scale_down_unneeded_time
    before it went, no node of its pool had been added within scale_down_delay_after_add, and
    its pool stayed at or above min_nodes. Returns the number of nodes removed."""
    nodes = kube(sim).cluster.all_nodes
    unneeded, delay = a["scale_down_unneeded_time"], a["scale_down_delay_after_add"]
    removed = [n for n in nodes if n.gone_at is not None]
    for n in removed:
        t = n.gone_at
        assert t / a["scan_interval"] == pytest.approx(round(t / a["scan_interval"]), abs=1e-6), t
        on = p[p["node"] == n.name]
        busy_until = max([n.ready_at, *on["ended_at"]])
        assert t - busy_until >= unneeded - EPS, (
            f"{n.name} removed at {t} after only {t - busy_until:.3f} s idle (unneeded time {unneeded})")
        assert (on["bind_at"] <= t).all()
        adds = [m.created_at for m in nodes if m.pool is n.pool and m.created_at > 0 and m.created_at <= t]
        assert not adds or t - max(adds) >= delay - EPS, f"{n.name} removed {t - max(adds)} s after a scale-up"
        assert cluster_pool_count(nodes, n.pool.name, t) >= n.pool.min_nodes
    # and nothing goes below min_nodes at the end either
    for pool in AUTOSCALER_POOLS:
        assert cluster_pool_count(nodes, pool["name"], end) >= pool.get("min_nodes", 0)
    return len(removed)


def check_scale_downs_timely(sim, p: pd.DataFrame, a: dict, end: float) -> None:
    """With no delay after adds and no min_nodes in the way, an idle node goes within one scan of
    reaching scale_down_unneeded_time (the flip side: the autoscaler does remove idle nodes)."""
    nodes = kube(sim).cluster.all_nodes
    for n in nodes:
        if n.pool.min_nodes:
            continue
        on = p[p["node"] == n.name].sort_values("bind_at")
        # idle stretches: from ready or a pod's end (nothing else bound) to the next bind or removal
        busy = sorted(zip(on["bind_at"], on["ended_at"]))
        idle_from = n.ready_at
        stretches = []
        for b, e in busy:
            if b > idle_from:
                stretches.append((idle_from, b))
            idle_from = max(idle_from, e)
        stretches.append((idle_from, n.gone_at if n.gone_at is not None else end))
        limit = a["scale_down_unneeded_time"] + a["scan_interval"] + EPS
        for s, e in stretches:
            if s < n.ready_at or (n.gone_at is None and e == end):
                continue
            assert e - s <= limit, f"{n.name} idle from {s:.3f} to {e:.3f} ({e - s:.3f} s > {limit:.3f})"


@pytest.mark.parametrize("case", AUTOSCALER_CASES, ids=[c[0] for c in AUTOSCALER_CASES])
def test_autoscaler_adds_for_pending_pods_and_removes_idle_nodes(case):
    """Bursts of pods needing 0.5 to 6 cores on two pools: nodes are added only at a scan when some
    pod is pending that no ready node can take (no more nodes than such pods, of a pool that can
    hold one, ready after provision_min..provision_max), and removed only after
    scale_down_unneeded_time with no pod on them, scale_down_delay_after_add after the pool's last
    addition, never below min_nodes. With overrides, the overridden values are the ones obeyed."""
    _, autoscaler, settings, bursts = case
    data = autoscaler_scenario(autoscaler, settings, bursts)
    r, sim = simulate(data)
    assert not r.stuck and (final_states(r) == "success").all()
    p = pods_with_requests(r, sim, data)
    a = effective_autoscaler(autoscaler, settings)
    end = float(r.dag_runs["ended_at"].max())
    check_node_log(r, sim)
    ups = check_scale_ups(r, sim, p, a)
    downs = check_scale_downs(sim, p, a, end)
    assert ups >= 3 and downs >= 2, f"the scenario should scale up and down (added {ups}, removed {downs})"
    stats = r.summary["executors"]["KubernetesExecutor"]
    assert stats["nodes_added"] == ups and stats["nodes_removed"] == downs
    if a["scale_down_delay_after_add"] == 0:
        check_scale_downs_timely(sim, p, a, end)


def test_cluster_autoscaler_delay_after_add_is_cluster_wide():
    """Cluster Autoscaler with scale_down_delay_after_add 300 s: a scale-up in pool b at 205 s
    holds back the removal of pool a's idle node until 505 s."""
    dags = [dag("s", {"at": [0, 1200]}, {"small": {"duration": "60s", "cpu": 1}}),
            dag("b", {"at": [200]}, {"big": {"duration": "60s", "cpu": 6}})]
    data = k8s_scenario(dags, kubernetes={"worker_pods_creation_batch_size": 16, "instant_nodes": False},
                        cluster={"autoscaler": "cluster-autoscaler",
                                 "autoscaler_settings": {"scan_interval": 5, "provision_min": 20, "provision_max": 20,
                                                         "scale_down_unneeded_time": 120,
                                                         "scale_down_delay_after_add": 300},
                                 "node_pools": [{"name": "a", "cores": 2, "memory": 8192, "max_nodes": 2},
                                                {"name": "b", "cores": 8, "memory": 32768, "max_nodes": 2}]})
    r, sim = simulate(data)
    nodes = {n.name: n for n in kube(sim).cluster.all_nodes}
    assert nodes["b-0"].created_at == 205.0 and nodes["a-0"].gone_at is not None
    assert nodes["a-0"].gone_at >= 205.0 + 300.0 - EPS, nodes["a-0"].gone_at


def test_autoscaler_none_never_adds_or_removes():
    """``autoscaler: none``: the initial nodes stay, nothing is added even with pods waiting."""
    tasks = {f"t{i}": {"duration": "2m", "cpu": 2} for i in range(6)}
    data = k8s_scenario([dag("d", {"at": [0]}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 16},
                        cluster={"autoscaler": "none", "node_pools": [
                            {"name": "p", "cores": 4, "memory": 16384, "max_nodes": 10, "initial_nodes": 1}]},
                        airflow={"task_queued_timeout": 0})
    r, sim = simulate(data)
    assert not r.stuck and (final_states(r) == "success").all()
    assert list(r.nodes["nodes"]) == [1]
    assert [n.name for n in kube(sim).cluster.all_nodes] == ["p-0"]
    # two at a time on the one 4-core node
    p = r.pods
    assert max_overlap(p["bound_at"], p["ended_at"]) == 2


def test_pod_too_big_for_every_pool_adds_no_node():
    """A pod requesting more than any pool's node offers never makes the autoscaler add a node
    (its task ends failed by task_queued_timeout); the fitting task runs normally."""
    tasks = {"huge": {"duration": "1m", "cpu": 16}, "fine": {"duration": "1m", "cpu": 1}}
    data = k8s_scenario([dag("d", {"at": [0]}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 16},
                        cluster={"autoscaler": "karpenter", "node_pools": [
                            {"name": "p", "cores": 4, "memory": 16384, "max_nodes": 10}]},
                        airflow={"task_queued_timeout": 300, "task_queued_timeout_check_interval": 30})
    r, sim = simulate(data)
    assert not r.stuck
    fs = r.task_instances.groupby("task_id")["state"].last().astype(str)
    assert fs["huge"] == "failed" and fs["fine"] == "success"
    # exactly one node: for `fine`
    assert kube(sim).cluster.scale_ups == 1
    huge = r.pods[r.pods["task_id"].astype(str) == "huge"]
    assert len(huge) >= 1 and huge["bound_at"].isna().all()


# =========================================================================== 3. ideal = critical path
WIDE_DEPS = [f"root >> w{i}" for i in range(12)] + [f"w{i} >> sink" for i in range(12)] + ["w0 >> w0b"]
WIDE = {"root": 5, **{f"w{i}": 10 + 7 * i for i in range(12)}, "w0b": 100, "sink": 3}


def test_ideal_profile_kubernetes_timings_are_zero():
    """The ideal profile's kubernetes: section makes every start-up stage free, and a simulation
    on it gets those zeros (not the airflow-2.10 figures)."""
    prof = load_profile("ideal")["kubernetes"]
    for key in TIMINGS:
        assert prof[key] == 0, key
    data = k8s_scenario([dag("d", {"at": [0]}, {"a": {"duration": 1}})])
    cfg = kube(Simulation(scenario_from_dict(data))).cfg
    for key in TIMINGS:
        assert getattr(cfg, key) == 0, key
    busy = load_profile("airflow-2.10")["kubernetes"]
    assert all(busy[k] > 0 for k in TIMINGS)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", ["diamond-constant", "diamond-random", "wide"])
def test_ideal_kubernetes_makespan_equals_critical_path(name, seed):
    """With the ideal profile, enough nodes up from the start (autoscaler none), a large
    worker_pods_creation_batch_size and no binding limit, a DAG run lasts exactly its critical
    path (1e-9 s), every task starts the instant it is queued and each pod's stages take 0 s."""
    tasks, deps = {"diamond-constant": (DIAMOND_CONSTANT, DIAMOND_DEPS),
                   "diamond-random": (DIAMOND_RANDOM, DIAMOND_DEPS), "wide": (WIDE, WIDE_DEPS)}[name]
    data = k8s_scenario([dag("g", {"at": [0]}, {t: {"duration": d, "cpu": 1} for t, d in tasks.items()}, deps)],
                        kubernetes={"worker_pods_creation_batch_size": 1000},
                        cluster={"autoscaler": "none", "node_pools": [
                            {"name": "p", "cores": 4, "memory": 16384, "max_nodes": 100, "initial_nodes": 10}]},
                        seed=seed)
    r, _ = simulate(data)
    assert not r.stuck and len(r.dag_runs) == 1 and (r.dag_runs["state"] == "success").all()
    tis = r.task_instances
    assert (tis["try_number"] == 1).all() and tis["task_id"].is_unique
    run = r.dag_runs.iloc[0]
    dur = dict(zip(tis["task_id"].astype(str), (tis["ended_at"] - tis["started_at"]).astype(float)))
    assert float(run["ended_at"] - run["started_at"]) == pytest.approx(critical_path(dur, deps), rel=0, abs=1e-9)
    if name != "diamond-random":
        for t, d in dur.items():
            assert d == pytest.approx(float(tasks[t]), rel=0, abs=1e-9)
    assert np.allclose(tis["started_at"], tis["queued_at"], rtol=0, atol=1e-9)
    assert np.allclose(tis["launched_at"], tis["queued_at"], rtol=0, atol=1e-9)
    p = r.pods
    assert len(p) == len(tis) and set(p["pod"]) == set(tis["worker"])
    for col in ("scheduling_s", "image_pull_s", "init_containers_s", "container_start_s"):
        assert np.allclose(p[col], 0.0, rtol=0, atol=1e-9), col


@pytest.mark.parametrize("autoscaler", ["cluster-autoscaler", "karpenter"])
def test_ideal_kubernetes_from_an_empty_cluster_is_the_critical_path(autoscaler):
    """Issue #12: under ideal every overhead is zero, node provisioning included. On the default
    cluster (scaled from zero nodes by an autoscaler preset that takes minutes) a DAG run still
    lasts exactly its critical path: a pod that needs a node gets one at once."""
    data = k8s_scenario([dag("g", {"at": [0, 500]}, {t: {"duration": d, "cpu": 1} for t, d in DIAMOND_CONSTANT.items()},
                             DIAMOND_DEPS)],
                        kubernetes={"worker_pods_creation_batch_size": 1000},
                        cluster={"autoscaler": autoscaler, "node_pools": [{"name": "p", "cores": 2, "max_nodes": 50}]})
    r, sim = simulate(data)
    assert not r.stuck and len(r.dag_runs) == 2 and (r.dag_runs["state"] == "success").all()
    cp = critical_path(DIAMOND_CONSTANT, DIAMOND_DEPS)
    for _, run in r.dag_runs.iterrows():
        assert float(run["ended_at"] - run["started_at"]) == pytest.approx(cp, rel=0, abs=1e-9)
    tis = r.task_instances
    assert np.allclose(tis["started_at"], tis["queued_at"], rtol=0, atol=1e-9)
    assert kube(sim).cluster.scale_ups >= 2          # the nodes were added on demand, not there before


# =========================================================================== 4. pod creation batches
N_BURST = 20
FIXED_LOOP = 0.5      # the loop cost of the fixed-loop profile (ideal + scheduler_loop_base)


def burst_scenario(batch: int, profile: str, *, n: int = N_BURST, overheads: dict | None = None,
                   kubernetes: dict | None = None, airflow: dict | None = None, duration="10m") -> dict:
    """``n`` independent tasks of one run queued in the same loop (max_tis_per_query 0, parallelism
    and nodes plentiful, nodes up from the start), each lasting ``duration`` so that no task ends
    while the pods are being created."""
    tasks = {f"t{i:02d}": {"duration": duration, "cpu": 0.5} for i in range(n)}
    k = {"worker_pods_creation_batch_size": batch, **(kubernetes or {})}
    af = {"max_tis_per_query": 0, **(airflow or {})}
    return k8s_scenario([dag("burst", {"at": [10]}, tasks)], profile=profile, kubernetes=k, airflow=af,
                        overheads=overheads,
                        cluster={"autoscaler": "none", "node_pools": [
                            {"name": "p", "cores": 64, "memory": 262144, "max_nodes": 2, "initial_nodes": 2}]})


def created_times(r) -> np.ndarray:
    return np.sort(r.pods["created_at"].to_numpy())


def test_batch_size_1_creates_one_pod_per_loop_fixed_loop():
    """A profile with a fixed loop cost L (ideal + scheduler_loop_base 0.5 s, free pod creation):
    with worker_pods_creation_batch_size 1, N tasks queued at once get their pods one loop apart,
    so the last pod comes at least (N - 1)·L after the first; one pod per loop, never two."""
    r, _ = simulate(burst_scenario(1, "ideal", overheads={"scheduler_loop_base": FIXED_LOOP}))
    assert not r.stuck and (final_states(r) == "success").all()
    c = created_times(r)
    assert len(c) == N_BURST
    assert c[-1] - c[0] >= (N_BURST - 1) * FIXED_LOOP - EPS, np.diff(c)
    assert np.all(np.diff(c) >= FIXED_LOOP - EPS), np.diff(c)
    # the tasks' launch follows the pods: launched_at is the pod's creation
    tis = r.task_instances
    assert np.allclose(np.sort(tis["launched_at"]), c)


def test_batch_size_1_airflow_defaults_spread_at_least_n_loops():
    """airflow-2.10 profile, batch size 1 (Airflow's default, P9): each idle loop sleeps
    scheduler_idle_sleep_time and creates one pod with one API call, so 20 tasks queued at once
    get their pods over at least 19 × (sleep + api_create_time)."""
    prof = load_profile("airflow-2.10")
    L = prof["airflow"]["scheduler_idle_sleep_time"] + prof["kubernetes"]["api_create_time"]
    # without the loop's timers, which cut the sleep before every multiple of 5 s
    r, _ = simulate(burst_scenario(1, "airflow-2.10", airflow={"task_queued_timeout": 0, "loop_timers": False}))
    assert not r.stuck and (final_states(r) == "success").all()
    c = created_times(r)
    assert len(c) == N_BURST
    assert c[-1] - c[0] >= (N_BURST - 1) * L - 0.5, np.diff(c)


@pytest.mark.parametrize("batch", [N_BURST, 64])
@pytest.mark.parametrize("profile", ["ideal", "airflow-2.10"])
def test_large_batch_creates_all_pods_in_one_loop(profile, batch):
    """worker_pods_creation_batch_size >= N: all N pods are created by the first executor
    heartbeat after queueing, one API call after another (or at once when calls are free): the
    spread is (N - 1) × api_create_time, and pod i is created i+1 calls after the heartbeat."""
    over = {"scheduler_loop_base": FIXED_LOOP} if profile == "ideal" else None
    r, sim = simulate(burst_scenario(batch, profile, overheads=over, airflow={"task_queued_timeout": 0}))
    assert not r.stuck and (final_states(r) == "success").all()
    api = kube(sim).cfg.api_create_time
    c = created_times(r)
    assert len(c) == N_BURST
    assert c[-1] - c[0] == pytest.approx((N_BURST - 1) * api, abs=1e-6)
    assert np.allclose(np.diff(c), api, atol=1e-6)


def test_async_pod_creation_makes_the_batch_concurrent():
    """async_pod_creation with pod_creation_max_concurrency 5: 20 pods in 4 rounds of one API call."""
    r, sim = simulate(burst_scenario(64, "airflow-2.10", kubernetes={"async_pod_creation": True,
                                                                     "pod_creation_max_concurrency": 5},
                                     airflow={"task_queued_timeout": 0}))
    api = kube(sim).cfg.api_create_time
    c = created_times(r)
    assert len(c) == N_BURST
    rounds = np.round((c - c[0]) / api).astype(int)
    assert list(np.bincount(rounds)) == [5, 5, 5, 5]


def test_batch_size_1_is_exactly_one_loop_per_pod():
    """Fixed loop cost L = 0.5 s, batch size 1, 20 long tasks queued at once: a pod every loop,
    exactly L apart, as with every idle loop simulated one by one."""
    data = burst_scenario(1, "ideal", overheads={"scheduler_loop_base": FIXED_LOOP})
    r, _ = simulate(data)
    c = created_times(r)
    assert np.allclose(np.diff(c), FIXED_LOOP, atol=1e-9), np.diff(c)
    slow = Simulation(scenario_from_dict(data), skip_idle_loops=False).run()
    assert np.allclose(created_times(slow), c, atol=1e-9)


def test_batch_size_1_airflow_defaults_every_task_gets_a_pod_within_n_loops():
    """airflow-2.10 defaults with batch size 1: 20 tasks queued at once all get a pod within about
    20 loops, none is re-queued by task_queued_timeout and all succeed."""
    prof = load_profile("airflow-2.10")
    L = prof["airflow"]["scheduler_idle_sleep_time"] + prof["kubernetes"]["api_create_time"]
    r, _ = simulate(burst_scenario(1, "airflow-2.10"))
    assert (final_states(r) == "success").all()
    c = created_times(r)
    assert len(c) == N_BURST
    assert c[-1] - c[0] <= (N_BURST - 1) * (L + 0.2), np.diff(c)
    assert not r.transitions["cause"].astype(str).str.startswith("stuck in queued").any()


# =========================================================================== 5. image pulls
def image_scenario(bind_time: float, seed: int = 2) -> dict:
    tasks = {f"t{i:02d}": {"duration": {"exponential": {"mean": "40s"}}, "cpu": 1} for i in range(10)}
    return k8s_scenario([dag("img", {"poisson_per_hour": 40}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 4, "bind_time": bind_time,
                                    "image_size_mb": 1500, "pull_bandwidth_mb_s": 50},
                        cluster={"autoscaler": "karpenter", "node_pools": [
                            {"name": "p", "cores": 4, "memory": 16384, "max_nodes": 6}]},
                        airflow={"task_queued_timeout": 0}, seed=seed, horizon="1h")


def check_image_pulls(r, sim, pull: float) -> None:
    bind = kube(sim).cfg.bind_time
    p = r.pods.copy()
    p["bind_at"] = p["bound_at"] - bind
    assert (p["node"].astype(str) != "").all()
    during = after = 0
    unfinished_puller = 0
    for node, g in p.groupby("node", observed=True):
        cold = g[g["cold_pull"].astype(bool)]
        if cold.empty:
            # the pod that pulled was still running when the simulation ended (the table holds
            # finished pods): the ones here waited for that one pull
            assert np.allclose(g["image_ready_at"], g["image_ready_at"].iloc[0], atol=1e-9), node
            assert (g["image_pull_s"] <= pull + EPS).all(), node
            unfinished_puller += 1
            continue
        assert len(cold) == 1, f"{node}: {len(cold)} pods pulled the image (one should)"
        first = cold.iloc[0]
        assert first["bind_at"] <= g["bind_at"].min() + EPS, f"{node}: the pull was not by its first pod"
        assert first["image_pull_s"] == pytest.approx(pull, abs=1e-6), (node, first["image_pull_s"])
        ready = first["image_ready_at"]
        rest = g.drop(index=first.name)
        pulling = rest[rest["bind_at"] < ready - EPS]
        # bound while the pull was in progress: wait for that pull, do not start another
        assert np.allclose(pulling["image_ready_at"], ready, atol=1e-9)
        assert (pulling["image_pull_s"] <= pull + EPS).all()
        # bound after it: no pull at all
        later = rest[rest["bind_at"] >= ready - EPS]
        assert np.allclose(later["image_pull_s"], 0.0, atol=1e-9)
        during += len(pulling)
        after += len(later)
    assert during >= 3 and after >= 30, (during, after)
    nodes_used = p["node"].nunique()
    assert int(p["cold_pull"].sum()) == nodes_used - unfinished_puller and unfinished_puller <= 1
    assert r.summary["executors"]["KubernetesExecutor"]["cold_image_pulls"] == int(p["cold_pull"].sum())


def test_cold_node_pulls_the_image_once():
    """1.5 GB image at 50 MB/s (30 s), nodes added by Karpenter with no image: the first pod bound
    on each node pulls (cold_pull, image_pull_s = 30 s); pods bound during that pull wait for its
    end (same image_ready_at) without pulling again; pods bound later do not pull (0 s). With
    bind_time 0, the kube-scheduler's binding and the kubelet's start coincide."""
    r, sim = simulate(image_scenario(bind_time=0.0))
    assert not r.stuck
    check_image_pulls(r, sim, 1500 / 50)


def test_cold_pull_takes_size_over_bandwidth_after_binding():
    r, sim = simulate(image_scenario(bind_time=0.5))
    check_image_pulls(r, sim, 1500 / 50)


def test_stage_durations_add_up_to_container_start():
    """Each pod's start-up stages (scheduling, image pull, init containers, container start) add up
    to container_started_at - created_at, and the fixed stages take the profile's times."""
    r, sim = simulate(image_scenario(bind_time=0.05))
    cfg = kube(sim).cfg
    p = r.pods
    total = p["scheduling_s"] + p["image_pull_s"] + p["init_containers_s"] + p["container_start_s"]
    assert np.allclose(total, p["container_started_at"] - p["created_at"], atol=1e-9)
    assert np.allclose(p["init_containers_s"], cfg.init_container_time)
    assert np.allclose(p["container_start_s"], cfg.container_start_time)
    assert (p["scheduling_s"] >= cfg.bind_time - EPS).all()
    # the task's process starts after the container, and the task after Airflow boots and parses;
    # the try's launched_at is its pod's creation
    tis = r.task_instances.set_index("worker")
    assert np.allclose(tis.loc[p["pod"], "launched_at"].to_numpy(), p["created_at"].to_numpy(), atol=1e-9)
    started = tis.loc[p["pod"], "started_at"].to_numpy()
    assert np.all(started >= p["container_started_at"].to_numpy() + cfg.airflow_boot_time - EPS)


# =========================================================================== 6. hybrid, spot
def hybrid_scenario(kubernetes_queue: str | None, seed: int = 8) -> dict:
    kq = kubernetes_queue or "kubernetes"
    tasks = {}
    for i in range(6):
        tasks[f"k{i}"] = {"duration": {"exponential": {"mean": "45s"}}, "queue": kq, "cpu": 1}
    for i in range(5):
        tasks[f"c{i}"] = {"duration": {"exponential": {"mean": "30s"}}}
    tasks["g0"] = {"duration": "20s", "queue": "gpu"}
    # a queue that looks like the kubernetes one but is not it
    tasks["x0"] = {"duration": "20s", "queue": "kubernetes" if kubernetes_queue else "k8s"}
    pools = [{"name": "cpu", "replicas": 2, "queues": ["default"], "concurrency": 4},
             {"name": "gpu", "replicas": 1, "queues": ["gpu", "kubernetes", "k8s"], "concurrency": 2}]
    ex = {"worker_pools": pools}
    if kubernetes_queue:
        ex["kubernetes_queue"] = kubernetes_queue
    return k8s_scenario([dag("mix", {"poisson_per_hour": 20}, tasks)], profile="airflow-2.10",
                        kind="celery_kubernetes", kubernetes={"worker_pods_creation_batch_size": 16},
                        cluster={"autoscaler": "karpenter", "node_pools": [
                            {"name": "p", "cores": 4, "memory": 16384, "max_nodes": 5, "initial_nodes": 1}]},
                        executor=ex, airflow={"parallelism": 64}, seed=seed, horizon="2h")


@pytest.mark.parametrize("kubernetes_queue", [None, "k8s"])
def test_celery_kubernetes_routes_by_queue(kubernetes_queue):
    """CeleryKubernetesExecutor: every try of a task whose queue is kubernetes_queue (default
    `kubernetes`) runs in its own pod (a pods row for that task and try; worker = the pod's name),
    every other try on a Celery worker of a pool listening to its queue."""
    data = hybrid_scenario(kubernetes_queue)
    r, _ = simulate(data)
    assert not r.stuck and (final_states(r) == "success").all()
    kq = kubernetes_queue or "kubernetes"
    tis = r.task_instances
    to_k8s = tis["queue"].astype(str) == kq
    assert to_k8s.sum() > 50 and (~to_k8s).sum() > 50
    pods = r.pods
    pod_names = set(pods["pod"].astype(str))
    assert pods["pod"].is_unique and len(pods) == to_k8s.sum()
    k = tis[to_k8s]
    assert k["worker"].astype(str).isin(pod_names).all()
    by_pod = pods.set_index("pod")
    for row in k.itertuples():
        pod = by_pod.loc[row.worker]
        assert (pod["run_id"], pod["task_id"], pod["try_number"]) == (row.run_id, row.task_id, row.try_number)
    listens = {"cpu": {"default"}, "gpu": {"gpu", "kubernetes", "k8s"}}
    c = tis[~to_k8s]
    assert not c["worker"].astype(str).isin(pod_names).any()
    pool_of = c["worker"].astype(str).str.rsplit("-", n=1).str[0]
    assert all(q in listens[p] for q, p in zip(c["queue"].astype(str), pool_of))
    # the look-alike queue went to Celery
    x0 = tis[tis["task_id"].astype(str) == "x0"]
    assert len(x0) > 5 and (x0["worker"].astype(str).str.startswith("gpu-")).all()
    assert set(r.summary["executors"]["CeleryKubernetesExecutor"]) == {"celery", "kubernetes"}


SPOT_RETRIES = 3


def spot_scenario(seed: int, *, pull_mb_s: float = 50, kind: str = "kubernetes",
                  executor: dict | None = None, launch_retries: int | None = None) -> dict:
    tasks = {f"t{i}": {"duration": {"uniform": {"low": "2m", "high": "8m"}}, "cpu": 1, "queue": "kubernetes",
                       "retries": SPOT_RETRIES, "retry_delay": "30s"} for i in range(8)}
    k = {"worker_pods_creation_batch_size": 32, "image_size_mb": 1000, "pull_bandwidth_mb_s": pull_mb_s}
    if launch_retries is not None:
        k["pod_launch_failure_retries"] = launch_retries
    return k8s_scenario([dag("d", {"every": "20m"}, tasks)], profile="airflow-2.10", kind=kind, kubernetes=k,
                        cluster={"autoscaler": "karpenter", "node_pools": [
                            {"name": "spot", "cores": 4, "memory": 16384, "max_nodes": 8, "spot": True,
                             "price_per_hour": 0.07, "interruptions_per_hour": 4}]},
                        executor=executor,
                        airflow={"task_instance_heartbeat_timeout": 60, "task_queued_timeout": 0},
                        seed=seed, horizon="4h")


def check_spot(r, sim, launch_retries: int) -> dict:
    """The spot-interruption bookkeeping of a run; returns counts of what happened."""
    assert not r.stuck
    fs = final_states(r)
    assert fs.isin(TERMINAL).all(), fs.value_counts()
    notices = events_of(r, "spot interruption notice")
    notice_at = dict(zip(notices["who"].astype(str), notices["time"]))
    assert len(notice_at) == len(notices), "a node noticed twice"
    lost = events_of(r, "pod lost: ").copy()
    assert len(lost) > 0
    tis = r.task_instances
    tr = r.transitions
    pods = r.pods.set_index("pod")
    uid_of = {(a, b): u for a, b, u in zip(tis["run_id"], tis["task_id"].astype(str), tis["ti_uid"])}
    n_started = n_unstarted = n_relaunched = 0
    for e in lost.itertuples():
        name = str(e.who)                       # the pod
        node = str(e.what).rsplit("spot node ", 1)[1].split()[0]
        # the notice came first, two minutes before the node went
        assert e.time == pytest.approx(notice_at[node] + SPOT_NOTICE, abs=1e-9)
        pod = pods.loc[name]
        assert pod["node"] == node and pod["phase"] == "Failed" and pod["ended_at"] == pytest.approx(e.time)
        uid, k = uid_of[(pod["run_id"], str(pod["task_id"]))], int(pod["try_number"])
        assert (uid, k) == (e.ti_uid, e.try_number)
        mine = tr[(tr["ti_uid"] == uid)]
        started = mine[(mine["to_state"].astype(str) == "running")
                       & mine["cause"].astype(str).str.endswith(f"started on {name}")]
        row = tis[(tis["ti_uid"] == uid) & (tis["try_number"] == k)].iloc[0]
        if len(started):
            n_started += 1
            # the try becomes a zombie: it fails at the next detection after the heartbeat timeout
            assert row["state"] in ("up_for_retry", "failed")
            assert row["started_at"] < e.time
            z = mine[mine["cause"].astype(str).str.startswith("zombie") & (mine["time"] > e.time)]
            assert len(z) >= 1
            assert z["time"].iloc[0] == pytest.approx(math.ceil((e.time + 60) / 10) * 10, abs=1e-6)
            if row["state"] == "up_for_retry":
                assert ((tis["ti_uid"] == uid) & (tis["try_number"] == k + 1)).any(), "no retry after a zombie"
        else:
            n_unstarted += 1
            # launched again with the same try (no task retry used), while launch retries last
            same_try = r.pods[(r.pods["run_id"] == pod["run_id"]) & (r.pods["task_id"] == pod["task_id"])
                              & (r.pods["try_number"] == k)].sort_values("created_at")
            before = same_try[same_try["created_at"] < pod["created_at"]]
            after = same_try[same_try["created_at"] > pod["created_at"]]
            killed = mine[mine["cause"].astype(str).str.contains("killed externally") & (mine["time"] >= e.time)]
            if len(before) < launch_retries:
                assert len(after) >= 1, f"{name} lost before its task started and was not relaunched"
                nxt = after["created_at"].iloc[0]
                assert nxt - e.time < 10, f"{name} relaunched {nxt - e.time:.1f} s after being lost"
                # the try was not failed: no task retry used
                assert not (killed["time"] <= nxt).any(), f"{name}: the try failed although relaunched"
                n_relaunched += 1
            else:
                # launch retries used up: the executor reports the pod failed, the try fails
                assert len(after) == 0
                assert len(killed) >= 1 and killed["time"].iloc[0] - e.time < 5
                assert str(killed["to_state"].iloc[0]) in ("up_for_retry", "failed")
    # every try row that ran on a pod belongs to one of its pods
    assert tis["worker"].astype(str).isin(set(r.pods["pod"].astype(str))).all()
    return {"started": n_started, "unstarted": n_unstarted, "relaunched": n_relaunched,
            "notices": len(notices)}


def test_spot_interruption_running_tasks_become_zombies_and_retry():
    """A spot pool with 4 interruptions per node-hour: after each 'spot interruption notice' the
    node's pods are lost two minutes later; tasks that had started become zombies (fail at the next
    zombie check after task_instance_heartbeat_timeout) and are retried; every task instance ends in
    a terminal state."""
    r, sim = simulate(spot_scenario(seed=4))
    counts = check_spot(r, sim, launch_retries=1)
    assert counts["started"] >= 5 and counts["notices"] >= 5, counts
    assert (final_states(r) == "success").all()


def test_spot_interruption_pods_lost_before_start_are_relaunched_without_a_retry():
    """A slow image pull (1 GB at 5 MB/s = 200 s, longer than the two-minute notice) makes pods get
    lost during start-up: such a pod is launched again with the same try number (the task keeps
    its try; pod_launch_failure_retries), and only when those are used up does the try fail as
    'killed externally'."""
    r, sim = simulate(spot_scenario(seed=5, pull_mb_s=5))
    counts = check_spot(r, sim, launch_retries=1)
    assert counts["unstarted"] >= 3 and counts["relaunched"] >= 3 and counts["started"] >= 1, counts
    # the relaunched pods carry the same try number as the one lost
    relaunched = r.pods.groupby(["run_id", "task_id", "try_number"], observed=True).size()
    assert (relaunched > 1).sum() >= 3


def test_spot_interruption_no_launch_retries_uses_a_task_retry():
    """pod_launch_failure_retries 0: a pod lost before its task started fails the try at once
    ('killed externally') and the task's own retry runs it."""
    r, sim = simulate(spot_scenario(seed=5, pull_mb_s=5, launch_retries=0))
    counts = check_spot(r, sim, launch_retries=0)
    assert counts["unstarted"] >= 3, counts
    killed = r.transitions[r.transitions["cause"].astype(str).str.contains("killed externally")]
    assert len(killed) >= 3


def test_spot_interruption_under_celery_kubernetes():
    """The same spot pool behind CeleryKubernetesExecutor: the lost pods are handled the same way
    and every task instance ends terminal."""
    data = spot_scenario(seed=6, pull_mb_s=5, kind="celery_kubernetes",
                         executor={"worker_pools": [{"name": "w", "replicas": 1, "queues": ["default"]}]})
    r, sim = simulate(data)
    counts = check_spot(r, sim, launch_retries=1)
    assert counts["started"] + counts["unstarted"] >= 3, counts


# =========================================================================== 7. the slot rule
def test_requested_pods_occupy_parallelism():
    """parallelism 6, a burst of 40 one-minute tasks, one 2-core node at first and Karpenter adding
    nodes slowly: never more than 6 tries between queued_at and released_at at once, the 6 are
    reached, and while they are, some of them are pods still waiting for a node (created, not
    bound) or not even created: requested pods hold their slot."""
    P = 6
    tasks = {f"t{i:02d}": {"duration": "1m", "cpu": 1} for i in range(40)}
    data = k8s_scenario([dag("burst", {"at": [0]}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 16},
                        cluster={"autoscaler": "karpenter", "node_pools": [
                            {"name": "p", "cores": 2, "memory": 8192, "max_nodes": 2, "initial_nodes": 1,
                             "min_nodes": 1}]},
                        airflow={"parallelism": P, "task_queued_timeout": 0})
    r, sim = simulate(data)
    assert not r.stuck and (final_states(r) == "success").all()
    tis = r.task_instances
    # every slot released, but the last tries' may still be held when the last run ends: only
    # tries that ended within the run's last loop cycle (2 s) have none
    unreleased = tis[tis["released_at"].isna()]
    assert (unreleased["ended_at"] >= r.dag_runs["ended_at"].max() - 2.0).all(), unreleased
    assert max_overlap(tis["queued_at"], tis["released_at"].fillna(np.inf)) == P
    # executor states: queued + running never exceed parallelism (from the transitions)
    tr = r.transitions.sort_values("time", kind="stable")
    held = 0
    peak = 0
    for row in tr.itertuples():
        if str(row.to_state) == "queued":
            held += 1
        elif str(row.from_state) in ("queued", "running") and str(row.to_state) not in ("queued", "running"):
            held -= 1
        peak = max(peak, held)
    assert peak <= P
    # pods waiting for a node while their slot is held
    p = r.pods
    bind = kube(sim).cfg.bind_time
    waiting_max = 0
    for t in np.unique(p["created_at"]):
        occupied = ((tis["queued_at"] <= t) & (tis["released_at"] > t)).sum()
        unbound = ((p["created_at"] <= t) & (p["bound_at"] - bind > t)).sum()
        if occupied == P:
            waiting_max = max(waiting_max, unbound)
    assert waiting_max >= 2, "pods waiting for a node never held slots: the test checks nothing"
    assert (p["scheduling_s"] > 30).sum() >= 4


def test_the_pods_tables_names_are_categoricals_that_agree_with_the_task_instances():
    """The pods table keeps its repeated names (DAG, run, task, node, phase) as categoricals, as
    task_instances does (a million pods: a code a row, not a pointer and a list), and each pod's
    names are those of the try it ran."""
    r, _ = simulate(k8s_scenario([dag("a", {"every": "20s"}, {"t1": {"duration": {"constant": 5}},
                                                             "t2": {"duration": {"constant": 3}}}, "t1 >> t2"),
                                  dag("b", {"every": "30s"}, {"t1": {"duration": {"constant": 4}}})],
                                 horizon=300.0))
    pods, tis = r.pods, r.task_instances
    assert len(pods) == len(tis) > 20
    for col in ("dag_id", "run_id", "task_id", "node", "phase"):
        assert isinstance(pods[col].dtype, pd.CategoricalDtype), col
        used = set(pods[col].astype(str))
        assert set(pods[col].cat.categories) == used, f"{col}: a category no pod uses"
    by_pod = tis.set_index(tis["worker"].astype(str))
    for pod in pods.itertuples():
        ti = by_pod.loc[pod.pod]
        assert (str(pod.dag_id), str(pod.run_id), str(pod.task_id), pod.try_number) == \
            (str(ti["dag_id"]), str(ti["run_id"]), str(ti["task_id"]), ti["try_number"])
    assert set(pods["phase"].astype(str)) == {"Succeeded"}


# =========================================================================== 8. sim run
def test_sim_run_k8s_short_tasks_writes_pods_and_nodes(tmp_path, capsys):
    """`sim run scenarios/k8s-short-tasks.yaml --out tmp` exits 0 and writes pods.csv (one row
    per pod with where its start-up time went) and nodes.csv, plus the pod charts."""
    out = tmp_path / "res"
    assert cli(["run", str(K8S_SHORT_TASKS), "--out", str(out), "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"pods.csv", "nodes.csv", "task_instances.csv", "summary.json"} <= names
    pods = pd.read_csv(out / "pods.csv")
    for col in ("pod", "dag_id", "run_id", "task_id", "try_number", "node", "phase", "cold_pull", "created_at",
                "bound_at", "image_ready_at", "initialized_at", "container_started_at", "ended_at",
                "scheduling_s", "image_pull_s", "init_containers_s", "container_start_s"):
        assert col in pods.columns, col
    tis = pd.read_csv(out / "task_instances.csv")
    assert len(pods) == len(tis) and set(pods["pod"]) == set(tis["worker"])
    total = pods[["scheduling_s", "image_pull_s", "init_containers_s", "container_start_s"]].sum(axis=1)
    assert np.allclose(total, pods["container_started_at"] - pods["created_at"], atol=1e-5)
    # cold pods pay the pull, warm ones do not
    assert (pods.loc[pods["cold_pull"], "image_pull_s"] > 10).all()
    assert (pods.loc[~pods["cold_pull"] & (pods["image_pull_s"] == 0)].shape[0]) > 0.8 * len(pods)
    nodes = pd.read_csv(out / "nodes.csv")
    assert list(nodes.columns) == ["time", "pool", "nodes"] and set(nodes["pool"]) == {"general"}
    assert nodes["nodes"].max() <= 8
    charts = {p.name for p in (out / "charts").iterdir()}
    assert {"pod_startup.png", "nodes.png"} <= charts
    import json
    s = json.loads((out / "summary.json").read_text())
    k = s["executors"]["KubernetesExecutor"]
    assert k["pods_created"] == len(pods) and k["cold_image_pulls"] == int(pods["cold_pull"].sum())


# =========================================================================== other behaviour
def test_default_pod_requests_apply_to_tasks_without_requests():
    tasks = {f"t{i}": {"duration": "1m"} for i in range(4)}
    data = k8s_scenario([dag("d", {"at": [0]}, tasks)], kubernetes={"worker_pods_creation_batch_size": 16,
                                                                    "default_cpu": 0.25, "default_memory": 256},
                        cluster={"autoscaler": "none", "node_pools": [
                            {"name": "p", "cores": 1, "memory": 1024, "max_nodes": 1, "initial_nodes": 1}]})
    r, _ = simulate(data)
    assert max_overlap(r.pods["bound_at"], r.pods["ended_at"]) == 4


def test_every_pod_row_is_complete():
    """Every pod that was created has an end (ended_at >= created_at), including pods deleted
    while pending (task_queued_timeout revokes them)."""
    tasks = {f"t{i}": {"duration": "15m", "cpu": 2} for i in range(4)}
    data = k8s_scenario([dag("d", {"at": [0]}, tasks)], profile="airflow-2.10",
                        kubernetes={"worker_pods_creation_batch_size": 16},
                        cluster={"autoscaler": "none", "node_pools": [
                            {"name": "p", "cores": 2, "memory": 8192, "max_nodes": 1, "initial_nodes": 1}]},
                        airflow={"task_queued_timeout": 300, "task_queued_timeout_check_interval": 30})
    r, _ = simulate(data)
    assert not r.stuck
    assert final_states(r).isin(TERMINAL).all()
    p = r.pods
    deleted = p[p["phase"] == "Deleted"]
    assert len(deleted) >= 3
    assert p["ended_at"].notna().all(), p[p["ended_at"].isna()][["pod", "phase", "created_at", "ended_at"]]
    assert (p["ended_at"] >= p["created_at"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 16))
def test_spot_and_capacity_many_seeds(seed):
    """The spot bookkeeping and the capacity rule over more seeds."""
    r, sim = simulate(spot_scenario(seed=seed, pull_mb_s=5))
    check_spot(r, sim, launch_retries=1)
    data = capacity_scenario("karpenter", "least_allocated", seed)
    r, sim = simulate(data)
    p = pods_with_requests(r, sim, data)
    cap = {pool["name"]: (pool["cores"], pool["memory"]) for pool in CAPACITY_POOLS}
    for node, g in p.groupby("node"):
        cores, memory = cap[g["pool"].iloc[0]]
        assert max_overlap_weighted(g["bind_at"], g["ended_at"], g["cpu"]) <= cores + EPS
        assert max_overlap_weighted(g["bind_at"], g["ended_at"], g["mem"]) <= memory + EPS


def test_explain_tells_a_kubernetes_run_in_pods():
    from pathlib import Path

    from sim import load_scenario, run
    from sim.explain import explain
    path = Path(__file__).resolve().parents[1] / "scenarios" / "seed-diamond.yaml"
    text = explain(run(load_scenario(path, executor="kubernetes", sets=["horizon=10m"])))
    assert "asks the API server for a pod" in text and "LocalExecutor" not in text
    assert "watcher reports the pod's end" in text
