"""report.html's grid looks at the runs it shows only (issue #13: a long run's report took a second
to build a cell per task instance), and draws exactly what the per-row version drew."""
import html
import sys
from pathlib import Path

import pytest

from sim import scenario_from_dict
from sim.report.html import STATE_COLOURS, _grid
from sim.scenario import load_scenario
from sim.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_determinism import generate  # noqa: E402


def per_row_grid(tis, max_runs: int = 60) -> str:
    """The grid as it was built before: a cell for every row of the table."""
    final = tis.drop_duplicates(["dag_id", "run_id", "task_id", "map_index"], keep="last")
    parts = []
    for dag_id, g in final.groupby(final["dag_id"].astype(str), sort=True):
        runs = list(dict.fromkeys(g["run_id"].astype(str)))[:max_runs]
        tasks = list(dict.fromkeys(g["task_id"].astype(str)))
        cell = {(str(r.run_id), str(r.task_id)): str(r.state) for r in g.itertuples()}
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


@pytest.mark.parametrize("max_runs", [1, 5, 60])
def test_grid_of_the_seed_diamond_unchanged(max_runs):
    tis = Simulation(load_scenario(ROOT / "scenarios" / "seed-diamond.yaml")).run().task_instances
    got = _grid(tis, max_runs)
    assert got == per_row_grid(tis, max_runs)
    assert got.count("<td ") == 4 * min(max_runs, 12)


@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_grid_of_generated_scenarios_unchanged(seed):
    # several DAGs, retries, mapped tasks, sensors, deferrals, several executors
    tis = Simulation(scenario_from_dict(generate(seed))).run().task_instances
    for max_runs in (2, 60):
        assert _grid(tis, max_runs) == per_row_grid(tis, max_runs)
