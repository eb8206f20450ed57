"""``sim calibrate-all --speed-only``'s fit (sim/calibration/speed.py): the speed at which the
model starts a lone task as fast as the recorded machine did, its start being a latency plus CPU
work at the machine's speed."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.calibration.joint import SPEED, SPEED_RANGE, load_configurations
from sim.calibration.speed import (POINTS, fit_speeds, grid, lone_tasks, recorded_lone_start, simulated_lone_start,
                                   solve)
from sim.errors import SimError

DATA = Path(__file__).resolve().parents[1] / "data" / "airflow-runs"


def test_the_grid_spans_the_speed_range_in_equal_log_steps():
    g = grid()
    assert len(g) == POINTS
    assert math.isclose(g[0], 1 / SPEED_RANGE) and math.isclose(g[-1], SPEED_RANGE)
    assert np.allclose(np.diff(np.log(g)), np.diff(np.log(g))[0])


def test_solve_recovers_the_speed_of_a_latency_plus_cpu_start():
    g = grid()
    for true in (0.61, 0.86, 1.0, 1.37, 1.9):
        starts = 0.04 + 0.35 / g
        speed, latency, cpu, r2 = solve(g, starts, 0.04 + 0.35 / true)
        assert math.isclose(speed, true, rel_tol=1e-9) and math.isclose(latency, 0.04) and math.isclose(cpu, 0.35)
        assert math.isclose(r2, 1.0)
    # a start quicker than the model's latency, or slower than at the slowest speed: the range's ends
    assert solve(g, 0.04 + 0.35 / g, 0.03)[0] == g[-1]
    assert solve(g, 0.04 + 0.35 / g, 5.0)[0] == g[0]
    with pytest.raises(SimError, match="does not shorten"):
        solve(g, 0.4 - 0.0 * g + 0.01 * g, 0.3)
    # speeds at which no lone task succeeded are left out; too few left is an error
    gaps = 0.04 + 0.35 / g
    gaps[[0, 4]] = np.nan
    assert math.isclose(solve(g, gaps, 0.04 + 0.35 / 1.2)[0], 1.2, rel_tol=1e-9)
    with pytest.raises(SimError, match="no lone task"):
        solve(g, np.full(len(g), np.nan), 0.3)


@pytest.fixture(scope="module")
def diamonds():
    return load_configurations([DATA / "new-session"], DATA / "rest", dags=["diamond"])


def test_a_diamonds_lone_tasks_are_its_first_and_last(diamonds):
    for c in diamonds:
        ids = lone_tasks(c)
        assert len(ids) == 2, ids                        # start and end; the two middle ones ran together
        assert 0.2 < recorded_lone_start(c) < 0.4          # new-session's fast machine: 0.28-0.29 s


def test_the_fit_recovers_a_speed_the_model_itself_recorded():
    """Recordings made by the model at cpu_speed 0.8 (other seeds than the fit's): the fit finds
    0.8 back within 5 %."""
    diamonds = load_configurations([DATA / "new-session"], DATA / "rest", dags=["diamond"])
    key = SPEED + diamonds[0].session
    for c in diamonds:
        made = simulated_lone_start(c, {key: 0.8}, seeds=(11, 12))
        o = c.problem.obs
        o.loc[o["running"] <= 1.0, "queued_to_started"] = made
    fit, why = fit_speeds(diamonds, reference="af210-wide-1", seeds=(0, 1))
    assert abs(fit.fitted[key] / 0.8 - 1.0) < 0.05, fit.fitted
    assert why[diamonds[0].session]["cpu"] > 0.2          # the start's CPU work (process_start_fork's 0.3)


def test_a_session_with_no_lone_task_is_refused_with_its_folder():
    fans = load_configurations([DATA / "new-session" / "local-p8"], DATA / "rest", dags=["fanout"])
    for c in fans:
        o = c.problem.obs
        o["running"] = 5.0
    with pytest.raises(SimError, match="no task ran alone") as e:
        fit_speeds(fans, reference="af210-wide-1", seeds=(0,))
    assert "local-p8" in str(e.value)
