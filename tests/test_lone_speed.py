"""A held-out configuration's machine speed, measured on its other DAGs' lone tasks
(sim/calibration/lone.py; issue #11's cross-validation).

The data are real Airflow 2.10 runs (data/airflow-runs). The speed is a measurement: these tests
check that it recovers a speed the model itself ran at, that it never reads the DAG being
predicted, and that it carries the signal it is used for (the chains' makespans follow it).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from sim.calibration.joint import SPEED, cross_validate, load_configurations, sections_for
from sim.calibration.lone import lone_speed, probe_tasks, structurally_lone
from sim.calibration.model import simulated_observations
from sim.cli import main as cli
from sim.errors import SimError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "airflow-runs"
REST = DATA / "rest"


@pytest.fixture(scope="module")
def wide():
    return load_configurations([DATA / "af210-wide"], REST)


@pytest.fixture(scope="module")
def exit_path():
    return load_configurations([DATA / "exit-path"], REST)


def test_a_lone_task_is_one_no_other_task_of_its_run_can_overlap(wide):
    p16 = next(c for c in wide if c.name == "local-p16")
    t = p16.problem.templates
    assert structurally_lone(t["chain"]) == {f"c{i}" for i in range(10)}
    assert structurally_lone(t["diamond"]) == {"t1", "t4"}
    assert structurally_lone(t["fanout"]) == {"start", "end"}
    assert structurally_lone(t["cpufanout"]) == {"start", "end"}
    assert ("chain", "c3") not in probe_tasks(p16, exclude="chain")
    assert ("diamond", "t1") in probe_tasks(p16, exclude="chain")


def _as_recorded(config, speed: float, seed: int):
    """``config`` whose recorded runs are the model's own at ``speed`` (every try alone, as the
    model's lone tasks are)."""
    c = copy.copy(config)
    c.problem = copy.copy(config.problem)
    p = c.problem
    sections = sections_for(c, {}, speed=speed)
    o = simulated_observations(*p.replayed(sections, seed, p.bodies(sections)), p.roots)
    p.obs = o.assign(running=1.0)
    return c


@pytest.mark.parametrize("speed", [0.85, 1.3])
def test_the_speed_the_model_ran_at_is_recovered_from_its_lone_tasks(exit_path, speed):
    for config in exit_path:
        fake = _as_recorded(config, speed, seed=7)        # (another seed than the measurement's)
        assert lone_speed(fake, {}) == pytest.approx(speed, rel=0.05), config.name
        assert lone_speed(fake, {}, exclude="chain") == pytest.approx(speed, rel=0.08), config.name


def test_no_dag_s_speed_reads_that_dag_s_own_times(exit_path):
    c = exit_path[0]
    slowed = copy.copy(c)
    slowed.problem = copy.copy(c.problem)
    o = c.problem.obs.copy()
    chain = o["dag_id"] == "chain"
    o.loc[chain, "queued_to_started"] *= 3.0             # the chain's starts three times as slow
    slowed.problem.obs = o
    assert lone_speed(slowed, {}, exclude="chain") == lone_speed(c, {}, exclude="chain")
    assert lone_speed(slowed, {}) < 0.8 * lone_speed(c, {})


def test_runs_triggered_several_at_once_have_no_lone_speed(wide):
    overlap = next(c for c in wide if c.name == "local-p16-overlap4")
    assert math.isnan(lone_speed(overlap, {}))


def test_the_chains_follow_the_machine_s_pace_measured_on_the_other_dags(wide):
    """af210-wide: one session's configurations, run one after the other. The chains' makespans
    (13.7-19.5 s) fall as the speed measured on the configuration's diamonds and fan-outs rises
    (Spearman -0.75 measured); parallelism and concurrency do not order them."""
    alone = [c for c in wide if c.problem.concurrent == 1]
    speeds = [lone_speed(c, {}, exclude="chain") for c in alone]
    chains = [float(c.problem.observed.query("dag_id == 'chain' and stage == 'makespan'")["mean"].iloc[0])
              for c in alone]
    rho = spearmanr(speeds, chains).statistic
    assert rho <= -0.7, list(zip([c.name for c in alone], speeds, chains))


def test_cross_validation_predicts_each_dag_at_its_other_dags_speed(exit_path):
    q = cross_validate(exit_path, seeds=(0,), max_evaluations=12)
    assert set(q.attrs["speeds"]) == {c.name for c in exit_path}
    for c in exit_path:
        used = q.attrs["speeds"][c.name]
        assert set(used) == set(c.dags)
        assert all(np.isfinite(v) for v in used.values())
        assert used["chain"] == pytest.approx(lone_speed(c, {k: v for k, v in q.attrs["folds"][c.name].items()
                                                            if not k.startswith(SPEED)}, exclude="chain"))
    assert set(q["configuration"]) == {c.name for c in exit_path}
    session = cross_validate(exit_path, seeds=(0,), max_evaluations=12, speed="session")
    assert session.attrs["speeds"] == {c.name: {} for c in exit_path}
    with pytest.raises(SimError, match="held-out speed"):
        cross_validate(exit_path, max_evaluations=12, speed="fastest")


def test_cli_held_out_speed_needs_cross_validation(capsys):
    assert cli(["calibrate-all", str(DATA / "exit-path"), "--held-out-speed", "session"]) == 2
    assert "--cross-validate" in capsys.readouterr().err


def test_a_held_out_speed_the_search_range_clipped_is_marked():
    """Airflow 3's Celery fold lands on the range's end (2.0): the listing says so, so nobody reads
    it as a measured speed."""
    from sim.calibration.cli import speed_text
    assert speed_text(1.25) == "1.250"
    assert speed_text(2.0) == "2.000 (limit)" and speed_text(0.5) == "0.500 (limit)"
    assert speed_text(math.nan) == "-"
