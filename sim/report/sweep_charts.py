"""Charts of a sweep: each metric against each swept setting (mean and 95 % CI over seeds)."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..analysis import summarise
from .charts import COLORS

SHOWN = {"delay_p95_s": "ready -> started p95 (s)", "makespan_mean_s": "DAG-run makespan, mean (s)",
         "throughput_per_hour": "task instances per hour", "cost_usd": "total cost (USD)"}


def write_sweep_charts(sw, out_dir) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for key in sw.grid:
        if key == "executor":
            continue
        fig = Figure(figsize=(4.2 * len(SHOWN), 3.6))
        axes = fig.subplots(1, len(SHOWN))
        for ax, (metric, label) in zip(axes, SHOWN.items()):
            s = summarise(sw.table, key, metric)
            for i, (ex, g) in enumerate(s.groupby("executor", sort=False)):
                x = g[key].astype(str)
                ax.errorbar(x, g["mean"], yerr=g["ci95"].fillna(0), marker="o", capsize=3,
                            color=COLORS[i % len(COLORS)], label=ex)
            ax.set_xlabel(key)
            ax.set_title(label, fontsize=10)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Sweep of {key} (mean and 95 % CI over seeds)")
        fig.tight_layout()
        name = key.replace(".", "_")
        for ext in ("png", "svg"):
            fig.savefig(out / f"{name}.{ext}", dpi=100, bbox_inches="tight")
            written.append(out / f"{name}.{ext}")
    return written
