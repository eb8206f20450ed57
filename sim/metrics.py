"""The numbers a run is judged by: ``summary.json``.

Scheduling delay is split where the time goes, stage by stage along a try's path:
``ready_at`` (dependencies met) -> ``scheduled_at`` (the scheduler noticed) -> ``queued_at`` (the
critical section let it through) -> ``launched_at`` (the executor handed it to a process or pod)
-> ``started_at`` (the task's code begins, Airflow's start_date).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .cost import cost_of_run
from .deployment import describe

STAGES = (
    ("ready_to_scheduled", "ready_at", "scheduled_at"),
    ("scheduled_to_queued", "scheduled_at", "queued_at"),
    ("queued_to_launched", "queued_at", "launched_at"),
    ("launched_to_started", "launched_at", "started_at"),
)


def _r(x) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), 6)


def _dist(values, percentiles=(50, 95, 99)) -> dict:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    out = {"count": int(v.size), "mean": _r(v.mean()) if v.size else None}
    for p in percentiles:
        out[f"p{p}"] = _r(np.percentile(v, p)) if v.size else None
    return out


def _counts(series) -> dict:
    return {str(k): int(v) for k, v in sorted((str(k), v) for k, v in series.value_counts().items()) if v}


def summarize(sim, tis: pd.DataFrame, runs: pd.DataFrame, stuck: list) -> dict:
    end = float(sim.env.now)
    hours = end / 3600.0 if end > 0 else math.nan
    par = sim.total_parallelism
    # tries that ran, and each task instance's last try: masks, not copies of the table
    ran = tis["started_at"].notna().to_numpy()
    final_state = tis["state"][~tis.duplicated(["dag_id", "run_id", "task_id", "map_index"], keep="last").to_numpy()]
    success = int((final_state == "success").sum())

    def ran_gap(a: str, b: str) -> np.ndarray:
        return tis[b].to_numpy()[ran] - tis[a].to_numpy()[ran]
    delay = ran_gap("ready_at", "started_at")
    stages = {name: _dist(ran_gap(a, b)) for name, a, b in STAGES}
    makespan = runs["ended_at"] - runs["started_at"]
    from_due = runs["ended_at"] - runs["due_at"]
    # A try whose slot was never released (a zombie's key the executor still counts) holds it to
    # the end; tries never queued hold none.
    slot_busy = float(np.nansum(tis["released_at"].fillna(end) - tis["queued_at"]))
    run_busy = float(np.nansum(tis["ended_at"] - tis["started_at"]))
    host = sim.scheduler_host
    sched = sim.scheduler
    db = sim.db
    summary = {
        "scenario": sim.scenario.name,
        "executor": sim.scenario.executor.kind,
        "seed": sim.seed,
        "profile": sim.scenario.profile,
        "deployment": describe(sim.scenario),
        "simulated_seconds": _r(end),
        "horizon_seconds": _r(sim.horizon),
        "dag_runs": {
            "count": int(len(runs)),
            "by_state": _counts(runs["state"]),
            "makespan_seconds": _dist(makespan, (50, 95)),
            "due_to_end_seconds": _dist(from_due, (50, 95)),
        },
        "task_instances": {
            "count": int(len(final_state)),
            "tries": int(len(tis)),
            "by_state": _counts(final_state),
            "tries_by_state": _counts(tis["state"]),
        },
        "throughput_per_hour": {
            "task_instances_succeeded": _r(success / hours) if hours == hours else None,
            "dag_runs_finished": _r(len(runs) / hours) if hours == hours else None,
        },
        "scheduling_delay_seconds": {"ready_to_started": _dist(delay), **stages},
        "utilisation": {
            "executor_slots": _r(slot_busy / (par * end)) if end > 0 else None,
            "running_slots": _r(run_busy / (par * end)) if end > 0 else None,
            "scheduler_host_cpu": _r(host.busy_core_seconds / (host.cores * end))
            if host.cores and end > 0 else None,
        },
        "scheduler": {
            "loops": sched.loops,
            "busy_loops": sched.busy_loops,
            "idle_loops_skipped": sched.skipped_loops,
            "cpu_seconds": _r(sched.cpu_seconds),
            "db_seconds": _r(sched.db_seconds),
            **({"processes": [{"name": p.name, "loops": p.loops, "cpu_seconds": _r(p.cpu_seconds),
                               "critical_section_busy": p.critical_section_busy} for p in sched.procs]}
               if len(sched.procs) > 1 else {}),
        },
        "executors": {name: ex.stats() for name, ex in sim.executors.items() if ex.stats()},
        "cost": cost_of_run(sim, tis, runs, end),
        **({"triggerer": sim.triggerer.stats()} if sim.triggerer.deferred else {}),
        "dag_processor": {"standalone": sim.airflow.standalone_dag_processor,
                          "processors": len(sim.dag_processors),
                          "files": sim.dag_processors[0].files,
                          "parse_cycles": sum(p.cycles for p in sim.dag_processors),
                          "cpu_seconds": _r(sum(p.cpu_seconds for p in sim.dag_processors))},
        "metadata_db": {
            "queries": db.queries,
            "busy_seconds": _r(db.busy_seconds),
            "wait_seconds": _r(db.wait_seconds),
            "utilisation": _r(db.busy_seconds / (db.connections * end)) if end > 0 else None,
        },
        "stuck": {
            "count": len(stuck),
            "task_instances": [
                {"dag_id": ti.run.plan.dag_id, "run_id": ti.run.run_id, "task_id": ti.task.task_id,
                 "state": ti.state.value, "why": why} if ti is not None else {"why": why}
                for ti, why in stuck[:50]
            ],
        },
    }
    return summary
