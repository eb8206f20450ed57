"""``sim compare``: the same workload on several executors, over several seeds.

For seed i every executor gets the same seed, so the same arrivals and task durations (common
random numbers): differences come from the executors. Each figure is reported as a mean with a
95 % Student-t confidence interval over the seeds. Runs go to local processes in parallel.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .analysis import mean_ci, pareto_front  # noqa: F401  (pareto_front: sim.compare's API)
from .report.compare_charts import write_compare_charts
from .report.html import write_compare_report
from .results import atomic_folder
from .scenario import load_scenario
from .simulation import Simulation

METRICS = {
    "throughput_per_hour": "task instances succeeded per hour",
    "makespan_mean_s": "DAG-run makespan, mean (s)",
    "makespan_p95_s": "DAG-run makespan, p95 (s)",
    "delay_p50_s": "ready -> started, p50 (s)",
    "delay_p95_s": "ready -> started, p95 (s)",
    "delay_p99_s": "ready -> started, p99 (s)",
    "ready_to_scheduled_s": "ready -> scheduled, mean (s)",
    "scheduled_to_queued_s": "scheduled -> queued, mean (s)",
    "queued_to_launched_s": "queued -> launched, mean (s)",
    "launched_to_started_s": "launched -> started, mean (s)",
    "slot_utilisation": "executor slots busy (share)",
    "cost_usd": "total cost (USD)",
    "cost_per_1000_tasks_usd": "cost per 1,000 tasks (USD)",
    "idle_share": "paid but unused capacity (share)",
}


def _one(args) -> dict:
    """Run one (executor, seed) point; return its figures and its delays (for the CDF)."""
    path, executor, seed, sets = args
    scenario = load_scenario(path, sets=sets, executor=executor, seed=seed)
    r = Simulation(scenario, record_transitions=False).run()
    s = r.summary
    d = s["scheduling_delay_seconds"]
    tis = r.task_instances
    delays = (tis["started_at"] - tis["ready_at"]).dropna().to_numpy()
    row = {
        "executor": executor, "seed": seed,
        "throughput_per_hour": s["throughput_per_hour"]["task_instances_succeeded"],
        "makespan_mean_s": s["dag_runs"]["makespan_seconds"]["mean"],
        "makespan_p95_s": s["dag_runs"]["makespan_seconds"]["p95"],
        "delay_p50_s": d["ready_to_started"]["p50"], "delay_p95_s": d["ready_to_started"]["p95"],
        "delay_p99_s": d["ready_to_started"]["p99"],
        "ready_to_scheduled_s": d["ready_to_scheduled"]["mean"],
        "scheduled_to_queued_s": d["scheduled_to_queued"]["mean"],
        "queued_to_launched_s": d["queued_to_launched"]["mean"],
        "launched_to_started_s": d["launched_to_started"]["mean"],
        "slot_utilisation": s["utilisation"]["executor_slots"],
        "cost_usd": s["cost"]["total_usd"], "cost_per_1000_tasks_usd": s["cost"]["per_1000_tasks_usd"],
        "idle_share": s["cost"]["idle_share"], "stuck": s["stuck"]["count"],
        "deployment": " | ".join(s["deployment"]),
        "profile": s["profile"], "horizon_s": s["horizon_seconds"], "simulated_s": s["simulated_seconds"],
    }
    return {"row": row, "delays": delays[:200_000]}


@dataclass
class Comparison:
    runs: pd.DataFrame          # one row per (executor, seed)
    table: pd.DataFrame         # per executor and metric: mean, ci95 half-width, n
    delays: dict                # executor -> pooled ready->started delays

    def write(self, out_dir, charts: bool = True, title: str | None = None) -> Path:
        with atomic_folder(out_dir) as tmp:
            self.runs.to_csv(tmp / "runs.csv", index=False, float_format="%.6f", lineterminator="\n")
            self.table.to_csv(tmp / "comparison.csv", index=False, float_format="%.6f", lineterminator="\n")
            if charts:
                write_compare_charts(self, tmp / "charts")
                write_compare_report(self, tmp, title or Path(out_dir).parent.name)
        return Path(out_dir)


def run_points(fn, args: list, jobs: int | None = None, progress: bool = False, desc: str = "runs") -> list:
    """``fn`` over ``args`` on ``jobs`` local processes (default: all cores), in order, with a
    progress bar."""
    jobs = jobs or min(len(args), os.cpu_count() or 1)
    bar = None
    if progress:
        bar = tqdm(total=len(args), desc=desc, unit="run", disable=None)
    results = []
    try:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for res in pool.map(fn, args):
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
        else:
            for a in args:
                results.append(fn(a))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def compare(path, executors, seeds: int = 5, sets=(), jobs: int | None = None, progress: bool = False,
            base_seed: int | None = None) -> Comparison:
    loaded = [load_scenario(path, sets=sets, executor=ex) for ex in executors]   # refuse bad input first
    first = base_seed if base_seed is not None else loaded[0].seed
    points = [(str(path), ex, first + i, tuple(sets)) for i in range(seeds) for ex in executors]
    results = run_points(_one, points, jobs, progress, "compare")
    runs = pd.DataFrame([r["row"] for r in results])
    rows = []
    for ex in executors:
        sub = runs[runs["executor"] == ex]
        for metric, label in METRICS.items():
            m, h = mean_ci(sub[metric].tolist())
            rows.append({"executor": ex, "metric": metric, "description": label, "mean": m, "ci95": h,
                         "n": int(sub[metric].notna().sum())})
    delays = {ex: np.concatenate([r["delays"] for r in results if r["row"]["executor"] == ex] or [np.zeros(0)])
              for ex in executors}
    return Comparison(runs, pd.DataFrame(rows), delays)
