"""Cost attribution per executor.

* Local pays its one host (the scheduler's) and the metadata DB for the whole window;
* Celery pays the scheduler host, the metadata DB, the broker, a Redis result backend if any, and
  each worker for its lifetime (fixed or autoscaled);
* Kubernetes pays the scheduler host, the metadata DB, the control-plane fee and each node for its
  lifetime as the autoscaler grew and shrank the cluster (spot nodes at the spot discount).

Machines are billed per second with a one-minute minimum. The *idle share* is paid but unused
capacity: 1 - (slot-seconds or requested core-seconds used) / (those paid for).
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=1)
def load_catalogue() -> dict:
    return yaml.safe_load(resources.files("sim.cost").joinpath("catalogue.yaml").read_text())


def billed_hours(seconds: float, cat: dict) -> float:
    b = cat["billing"]
    s = max(seconds, b["minimum_seconds"]) if seconds > 0 else 0.0
    g = b["granularity_seconds"]
    return math.ceil(s / g) * g / 3600.0


def price(instance_type: str, cat: dict, fallback: float | None = None) -> float:
    """The catalogue's price; a node pool's own ``price_per_hour`` for a type it does not list."""
    try:
        return cat["instance_types"][instance_type]["price_per_hour"]
    except KeyError:
        if fallback is not None:
            return fallback
        raise ValueError(f"instance type {instance_type!r} is not in the price catalogue "
                         f"({', '.join(cat['instance_types'])})") from None


def cost_of_run(sim, tis, runs, window: float) -> dict:
    """The ``cost`` block of summary.json for a finished simulation."""
    cat = load_catalogue()
    comp = cat["components"]
    items: dict = {}

    def machine(name: str, instance: str, seconds: float, discount: float = 0.0, fallback=None) -> float:
        c = billed_hours(seconds, cat) * price(instance, cat, fallback) * (1.0 - discount)
        items[name] = items.get(name, 0.0) + c
        return c

    for _ in range(sim.airflow.schedulers):
        machine("scheduler host", comp["scheduler"], window)
    if sim.airflow.standalone_dag_processor:
        machine("DAG processor host", comp["dag_processor"], window)
    machine("metadata DB", comp["metadata_db"], window)
    paid_capacity = used_capacity = 0.0
    kinds = set()
    for ex in sim.scheduler.all_executors:     # with several schedulers, each one's executor
        parts = [ex.celery, ex.kubernetes] if hasattr(ex, "celery") else [ex]
        for part in parts:
            kinds.add(part.name)
            if part.name == "LocalExecutor":
                paid_capacity += part.parallelism * window
            elif part.name == "CeleryExecutor":
                machine("broker", comp["broker"], window)
                if part.cfg.result_backend == "redis":
                    machine("result backend", comp["result_backend"], window)
                for pool_name, workers in part._all_workers.items():
                    pool = next(p for p in part.pools if p.name == pool_name)
                    instance = getattr(pool, "instance_type", None) or comp["celery_worker"]
                    for w in workers:
                        end = w.stopped_at if w.stopped_at is not None else window
                        life = max(0.0, end - w.started_at)
                        machine(f"workers ({pool_name})", instance, life)
                        paid_capacity += pool.concurrency * life
            elif part.name == "KubernetesExecutor":
                items["Kubernetes control plane"] = items.get("Kubernetes control plane", 0.0) + \
                    cat["kubernetes_control_plane_per_hour"] * window / 3600.0
                for node in part.cluster.all_nodes:
                    end = node.gone_at if node.gone_at is not None else window
                    life = max(0.0, end - node.created_at)
                    pool = node.pool
                    machine(f"nodes ({pool.name})", pool.instance_type, life,
                            cat["spot_discount"] if pool.spot else 0.0, pool.price_per_hour)
                    paid_capacity += pool.cores * life
    # used: slot-seconds of tries (Local, Celery) and requested core-seconds of pods (Kubernetes)
    from ..executors.kubernetes import POD_FIELD as F
    pod_rows = [row for ex in sim.executors.values() for k in ex.kubernetes_executors() for row in k._rows]
    busy = tis["released_at"].fillna(window) - tis["queued_at"]
    if pod_rows:
        busy = busy[~tis["worker"].isin({row[F["pod"]] for row in pod_rows})]
    used_capacity = float(busy.sum(skipna=True))
    for row in pod_rows:
        bound, ended = row[F["bound_at"]], row[F["ended_at"]]
        if bound is not None and ended is not None and bound == bound and ended == ended:
            used_capacity += (ended - bound) * row[F["cpu"]]
    total = sum(items.values())
    n_runs = max(len(runs), 1)
    n_tis = int(tis["started_at"].notna().sum())
    return {
        "total_usd": round(total, 4),
        "per_dag_run_usd": round(total / n_runs, 6),
        "per_1000_tasks_usd": round(1000.0 * total / n_tis, 4) if n_tis else None,
        "idle_share": round(1.0 - min(1.0, used_capacity / paid_capacity), 4) if paid_capacity > 0 else None,
        "window_hours": round(window / 3600.0, 4),
        "breakdown_usd": {k: round(v, 4) for k, v in sorted(items.items())},
        "prices": "sim/cost/catalogue.yaml (each price with its source and date)",
    }

