"""Charts of a comparison of executors: latency CDFs, where the delay goes, cost, and cost versus
p95 latency with the Pareto frontier. Each returns the Figure it drew on; ``ax=`` draws into an
Axes of your own (``axes=`` a pair, for the cost bars)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..analysis import pareto_front
from .charts import COLORS, STAGE_LABELS, _done, _fig_ax

#: Ticks of the latency axis: decades from 10 ms, labelled in seconds.
_DECADES = [0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]


def _seconds(v, _pos=None) -> str:
    return "0" if v == 0 else f"{v:g} s"


def _table(cmp, metric):
    t = cmp.table[cmp.table["metric"] == metric].set_index("executor")
    return t["mean"], t["ci95"].fillna(0.0)


def latency_cdf(cmp, ax=None):
    """Share of task tries started within x seconds of being ready, every seed's tries pooled."""
    fig, ax, own = _fig_ax(ax, (8, 4))
    top = 0.0
    for i, (ex, d) in enumerate(cmp.delays.items()):
        if len(d):
            x = np.sort(d)
            top = max(top, float(x[-1]))
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post",
                    label=f"{ex} (p95 of all seeds' tries pooled: {np.percentile(d, 95):.3g} s)",
                    color=COLORS[i % len(COLORS)])
    ax.set_xscale("symlog", linthresh=0.01, linscale=0.3)
    ax.xaxis.set_major_locator(FixedLocator([t for t in _DECADES if t <= max(top, 1.0) * 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(left=0.0)
    ax.grid(True, axis="x", lw=0.5, alpha=0.5)
    ax.set_xlabel("ready -> started (log scale)")
    ax.set_ylabel("share of task tries")
    ax.set_title("Scheduling delay: cumulative distribution per executor (all seeds)")
    ax.legend(fontsize=8)
    return _done(fig, own)


def stage_bars(cmp, ax=None):
    stages = ["ready_to_scheduled", "scheduled_to_queued", "queued_to_launched", "launched_to_started"]
    fig, ax, own = _fig_ax(ax, (9, 3.8))
    executors = list(cmp.delays)
    left = np.zeros(len(executors))
    for stage, color in zip(stages, COLORS):
        m, _ = _table(cmp, f"{stage}_s")
        vals = np.array([m.get(ex, 0.0) for ex in executors], dtype=float)
        vals = np.nan_to_num(vals)
        ax.barh(executors, vals, left=left, color=color, label=STAGE_LABELS[stage])
        left += vals
    for y, total in enumerate(left):
        ax.text(total, y, f"  {total:.2f} s", va="center", fontsize=8)
    ax.set_xlim(0, max(left.max(), 1e-9) * 1.2)
    ax.set_xlabel("mean seconds per try (mean over seeds)")
    ax.set_title("Where scheduling delay goes, per executor")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return _done(fig, own)


def cost_bars(cmp, axes=None):
    m, h = _table(cmp, "cost_usd")
    k, kh = _table(cmp, "cost_per_1000_tasks_usd")
    own = axes is None
    if own:
        fig = Figure(figsize=(10, 3.6))
        axes = fig.subplots(1, 2)
    else:
        fig = axes[0].figure
    for ax, (vals, err, label) in zip(axes, ((m, h, "total cost of the run (USD)"),
                                             (k, kh, "cost per 1,000 tasks (USD)"))):
        ax.bar(vals.index, vals.values, yerr=err.values, capsize=4, color=COLORS[:len(vals)])
        ax.set_ylabel(label)
        ax.set_title(label[0].upper() + label[1:] + ", 95 % CI over seeds", fontsize=10)
    return _done(fig, own)


def cost_vs_latency(cmp, ax=None):
    c, ch = _table(cmp, "cost_usd")
    p, ph = _table(cmp, "delay_p95_s")
    fig, ax, own = _fig_ax(ax, (7, 4.5))
    pts = []
    for i, ex in enumerate(c.index):
        ax.errorbar(p[ex], c[ex], xerr=ph[ex], yerr=ch[ex], fmt="o", color=COLORS[i % len(COLORS)], capsize=3,
                    label=ex)
        pts.append((p[ex], c[ex], ex))
    front = pareto_front(pts)          # no other executor is both cheaper and faster
    if len(front) > 1:
        ax.plot([f[0] for f in front], [f[1] for f in front], "--", color="grey", lw=1, label="Pareto frontier")
    ax.set_xlabel("ready -> started p95 (seconds)")
    ax.set_ylabel("total cost (USD)")
    ax.set_title("Cost versus p95 scheduling delay (lower left is better)")
    ax.legend(fontsize=8)
    return _done(fig, own)


def throughput_bars(cmp, ax=None):
    m, h = _table(cmp, "throughput_per_hour")
    fig, ax, own = _fig_ax(ax, (6, 3.6))
    ax.bar(m.index, m.values, yerr=h.values, capsize=4, color=COLORS[:len(m)])
    ax.set_ylabel("task instances succeeded per hour")
    ax.set_title("Throughput per executor, 95 % CI over seeds")
    return _done(fig, own)


def write_compare_charts(cmp, out_dir) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in (("latency_cdf", latency_cdf), ("delay_by_stage", stage_bars), ("cost", cost_bars),
                       ("cost_vs_p95", cost_vs_latency), ("throughput", throughput_bars)):
        fig = make(cmp)
        for ext in ("png", "svg"):
            fig.savefig(out / f"{name}.{ext}", dpi=110, bbox_inches="tight", metadata={"Software": None} if ext == "png" else None)
            written.append(out / f"{name}.{ext}")
    return written
