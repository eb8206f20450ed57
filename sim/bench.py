"""``sim bench``: the standard speed benchmark.

Workload (issue #2): a diamond DAG ``T1 >> [T2, T3] >> T4`` due every 3 s, exponential task
durations of mean 10 s, parallelism 16, LocalExecutor, the default ``airflow-2.10`` profile.
It reports task instances simulated per wall-clock second and the process's peak memory, and
it runs in this one process, so the figure is for one core.

``--scaling`` (issue #13) times bursts of 1k/4k/16k diamond runs due at once and one-DAG
fan-outs of 2k/8k/32k tasks, to show that the wall cost per task instance does not grow with the
backlog or the DAG's width. ``--reference`` times the full model against the minimal SimPy
simulation of the same workload (:mod:`sim.bench_reference`), each in a fresh process,
alternating, and reports the median ratio: absolute speeds drift with the machine's load.

``--end-to-end`` (issue #13) times what ``sim run`` adds to the simulation: the same run's results
folder (the CSVs, ``summary.json``, the charts and ``report.html``) written after it, as a share of
the simulation's own time (target: at most 25 % at 200,000 task instances), and the peak memory of
the whole, each executor in a fresh process.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .airflow.config import AirflowConfig, Overheads
from .model.dag import DAG
from .model.durations import Exponential
from .model.schedules import At, Burst, Interval
from .scenario import ExecutorSpec, Scenario
from .scenario.profiles import load_profile
from .simulation import Simulation


def bench_scenario(task_instances: int, profile: str = "airflow-2.10", executor: str = "local"):
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


def run_end_to_end(task_instances: int = 200_000, profile: str = "airflow-2.10",
                   executor: str = "local", progress: bool = False) -> dict:
    """The standard workload as ``sim run`` does it: the simulation, then its results folder
    (into a temporary folder, removed after), each timed; the peak memory is the process's. Not
    counted: the interpreter's start and imports (about 1 s, whatever the run's size)."""

    scenario = bench_scenario(task_instances, profile, executor)
    t0 = time.perf_counter()
    result = Simulation(scenario, progress=progress).run()
    simulated = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        out = Path(tmp) / "results"
        t1 = time.perf_counter()
        result.write(out, charts=True)
        written = time.perf_counter() - t1
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "executor": executor,
        "profile": profile,
        "task_instances": len(result.task_instances),
        "simulation_seconds": round(simulated, 2),
        "results_seconds": round(written, 2),
        "end_to_end_seconds": round(simulated + written, 2),
        "overhead_percent": round(100.0 * written / simulated, 1),
        "results_mib": round(size / (1024.0 * 1024.0), 1),
        "peak_memory_mib": round(peak_rss_mib()),
    }


def run_end_to_end_fresh(task_instances: int = 200_000, profile: str = "airflow-2.10",
                         executor: str = "local") -> dict:
    """:func:`run_end_to_end` in a fresh process: its peak memory is this run's alone."""
    return _json_of([sys.executable, "-c", "import json; from sim.bench import run_end_to_end; "
                     f"print(json.dumps(run_end_to_end({task_instances}, {profile!r}, {executor!r})))"])


#: The scaling cases: (workload, size). A burst is that many diamond runs due at once; a fan-out
#: is one DAG ``start >> [size tasks]``. LocalExecutor-style limits: parallelism 64.
SCALING_CASES = (("burst", 1000), ("burst", 4000), ("burst", 16000),
                 ("fan-out", 2000), ("fan-out", 8000), ("fan-out", 32000))


def scaling_scenario(workload: str, size: int, executor: str = "local", profile: str = "airflow-2.10"):
    if workload == "burst":
        dag = DAG("diamond", Burst(runs=size), max_active_runs=size)
        for name in ("T1", "T2", "T3", "T4"):
            dag.task(name, duration=Exponential(10.0))
        dag.set_dependencies("T1 >> [T2, T3] >> T4")
    else:
        dag = DAG("fan", At((0.0,)), max_active_tasks=64)
        start = dag.task("start", duration=Exponential(10.0))
        start >> [dag.task(f"p{i}", duration=Exponential(10.0)) for i in range(size)]
    return Scenario.build([dag], profile=profile, executor=executor, horizon=1.0, seed=1,
                          airflow={"parallelism": 64})


def run_scaling(executor: str = "local", profile: str = "airflow-2.10", cases=SCALING_CASES,
                progress=None) -> list[dict]:
    """Wall time of each case's simulation (not the scenario's construction or the results)."""

    rows = []
    for workload, size in cases:
        scenario = scaling_scenario(workload, size, executor, profile)
        t0 = time.perf_counter()
        result = Simulation(scenario).run()
        wall = time.perf_counter() - t0
        n = len(result.task_instances)
        rows.append({"executor": executor, "workload": workload, "size": size, "task_instances": n,
                     "wall_seconds": round(wall, 2), "task_instances_per_second": round(n / wall),
                     "microseconds_per_task_instance": round(1e6 * wall / n, 1)})
        if progress is not None:
            progress(rows[-1])
    return rows


def scaling_growth(rows: list[dict]) -> dict:
    """Per workload: cost per task instance of the largest case over that of the smallest."""
    out = {}
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = sorted((r for r in rows if r["workload"] == workload), key=lambda r: r["size"])
        out[workload] = round(mine[-1]["microseconds_per_task_instance"] /
                              mine[0]["microseconds_per_task_instance"], 2)
    return out


def _json_of(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_reference(task_instances: int = 200_000, pairs: int = 3, profile: str = "airflow-2.10",
                  executor: str = "local", progress=None) -> dict:
    """``pairs`` alternating runs of the full model and the minimal reference, each in a fresh
    process; the ratio of their speeds per pair, and the median."""
    model = [sys.executable, "-c",
             "import json, sys; from sim.bench import run_bench; "
             f"print(json.dumps(run_bench({task_instances}, {profile!r}, {executor!r})))"]
    reference = [sys.executable, "-m", "sim.bench_reference", "--task-instances", str(task_instances)]
    rows = []
    for i in range(pairs):
        m = _json_of(model)
        r = _json_of(reference)
        rows.append({"pair": i + 1, "model_ti_per_s": m["task_instances_per_second"],
                     "reference_ti_per_s": r["task_instances_per_second"],
                     "ratio": round(m["task_instances_per_second"] / r["task_instances_per_second"], 3),
                     "model_peak_mib": m["peak_memory_mib"], "reference_peak_mib": r["peak_memory_mib"]})
        if progress is not None:
            progress(rows[-1])
    return {"executor": executor, "profile": profile, "task_instances": task_instances, "pairs": rows,
            "median_ratio": round(statistics.median(r["ratio"] for r in rows), 3)}
