"""Charts of one run, each readable at a glance: a title that says what it shows, units on the
axes, a legend. Every function takes the run's DataFrames and returns the matplotlib Figure it
drew on; give ``ax=`` to draw into an Axes of your own figure instead.

Figures are made with ``matplotlib.figure.Figure``, not pyplot: importing this module leaves the
user's matplotlib backend and pyplot's figure list alone, and writing files needs no display.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..metrics import STAGES

STAGE_LABELS = {
    "ready_to_scheduled": "ready → scheduled (waiting for a scheduler loop)",
    "scheduled_to_queued": "scheduled → queued (critical section, limits)",
    "queued_to_launched": "queued → launched (executor heartbeat)",
    "launched_to_started": "launched → started (process or pod start-up, DAG parsing)",
}
COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def _fig_ax(ax, figsize):
    """(figure, axes, whether the figure is ours): a new figure of ``figsize``, or ``ax``'s."""
    if ax is not None:
        return ax.figure, ax, False
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(), True


def _done(fig, own: bool):
    if own:
        fig.tight_layout()
    return fig


def delay_breakdown(tis, title: str = "Where scheduling delay goes", ax=None):
    """Mean and p95 of each stage between 'dependencies met' and 'task code starts'."""
    ran = tis[tis["started_at"].notna()]
    stats = [(name, (ran[b] - ran[a]).mean(), (ran[b] - ran[a]).quantile(0.95)) for name, a, b in STAGES]
    fig, ax, own = _fig_ax(ax, (9, 3.6))
    left = 0.0
    for (name, mean, _), color in zip(stats, COLORS):
        ax.barh([0], [mean], left=left, color=color, label=f"{STAGE_LABELS[name]}: mean {mean:.3f} s")
        left += mean
    total = (ran["started_at"] - ran["ready_at"])
    ax.set_yticks([0], ["mean per try"])
    ax.set_xlabel("seconds")
    ax.set_title(f"{title}\nready → started: mean {total.mean():.3f} s, p95 {total.quantile(0.95):.3f} s, "
                 f"p99 {total.quantile(0.99):.3f} s over {len(ran)} tries")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=1, fontsize=8, frameon=False)
    return _done(fig, own)


def busy_slots(tis, parallelism: int, title: str = "Executor slots over time", ax=None):
    """Slots occupied (queued → released, as Airflow counts them) and tasks running, over time."""
    fig, ax, own = _fig_ax(ax, (9, 3.6))
    for (start, end), label, color in ((("queued_at", "released_at"), "slots occupied (queued + running)", COLORS[0]),
                                       (("started_at", "ended_at"), "task code running", COLORS[2]),
                                       (("scheduled_at", "queued_at"), "scheduled, waiting for a slot", COLORS[1])):
        t, n = _thin(*_step(tis[start].to_numpy(), tis[end].to_numpy()))
        ax.step(t / 60.0, n, where="post", label=label, color=color, lw=1)
    ax.axhline(parallelism, color="grey", ls="--", lw=1, label=f"parallelism = {parallelism}")
    ax.set_xlabel("simulated time (minutes)")
    ax.set_ylabel("task instances")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return _done(fig, own)


def _step(starts, ends):
    ok = ~(np.isnan(starts) | np.isnan(ends))
    ok[ok] = ends[ok] > starts[ok]          # zero-length stays would only draw spikes
    times = np.concatenate([starts[ok], ends[ok]])
    deltas = np.concatenate([np.ones(ok.sum()), -np.ones(ok.sum())])
    order = np.lexsort((deltas, times))
    return np.concatenate([[0.0], times[order]]), np.concatenate([[0], np.cumsum(deltas[order])])


#: Columns of a step line that :func:`_thin` keeps at most four points in: more than one per pixel
#: of the charts' plotting area (about 850 pixels wide at 9 inches and 110 dpi), so every pixel
#: column still spans its columns' lowest and highest counts. (4,000 drew the same extents, 2.5 % of
#: the pixels a shade apart, in 0.64 s where 1,000 take 0.17 s at 200,000 task instances.)
THIN_COLUMNS = 1000


def _thin(times, counts, columns: int = THIN_COLUMNS):
    """A step line of many points reduced to what can be drawn: the time axis is cut into
    ``columns`` equal columns and each keeps, in time order, its first and last points and one
    point at its lowest and at its highest count. The line passes through the same counts in every
    column and leaves it at the same count, so it looks the same; a line of fewer than
    ``4 * columns`` points is returned as it is. A 200,000-task run has 400,000 points a line:
    matplotlib drew them in a second and held 190 MB for them (a million tasks: 3 s, 700 MB)."""
    if len(times) <= 4 * columns:
        return times, counts
    span = times[-1] - times[0]
    col = np.minimum(((times - times[0]) * (columns / span)).astype(np.int64), columns - 1) if span > 0 \
        else np.zeros(len(times), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])     # times are sorted: columns run
    ends = np.r_[starts[1:], len(times)] - 1
    lengths = ends - starts + 1
    keep = [starts, ends]
    for reduce in (np.minimum, np.maximum):
        extreme = np.repeat(reduce.reduceat(counts, starts), lengths)
        hits = np.flatnonzero(counts == extreme)
        keep.append(hits[np.r_[True, col[hits[1:]] != col[hits[:-1]]]])   # the first in its column
    kept = np.unique(np.concatenate(keep))
    return times[kept], counts[kept]


def gantt(tis, run_id: str | None = None, title: str | None = None, ax=None):
    """One DAG run: a row per worker, each try waiting (light) then running (solid)."""
    if run_id is None:
        run_id = tis["run_id"].iloc[0]
    rows = tis[(tis["run_id"] == run_id) & tis["started_at"].notna()].sort_values("ready_at")
    workers = sorted(rows["worker"].astype(str).unique())
    y = {w: i for i, w in enumerate(workers)}
    origin = rows["ready_at"].min()
    tasks = list(dict.fromkeys(rows["task_id"].astype(str)))
    color = {t: COLORS[i % len(COLORS)] for i, t in enumerate(tasks)}
    fig, ax, own = _fig_ax(ax, (9, 1.2 + 0.45 * max(len(workers), 2)))
    for r in rows.itertuples():
        row = y[str(r.worker)]
        ax.barh(row, r.started_at - r.ready_at, left=r.ready_at - origin, color=color[str(r.task_id)], alpha=0.25)
        ax.barh(row, r.ended_at - r.started_at, left=r.started_at - origin, color=color[str(r.task_id)])
        ax.text(r.started_at - origin, row, f" {r.task_id}", va="center", fontsize=8)
    ax.set_yticks(range(len(workers)), workers)
    ax.set_xlabel("seconds since the run's first task was ready (light: waiting, solid: running)")
    ax.set_title(title or f"Gantt of DAG run {run_id}")
    return _done(fig, own)


def count_over_time(frame, column: str, title: str, ylabel: str, label: str, ax=None):
    """A step line per pool of a count over time (Celery workers, Kubernetes nodes)."""
    fig, ax, own = _fig_ax(ax, (9, 3.2))
    for i, (pool, g) in enumerate(frame.groupby("pool", sort=True)):
        t = np.append(g["time"].to_numpy(), g["time"].max())
        # a small offset keeps pools with equal counts visible
        ax.step(t / 60.0, np.append(g[column].to_numpy(), g[column].iloc[-1]) + 0.04 * i, where="post",
                label=f"{label} {pool}", color=COLORS[i % len(COLORS)], lw=1.5, ls=("-", "--", ":")[i % 3])
    ax.set_xlabel("simulated time (minutes)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, frame[column].max() + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _done(fig, own)


def workers_over_time(workers, title: str = "Workers over time", ax=None):
    """Celery workers alive (starting or online) per pool, as the autoscaler and crashes change them."""
    return count_over_time(workers, "workers", title, "workers (starting or online)", "pool", ax=ax)


def pod_startup(pods, title: str = "Where pod start-up time goes", ax=None):
    """Mean time per pod start-up stage, for pods on a node that had the image and on a cold one."""
    stages = [("scheduling_s", "waiting for a node (bind)"), ("image_pull_s", "image pull"),
              ("init_containers_s", "init containers (git-sync)"), ("container_start_s", "container start")]
    fig, ax, own = _fig_ax(ax, (9, 3.4))
    groups = [("cold node (pulled the image)", pods[pods["cold_pull"].astype(bool)]),
              ("warm node (image cached)", pods[~pods["cold_pull"].astype(bool)])]
    for y, (label, g) in enumerate(groups):
        left = 0.0
        for (col, name), color in zip(stages, COLORS):
            m = float(g[col].mean()) if len(g) else 0.0
            m = 0.0 if m != m else m
            ax.barh([y], [m], left=left, color=color, label=name if y == 0 else None)
            left += m
        ax.text(left, y, f"  {left:.1f} s ({len(g)} pods)", va="center", fontsize=8)
    ax.set_yticks(range(len(groups)), [g[0] for g in groups])
    ax.set_xlim(0, ax.get_xlim()[1] * 1.25)
    ax.set_xlabel("seconds from pod creation to container start (mean); then Airflow boots and the task runs")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, frameon=False)
    return _done(fig, own)


def nodes_over_time(nodes, title: str = "Nodes over time", ax=None):
    """Kubernetes nodes (provisioning or ready) per node pool, as the autoscaler and spot change them."""
    return count_over_time(nodes, "nodes", title, "nodes (provisioning or ready)", "node pool", ax=ax)


def write_charts(result, out_dir) -> list[Path]:
    """The run's charts as PNG files in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tis = result.task_instances
    written = []
    if not len(tis) or tis["started_at"].notna().sum() == 0:
        return written
    name = result.summary["scenario"]
    charts = {
        "delay_breakdown.png": delay_breakdown(tis, f"{name}: where scheduling delay goes ({result.executor})"),
        "busy_slots.png": busy_slots(tis, result.summary.get("parallelism") or result.scenario.airflow.parallelism,
                                     f"{name}: executor slots over time ({result.executor})"),
        "gantt_first_run.png": gantt(tis, title=f"{name}: Gantt of the first DAG run ({result.executor})"),
    }
    if len(getattr(result, "pods", [])):
        charts["pod_startup.png"] = pod_startup(result.pods, f"{name}: where pod start-up time goes")
    if len(getattr(result, "nodes", [])):
        charts["nodes.png"] = nodes_over_time(result.nodes, f"{name}: Kubernetes nodes over time")
    if len(getattr(result, "workers", [])):
        charts["workers.png"] = workers_over_time(result.workers, f"{name}: Celery workers over time")
    for fname, fig in charts.items():
        fig.savefig(out / fname, dpi=110, bbox_inches="tight", metadata={"Software": None})
        written.append(out / fname)
    return written
