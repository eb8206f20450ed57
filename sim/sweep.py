"""``sim sweep``: the Cartesian product of settings × seeds, on local processes or a Dask cluster.

Each ``--grid KEY=V1,V2,...`` names a setting by its ``--set`` path (``airflow.parallelism``,
``executor.celery.worker_concurrency``, ...) or ``executor`` for the executor kind. Every point is
checked before any runs (a bad key or value is refused like a bad scenario). A point that fails
is reported in its row and the others still land. Results gather into one tidy table, plus charts
of each metric against each swept setting.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import ScenarioError
from .compare import METRICS, _one, mean_ci, run_points


def parse_grid(items) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise ScenarioError(None, [(f"--grid {item}", "expected KEY=V1,V2,... (for example "
                                                           "airflow.parallelism=4,8,16)")])
        if key in grid:
            raise ScenarioError(None, [(f"--grid {key}", "named twice")])
        grid[key] = vals
    if not grid:
        raise ScenarioError(None, [("--grid", "give at least one --grid KEY=V1,V2,...")])
    return grid


def points_of(path, grid: dict, seeds: int, sets=(), base_seed: int | None = None) -> list[dict]:
    """Every (settings, seed) point; each validated now, so a bad grid fails before any run."""
    from .scenario import load_scenario
    keys = list(grid)
    base = load_scenario(path, sets=sets)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, combo))
        executor = setting.get("executor")
        point_sets = tuple(sets) + tuple(f"{k}={v}" for k, v in setting.items() if k != "executor")
        try:
            load_scenario(path, sets=point_sets, executor=executor)
        except ScenarioError as e:
            where = ", ".join(f"{k}={v}" for k, v in setting.items())
            raise ScenarioError(e.file, [(f"--grid {where}: {p}" if p else f"--grid {where}", m)
                                         for p, m in e.problems]) from None
        for i in range(seeds):
            out.append({"setting": setting, "sets": point_sets,
                        "executor": executor or base.executor.kind,
                        "seed": (base.seed if base_seed is None else base_seed) + i})
    return out


def _safe(args) -> dict:
    try:
        return _one(args)
    except Exception as e:  # a failed point is reported, the sweep goes on
        path, executor, seed, sets = args
        return {"row": {"executor": executor, "seed": seed, "error": f"{type(e).__name__}: {e}"}, "delays": []}


@dataclass
class Sweep:
    grid: dict
    table: pd.DataFrame

    def write(self, out_dir, charts: bool = True) -> Path:
        from .results import atomic_folder
        with atomic_folder(out_dir) as tmp:
            self.table.to_csv(tmp / "sweep.csv", index=False, float_format="%.6f", lineterminator="\n")
            if charts:
                from .report.sweep_charts import write_sweep_charts
                write_sweep_charts(self, tmp / "charts")
        return Path(out_dir)


def sweep(path, grid: dict, seeds: int = 3, sets=(), jobs: int | None = None, dask: str | None = None,
          progress: bool = False, base_seed: int | None = None) -> Sweep:
    pts = points_of(path, grid, seeds, sets, base_seed)
    args = [(str(path), p["executor"], p["seed"], p["sets"]) for p in pts]
    if dask:
        from dask.distributed import Client
        client = Client(dask) if isinstance(dask, str) else dask
        try:
            results = client.gather(client.map(_safe, args, pure=False))
        finally:
            if isinstance(dask, str):
                client.close()
    else:
        results = run_points(_safe, args, jobs, progress, "sweep")
    rows = []
    for p, res in zip(pts, results):
        row = {k: v for k, v in p["setting"].items() if k != "executor"}
        row.update(res["row"])
        rows.append(row)
    table = pd.DataFrame(rows)
    if "error" not in table:
        table["error"] = ""
    table["error"] = table["error"].fillna("")
    # a stable column order whatever point came first: the grid, executor, seed, metrics, error
    first = [k for k in grid if k != "executor"] + ["executor", "seed"]
    metrics = [c for c in table.columns if c not in first and c != "error"]
    table = table[first + metrics + ["error"]]
    return Sweep(grid, table)


def summarise(sw: Sweep, key: str, metric: str) -> pd.DataFrame:
    """Mean and 95 % CI of ``metric`` per value of ``key`` (and per executor)."""
    t = sw.table[sw.table["error"] == ""]
    by = [key] if key != "executor" else []
    by += ["executor"]
    rows = []
    for vals, g in t.groupby(by, sort=False):
        m, h = mean_ci(g[metric].tolist())
        rows.append({**dict(zip(by, vals if isinstance(vals, tuple) else (vals,))), "mean": m, "ci95": h})
    return pd.DataFrame(rows)


__all__ = ["sweep", "parse_grid", "points_of", "summarise", "METRICS"]
