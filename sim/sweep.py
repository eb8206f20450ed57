"""``sim sweep``: the Cartesian product of settings × seeds, on local processes or a Dask cluster.

Each ``--grid KEY=V1,V2,...`` names a setting by its ``--set`` path (``airflow.parallelism``,
``executor.celery.worker_concurrency``, ...) or ``executor`` for the executor kind. Every point is
checked before any runs (a bad key or value is refused like a bad scenario). A point that fails
is reported in its row and the others still land. Results gather into one tidy table, plus charts
of each metric against each swept setting.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import analysis
from .compare import METRICS, _one, run_points
from .errors import ScenarioError, SimError
from .limits import FLAG, check_work
from .report.sweep_charts import write_sweep_charts
from .results import atomic_folder
from .scenario import load_scenario


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


def points_of(path, grid: dict, seeds: int, sets=(), limit: int | None = None,
              base_seed: int | None = None) -> list[dict]:
    """Every (settings, seed) point; each validated now, so a bad grid fails before any run.
    ``limit``: refuse a sweep expected to simulate more task-instance tries in all (sim.limits)."""
    keys = list(grid)
    base = load_scenario(path, sets=sets)
    combos = math.prod(len(v) for v in grid.values())
    if limit is not None and combos * seeds > limit:
        raise SimError(f"the sweep has {combos:,} settings x {seeds:,} seeds = {combos * seeds:,} "
                       f"simulations, more than the limit of {limit:,}; raise it with {FLAG} N")
    out, total = [], 0.0
    for combo in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, combo))
        executor = setting.get("executor")
        point_sets = tuple(sets) + tuple(f"{k}={v}" for k, v in setting.items() if k != "executor")
        try:
            point = load_scenario(path, sets=point_sets, executor=executor)
        except ScenarioError as e:
            where = ", ".join(f"{k}={v}" for k, v in setting.items())
            raise ScenarioError(e.file, [(f"--grid {where}: {p}" if p else f"--grid {where}", m)
                                         for p, m in e.problems]) from None
        if limit is not None:
            total += max(1.0, check_work(point, None)["tries"]) * seeds
            if not total <= limit:
                raise SimError(f"{path}: the sweep would simulate about {total:,.0f} task-instance "
                               f"tries in all (so far, at --grid {', '.join(f'{k}={v}' for k, v in setting.items())}"
                               f", x {seeds} seeds), more than the limit of {limit:,}; raise it with {FLAG} N")
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
        with atomic_folder(out_dir) as tmp:
            self.table.to_csv(tmp / "sweep.csv", index=False, float_format="%.6f", lineterminator="\n")
            if charts:
                write_sweep_charts(self, tmp / "charts")
        return Path(out_dir)


#: Seconds to wait for a Dask scheduler to answer before giving up (Dask's own default is 30 s).
DASK_TIMEOUT = 5.0


def _dask_client(address: str, timeout: float):
    """A client of the Dask scheduler at ``address``; a SimError if it cannot be reached in time."""
    if not timeout > 0:
        raise SimError(f"--dask-timeout must be > 0 seconds (got {timeout:g})")
    try:
        from dask.distributed import Client  # lazy: optional dependency (the [dask] extra), only for --dask
    except ImportError:
        raise SimError("--dask needs dask.distributed (pip install -e '.[dask]')") from None
    try:
        return Client(address, timeout=timeout)
    except Exception as e:   # noqa: BLE001 - only the user's address is involved here: a refused or
        # silent port, a bad scheme, or a server that is not Dask's (its reply read as a huge frame)
        raise SimError(f"--dask {address}: no Dask scheduler answered (waited at most {timeout:g} s; "
                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}); "
                       "check the address (tcp://HOST:8786) or raise --dask-timeout") from None


def sweep(path, grid: dict, seeds: int = 3, sets=(), jobs: int | None = None, dask: str | None = None,
          progress: bool = False, dask_timeout: float = DASK_TIMEOUT,
          max_task_instances: int | None = None, base_seed: int | None = None) -> Sweep:
    pts = points_of(path, grid, seeds, sets, max_task_instances, base_seed)
    args = [(str(path), p["executor"], p["seed"], p["sets"]) for p in pts]
    if dask:
        client = _dask_client(dask, dask_timeout) if isinstance(dask, str) else dask
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
    return analysis.summarise(sw.table, key, metric)


__all__ = ["sweep", "parse_grid", "points_of", "summarise", "METRICS"]
