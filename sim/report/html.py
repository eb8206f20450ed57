"""A self-contained HTML page per run (``report.html``), in the spirit of Airflow's web UI: the
grid of DAG runs x tasks coloured by state, the charts (inlined, no server needed) and the summary
table. Nothing is fetched from the network."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

#: Airflow's UI colours for task-instance states.
STATE_COLOURS = {"success": "#008000", "failed": "#ff0000", "upstream_failed": "#ffa500", "skipped": "#ff69b4",
                 "up_for_retry": "#ffd700", "running": "#00ff00", "queued": "#808080", "scheduled": "#d2b48c",
                 "none": "#ffffff", "removed": "#d3d3d3", "deferred": "#9370db", "up_for_reschedule": "#40e0d0"}

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}
h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f4f4f4}
.grid td{width:14px;height:14px;padding:0}.grid th{font-weight:normal;text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.legend span{display:inline-block;margin-right:1em}
.sw{display:inline-block;width:12px;height:12px;border:1px solid #999;vertical-align:middle;margin-right:3px}"""

CHECK = """<script>window.addEventListener('load',function(){var ok=0;for(const i of document.images){
if(i.complete&&i.naturalWidth>0){ok++}}document.body.setAttribute('data-images-ok',ok);
document.body.setAttribute('data-grid-cells',document.querySelectorAll('table.grid td').length);});</script>"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _grid(tis, max_runs: int = 60) -> str:
    final = tis.drop_duplicates(["dag_id", "run_id", "task_id", "map_index"], keep="last")
    parts = []
    for dag_id, g in final.groupby(final["dag_id"].astype(str), sort=True):
        # distinct values in order of first appearance (on a categorical's codes: no text per
        # row), and the cells of the runs shown only: a long run has thousands, the grid 60
        values = pd.unique(g["run_id"])
        texts = [str(v) for v in values]
        runs = list(dict.fromkeys(texts))[:max_runs]
        shown = set(runs)
        tasks = list(dict.fromkeys(str(v) for v in pd.unique(g["task_id"])))
        rows_shown = g[g["run_id"].isin([v for v, t in zip(values, texts) if t in shown])]
        cell = {(str(r.run_id), str(r.task_id)): str(r.state) for r in rows_shown.itertuples()}
        rows = [f"<tr><th>{html.escape(dag_id)} task \\ run</th>" + "".join(
            f'<th title="{html.escape(r)}">{i}</th>' for i, r in enumerate(runs)) + "</tr>"]
        for t in tasks:
            tds = "".join(
                f'<td title="{html.escape(t)} {html.escape(r)}: {cell.get((r, t), "")}" '
                f'style="background:{STATE_COLOURS.get(cell.get((r, t), "none"), "#fff")}"></td>' for r in runs)
            rows.append(f"<tr><th>{html.escape(t)}</th>{tds}</tr>")
        parts.append(f'<table class="grid">{"".join(rows)}</table>')
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i>{s}</span>'
                     for s, c in STATE_COLOURS.items())
    return f'<p class="legend">{legend}</p>' + "".join(parts)


def _num(x, unit: str = "") -> str:
    """A figure for people: 4 significant digits, or n/a."""
    if x is None or x != x:
        return "n/a"
    return f"{x:.4g}{unit}" if isinstance(x, float) else f"{x}{unit}"


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100.0 * x:.1f} %"


def plain(x: float, digits: int = 4) -> str:
    """``digits`` significant digits without exponents (1,235 not 1.235e+03; 98 not 1e+02)."""
    if x != x:
        return "n/a"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ci_text(mean: float, half: float, share: bool = False) -> str:
    """``mean ± half`` with a half-width that is 0 up to float noise shown as 0, and shares in %."""
    if half == half and half < 1e-9 * max(1.0, abs(mean)):
        half = 0.0
    if share:
        return _pct(mean) + ("" if half != half else f" ± {plain(100.0 * half, 2)} points")
    return plain(mean) + ("" if half != half else f" ± {plain(half, 2)}")


def _summary_table(summary: dict) -> str:
    rows = []
    d = summary["scheduling_delay_seconds"]
    mk = summary["dag_runs"]["makespan_seconds"]
    cost = summary.get("cost", {})
    for label, value in (
            ("DAG runs", summary["dag_runs"]["count"]),
            ("task instances by state", ", ".join(f"{k} {v}" for k, v in summary["task_instances"]["by_state"].items())),
            ("throughput (task instances succeeded per hour)", _num(summary["throughput_per_hour"]["task_instances_succeeded"])),
            ("DAG-run makespan, mean / p95", f'{_num(mk["mean"], " s")} / {_num(mk["p95"], " s")}'),
            ("ready -> started, p50 / p95 / p99 (all tries of this run)",
             " / ".join(_num(d["ready_to_started"][q], " s") for q in ("p50", "p95", "p99"))),
            ("executor slots busy", _pct(summary["utilisation"]["executor_slots"])),
            ("cost", _num(cost.get("total_usd"), " USD")),
            ("cost per 1,000 tasks", _num(cost.get("per_1000_tasks_usd"), " USD"))):
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _deployments(lines) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in lines) + "</ul>"


def write_report(result, folder: Path) -> Path:
    """``report.html`` in a results folder that already holds its ``charts/``."""
    folder = Path(folder)
    s = result.summary
    charts = sorted((folder / "charts").glob("*.png")) if (folder / "charts").exists() else []
    body = [f"<h1>{html.escape(s['scenario'])} on the {html.escape(s['executor'])} executor</h1>",
            f"<p>{html.escape(getattr(result.scenario, 'description', '') or '')}</p>",
            f"<p>profile {html.escape(str(s['profile']))}, seed {s['seed']}; DAG runs due from 0 to "
            f"{s['horizon_seconds'] / 3600:.3g} h, simulated until every run ended at "
            f"{s['simulated_seconds'] / 3600:.3g} h</p>",
            "<h2>Deployment</h2>", _deployments(s.get("deployment", [])),
            "<h2>Summary</h2>", _summary_table(s),
            "<h2>Grid: DAG runs × tasks, coloured by final state</h2>", _grid(result.task_instances),
            "<h2>Charts</h2>", *(_img(p) for p in charts)]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(s['scenario'])}"
            f" - sim report</title><style>{CSS}</style>{CHECK}</head><body>{''.join(body)}</body></html>")
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def write_compare_report(cmp, folder: Path, title: str) -> Path:
    """``report.html`` of a comparison: the table of means and intervals, and its charts."""
    folder = Path(folder)
    t = cmp.table
    executors = list(dict.fromkeys(t["executor"]))
    head = "<tr><th>metric</th>" + "".join(f"<th>{html.escape(e)}</th>" for e in executors) + "</tr>"
    rows = []
    for metric, g in t.groupby("metric", sort=False):
        label = g["description"].iloc[0]
        cells = []
        for e in executors:
            r = g[g["executor"] == e].iloc[0]
            share = "share" in metric or "utilisation" in metric
            cells.append(f"<td>{html.escape(ci_text(r['mean'], r['ci95'], share))}</td>")
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    charts = sorted((folder / "charts").glob("*.png")) if (folder / "charts").exists() else []
    runs = cmp.runs
    seeds = sorted(int(x) for x in runs["seed"].unique())
    first = runs.iloc[0]
    context = ""
    if "profile" in runs:
        context = (f" Profile {html.escape(str(first['profile']))}; DAG runs due from 0 to "
                   f"{first['horizon_s'] / 3600:.3g} h; seeds {', '.join(map(str, seeds))}.")
    deployments = runs.drop_duplicates("executor")["deployment"] if "deployment" in runs else []
    body = [f"<h1>{html.escape(title)}: executors compared</h1>",
            f"<p>{len(executors)} executors × {len(seeds)} seeds, the same workload for each seed; "
            f"mean ± 95 % confidence interval over seeds.{context}</p>",
            "<h2>Deployments</h2>", _deployments(deployments),
            f"<table>{head}{''.join(rows)}</table>",
            "<p>Percentiles in the table are the mean over seeds of each seed's percentile; the "
            "latency chart's legend gives the percentile of every seed's tries pooled, so the two "
            "p95s differ a little.</p>",
            "<h2>Charts</h2>", *(_img(p) for p in charts)]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)} - sim compare"
            f"</title><style>{CSS}</style>{CHECK}</head><body>{''.join(body)}</body></html>")
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
