"""``sim bench``: the standard speed benchmark.

Workload (issue #2): a diamond DAG ``T1 >> [T2, T3] >> T4`` due every 3 s, exponential task
durations of mean 10 s, parallelism 16, LocalExecutor, the default ``airflow-2.10`` profile.
It reports task instances simulated per wall-clock second and the process's peak memory, and
it runs in this one process, so the figure is for one core.
"""
from __future__ import annotations

import resource
import sys
import time

from .model.dag import DAG
from .model.durations import Exponential
from .model.schedules import Interval


def bench_scenario(task_instances: int, profile: str = "airflow-2.10", executor: str = "local"):
    from .scenario import ExecutorSpec, Scenario
    from .scenario.profiles import load_profile
    from .airflow.config import AirflowConfig, Overheads

    prof = load_profile(profile)
    airflow = AirflowConfig(**{**prof.get("airflow", {}), "parallelism": 16})
    overheads = Overheads(**prof.get("overheads", {}))
    dag = DAG("diamond", Interval(3.0))
    for name in ("T1", "T2", "T3", "T4"):
        dag.task(name, duration=Exponential(10.0))
    dag.set_dependencies("T1 >> [T2, T3] >> T4")
    runs = max(1, task_instances // 4)
    settings = {"celery": dict(prof.get("celery", {})), "kubernetes": dict(prof.get("kubernetes", {}))}
    return Scenario(name="bench", description="sim bench standard workload", seed=1,
                    horizon=3.0 * runs, profile=profile, airflow=airflow, overheads=overheads,
                    executor=ExecutorSpec(executor, settings), dags=[dag])


def peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run_bench(task_instances: int = 200_000, profile: str = "airflow-2.10",
              executor: str = "local", progress: bool = False) -> dict:
    from .simulation import Simulation

    scenario = bench_scenario(task_instances, profile, executor)
    t0 = time.perf_counter()
    result = Simulation(scenario, progress=progress).run()
    wall = time.perf_counter() - t0
    n = len(result.task_instances)
    return {
        "task_instances": n,
        "simulated_hours": round(result.summary["simulated_seconds"] / 3600.0, 2),
        "wall_seconds": round(wall, 2),
        "task_instances_per_second": round(n / wall),
        "peak_memory_mib": round(peak_rss_mib()),
        "profile": profile,
        "executor": executor,
    }
