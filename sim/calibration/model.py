"""Replaying recorded DAG runs in the simulator: one simulation per seed holds every DAG's runs,
one at a time and far apart (as the recorded runs were), each starting at a random phase of the
scheduler's idle loop; the same seed gives the same phases and durations whatever the profile
(common random numbers)."""
from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd

from ..airflow.config import AirflowConfig, CeleryConfig, Overheads
from ..errors import SimError
from ..model.dag import DAG, Task
from ..model.durations import Constant, Empirical
from ..model.rng import stream
from ..model.schedules import At
from ..scenario import ExecutorSpec, Scenario
from ..simulation import Simulation

_TASK_SKIP = {"task_id", "duration", "dag", "upstream", "downstream"}
#: Simulated seconds between two replayed runs, at least (idle loops are not simulated one by one).
MIN_GAP = 60.0


def clone_dag(template: DAG, bodies: dict, schedule) -> DAG:
    """``template`` with each task's duration resampling its body samples (``{task_id: [s]}``)."""
    tasks = []
    for tid, t in template.tasks.items():
        kw = {f.name: getattr(t, f.name) for f in fields(Task) if f.name not in _TASK_SKIP}
        samples = bodies.get(tid) or [0.0]
        kw["duration"] = Constant(samples[0]) if len(set(samples)) == 1 else Empirical(tuple(samples))
        tasks.append(Task(tid, **kw))
    dag = DAG(template.dag_id, schedule, max_active_runs=template.max_active_runs,
              max_active_tasks=template.max_active_tasks, parse_time=template.parse_time, tasks=tasks)
    for t in template.tasks.values():
        for d in t.downstream:
            dag.tasks[t.task_id].set_downstream(dag.tasks[d.task_id])
    return dag


def build_scenario(sections: dict, kind: str, dags: list, seed: int, horizon: float,
                   workers: int = 1, name: str = "calibration") -> Scenario:
    """A scenario from complete profile sections (``airflow``, ``overheads``, ``celery``)."""
    airflow = AirflowConfig(**sections.get("airflow", {}))
    overheads = Overheads(**sections.get("overheads", {}))
    settings: dict = {}
    if kind == "celery":
        settings["celery"] = dict(sections.get("celery", {}))
        queues = sorted({t.queue for d in dags for t in d.tasks.values()}) or ["default"]
        settings["worker_pools"] = [{"name": "worker", "replicas": int(workers), "queues": queues}]
    return Scenario(name=name, description="", seed=seed, horizon=horizon, profile="calibration",
                    airflow=airflow, overheads=overheads, executor=ExecutorSpec(kind, settings),
                    dags=dags)


def replay(sections: dict, kind: str, templates: dict, bodies: dict, runs: dict, gaps: dict, seed: int,
           workers: int = 1, concurrent: int = 1, offsets: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``runs[dag_id]`` runs of each DAG of ``templates`` with ``sections``; returns the
    task instances and DAG runs frames of the simulation. ``concurrent`` > 1: the runs were
    triggered in batches of one run of each DAG at once (the harness's ``concurrent_runs``), so
    they overlap as the recorded ones did; ``offsets`` (seconds after the batch's first trigger,
    per DAG) replays the recorded order within a batch (the harness triggers them one after the
    other, a CLI call apart)."""
    rng = stream(seed, "calibration/phases")
    sleep = float(sections.get("airflow", {}).get("scheduler_idle_sleep_time", 1.0))
    t = 10.0
    times: dict = {d: [] for d in templates}
    if concurrent > 1:
        gap = max(max(MIN_GAP, gaps.get(d, MIN_GAP)) for d in templates)
        for rep in range(max(runs[d] for d in templates)):
            at = t + rng.uniform(0.0, sleep + 0.1)
            for d in templates:
                if rep < runs[d]:
                    times[d].append(at + (offsets or {}).get(d, 0.0))
            t += gap
    else:
        for dag_id in templates:
            gap = max(MIN_GAP, gaps.get(dag_id, MIN_GAP))
            for _ in range(runs[dag_id]):
                times[dag_id].append(t + rng.uniform(0.0, sleep + 0.1))
                t += gap
    dags = [clone_dag(template, bodies.get(dag_id, {}), At(tuple(times[dag_id])))
            for dag_id, template in templates.items()]
    scenario = build_scenario(sections, kind, dags, seed, horizon=t, workers=workers)
    result = Simulation(scenario, record_transitions=False).run()
    return result.task_instances, result.dag_runs


def simulated_observations(tis: pd.DataFrame, drs: pd.DataFrame, roots: set | None = None) -> pd.DataFrame:
    """The simulation in the columns of :func:`sim.importers.observed_runs` that are compared.
    With ``roots`` (``{(dag_id, task_id)}``: the recorded runs had no dag-run export), a makespan
    is measured as the export measures it then, from the run's first queued task to its last end,
    and the roots have no ready time. As in the export, a task's try that succeeded stands for it,
    and a retried try has no ready time; a sensor rescheduled between pokes keeps the ready time of
    its first poke (the export has one row a try: its last poke's times, ready when its upstream
    ended)."""
    if tis["state"].eq("up_for_reschedule").any():
        first = tis.groupby(["dag_id", "run_id", "task_id", "map_index", "try_number"], observed=True,
                            sort=False)["ready_at"].transform("first")
        tis = tis.assign(ready_at=first)
    tis = tis[tis["state"] == "success"]
    if roots is None:
        runs = drs.assign(makespan=drs["ended_at"] - drs["started_at"])[["dag_id", "run_id", "makespan"]]
    else:
        g = tis.groupby(["dag_id", "run_id"], observed=True)
        runs = (g["ended_at"].max() - g["queued_at"].min()).rename("makespan").reset_index()
    out = pd.DataFrame({"dag_id": tis["dag_id"].astype(str).to_numpy(),
                        "run_id": tis["run_id"].astype(str).to_numpy(),
                        "task_id": tis["task_id"].astype(str).to_numpy(),
                        "ready_to_queued": (tis["queued_at"] - tis["ready_at"]).to_numpy(),
                        "queued_to_started": (tis["started_at"] - tis["queued_at"]).to_numpy(),
                        # Celery's hand-off: launched is when the worker's child starts the task
                        "queued_to_executing": (tis["launched_at"] - tis["queued_at"]).to_numpy(),
                        "duration": (tis["ended_at"] - tis["started_at"]).to_numpy()})
    out.loc[tis["try_number"].to_numpy() > 1, "ready_to_queued"] = np.nan
    if roots:
        is_root = [(d, t) in roots for d, t in zip(out["dag_id"], out["task_id"])]
        out.loc[is_root, "ready_to_queued"] = np.nan
    runs = runs.assign(dag_id=runs["dag_id"].astype(str), run_id=runs["run_id"].astype(str))
    return out.merge(runs, on=["dag_id", "run_id"], how="left")


def stage_means(sim_obs: pd.DataFrame, stages) -> dict:
    """``{(dag_id, stage): (mean, p50)}`` of a simulation."""
    out = {}
    for dag_id, g in sim_obs.groupby("dag_id", sort=False):
        for stage in stages:
            x = (g.drop_duplicates("run_id")[stage] if stage == "makespan" else g[stage]).dropna().to_numpy(float)
            if len(x):
                out[(dag_id, stage)] = (float(x.mean()), float(np.median(x)))
    return out


def complete_sections(prof: dict, known: dict, fitted: dict) -> dict:
    """The profile's sections with the known settings and fitted values on top (every key of
    the config dataclasses filled in)."""
    out = {s: dict(prof.get(s, {})) for s in ("airflow", "overheads", "celery")}
    for key, value in {**known, **fitted}.items():
        section, name = key.split(".", 1)
        out[section][name] = value
    for section, cls in (("airflow", AirflowConfig), ("overheads", Overheads), ("celery", CeleryConfig)):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(out[section]) - names)
        if unknown:
            raise SimError(f"unknown {section} setting(s): {', '.join(unknown)}")
    return out


def gap_for(makespans: list[float], bodies: dict) -> float:
    """Room between two replayed runs of a DAG: 4x its longest recorded makespan, or 4x the sum
    of its bodies plus 2 s per task when nothing was recorded."""
    if makespans:
        return 4.0 * max(makespans)
    total = sum(max(v) for v in bodies.values()) if bodies else 0.0
    return 4.0 * (total + 2.0 * len(bodies)) if math.isfinite(total) else MIN_GAP
