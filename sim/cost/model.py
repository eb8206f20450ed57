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

import numpy as np
import pandas as pd
import yaml

from ..records import drop_lookup


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


def _isin(column, names: list) -> np.ndarray:
    """``column.isin(names)``. For a categorical column (the tries' workers), looked up through
    its categories' own index: a run of a million pods needs no set of a million names."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.isin(set(names)).to_numpy()
    cats = column.cat.categories
    pos = cats.get_indexer(names)
    drop_lookup(cats)                                # a hash table of every pod name, not needed again
    member = np.zeros(len(cats) + 1, dtype=bool)     # the last slot: code -1, no worker
    member[pos[pos >= 0]] = True
    return member[column.cat.codes.to_numpy()]


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
    for ex in sim.scheduler.all_executors:     # with several schedulers, each one's executor
        for part in ex.parts():
            for m in part.machines(window):
                if m.fee_per_hour is not None:
                    items[m.item] = items.get(m.item, 0.0) + cat[m.fee_per_hour] * m.seconds / 3600.0
                else:
                    machine(m.item, m.instance_type or comp[m.component], m.seconds,
                            cat["spot_discount"] if m.spot else 0.0, m.fallback_price)
            paid_capacity += part.paid_capacity(window)
    # used: slot-seconds of tries (Local, Celery) and requested core-seconds of pods (Kubernetes)
    pods, pod_core_seconds = [], 0.0
    for ex in sim.executors.values():
        for part in ex.parts():
            names, used = part.pod_usage()
            pods.extend(names)
            pod_core_seconds += used
    busy = tis["released_at"].fillna(window) - tis["queued_at"]
    if pods:
        busy = busy[~_isin(tis["worker"], pods)]
    used_capacity = float(busy.sum(skipna=True)) + pod_core_seconds
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

