"""Summaries of many runs, shared by the commands (compare, sweep, calibration) and the reports:
a mean with its confidence interval, the Pareto front of delay against cost, a sweep's table
summarised per setting. Plain functions of numbers and DataFrames; nothing here runs a model."""
from __future__ import annotations

import pandas as pd

from .theory import mean_ci as _t_mean_ci


def mean_ci(values) -> tuple[float, float]:
    """:func:`sim.theory.mean_ci` (95 %, Student t) over the values a run produced: missing ones
    are left out; with one value the interval is unknown (NaN), with none the mean too."""
    v = [float(x) for x in values if x is not None and x == x]
    if len(v) < 2:
        return (v[0] if v else float("nan")), float("nan")
    return tuple(float(x) for x in _t_mean_ci(v, 0.95))


def pareto_front(points) -> list:
    """The points ``(x, y, ...)`` that no other point beats on both x and y (lower is better for
    both: delay and cost), sorted by x. Points with the same x and y do not beat each other."""
    pts = sorted(points)
    return [p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q[:2] != p[:2] for q in pts)]


def summarise(sweep_table: pd.DataFrame, key: str, metric: str) -> pd.DataFrame:
    """Mean and 95 % CI of ``metric`` per value of ``key`` (and per executor), over the points
    of a sweep's table that ran without error."""
    t = sweep_table[sweep_table["error"] == ""]
    by = [key] if key != "executor" else []
    by += ["executor"]
    rows = []
    for vals, g in t.groupby(by, sort=False):
        m, h = mean_ci(g[metric].tolist())
        rows.append({**dict(zip(by, vals if isinstance(vals, tuple) else (vals,))), "mean": m, "ci95": h})
    return pd.DataFrame(rows)


__all__ = ["mean_ci", "pareto_front", "summarise"]
