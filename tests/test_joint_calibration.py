"""One profile fitted to every recorded configuration at once, and leave-one-configuration-out
cross-validation (sim/calibration/joint.py, `sim calibrate-all`; issue #11).

The data are real Airflow 2.10 runs on a 2-core machine (data/airflow-runs: the shared local-p8
and celery-p8-c4, and the harness's af210-wide configurations). The slow test is the issue's
acceptance check: every held-out fan-out and chain makespan within 15 % of the real runs, and the
Celery concurrency direction right.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.calibration.joint import (BENCH_DAG_ATTRS, cross_validate, error_table, joint_fit,
                                   load_configurations)
from sim.calibration.model import replay
from sim.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "airflow-runs"
REST = DATA / "rest"
ALL = [DATA / "local-p8", DATA / "celery-p8-c4", DATA / "af210-wide"]


@pytest.fixture(scope="module")
def configs():
    return load_configurations(ALL, REST)


def by_name(configs, name):
    return next(c for c in configs if c.name == name)


def test_configurations_are_read_with_what_config_txt_cannot_say(configs):
    names = {c.name for c in configs}
    assert {"local-p8", "celery-p8-c4", "local-p2", "local-p16", "celery-p16-c2",
            "local-p16-overlap4"} <= names
    overlap = by_name(configs, "local-p16-overlap4")
    assert overlap.problem.concurrent == 4                       # matrix.yaml: concurrent_runs
    assert overlap.problem.known["airflow.parallelism"] == 16    # config.txt
    assert overlap.problem.known["overheads.scheduler_host_cores"] == 2   # the machine
    p16 = by_name(configs, "local-p16")
    assert "cpufanout" in p16.dags
    cpu = p16.problem.templates["cpufanout"]
    assert cpu.max_active_tasks == BENCH_DAG_ATTRS["cpufanout"]["max_active_tasks"]
    assert cpu.tasks["q00"].cpu_bound and not cpu.tasks["start"].cpu_bound
    assert p16.problem.templates["fanout"].max_active_tasks == 64
    # only runs the harness marked clean are scored
    import pandas as pd
    cont = pd.read_csv(DATA / "af210-wide" / "local-p2" / "contention.csv")
    clean = set(cont.loc[cont["clean"] == "yes", "run_id"])
    assert set(by_name(configs, "local-p2").problem.obs["run_id"]) <= clean


def test_overlapping_configurations_replay_their_runs_at_once(configs):
    c = by_name(configs, "local-p16-overlap4")
    p = c.problem
    from sim.calibration.model import complete_sections
    sections = complete_sections(p.prof, p.known, {})
    # the harness triggered each batch's runs a CLI call apart: diamond, chain, fanout, fanout0
    assert p.offsets["diamond"] == 0.0 and 1.0 < p.offsets["chain"] < p.offsets["fanout"] < p.offsets["fanout0"] < 15
    _, drs = replay(sections, "local", p.templates, p.bodies(sections), p.runs, p.gaps, 0, 1, p.concurrent,
                    p.offsets)
    first = drs.groupby("dag_id")["due_at"].min()
    for dag, off in p.offsets.items():                 # one run of each DAG per batch, at its offset
        assert first[dag] - first["diamond"] == pytest.approx(off)
    _, alone = replay(sections, "local", p.templates, p.bodies(sections), p.runs, p.gaps, 0, 1, 1)
    assert alone.groupby("dag_id")["due_at"].min().diff().dropna().min() > 30   # one DAG after another


def test_a_small_joint_fit_improves_on_its_start(configs):
    two = [by_name(configs, "local-p2"), by_name(configs, "local-p16")]
    for c in two:
        c.dags = ["chain", "fanout0"]
    fit = joint_fit(two, fit=["overheads.task_exit_latency", "overheads.process_start_fork"], seeds=(0,),
                    max_evaluations=16, design_points=0)
    assert np.isfinite(fit.objective) and fit.evaluations <= 16
    q = fit.quality()
    assert set(q["configuration"]) == {"local-p2", "local-p16"}
    assert "local-p16" in error_table(q)


def test_cli_calibrate_all_bad_folder_exits_2(tmp_path, capsys):
    assert cli(["calibrate-all", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue #11's acceptance check, not met yet: 20 of 26 held-out fan-out and "
                                       "chain makespans within 15 % (docs/howto.md, the cross-validation table)")
def test_leave_one_configuration_out_predicts_every_held_out_makespan_within_15_percent():
    configs = load_configurations(ALL, REST)
    q = cross_validate(configs, seeds=(0,), max_evaluations=120, processes=2)
    print(error_table(q))
    mk = q[q["stage"] == "makespan"].set_index(["configuration", "dag_id"])
    for dag in ("fanout", "chain"):
        errors = mk.xs(dag, level="dag_id")["error"]
        assert (errors.abs() <= 0.15).all(), errors.to_dict()
    # Celery: the direction of worker concurrency, as measured (c2 slowest; past the broker's
    # backlog, c16 no faster than c8 on the 1 s fan-out)
    fan = mk.xs("fanout", level="dag_id")
    obs, sim = fan["observed_mean"], fan["simulated_mean"]
    assert sim["celery-p16-c2"] > sim["celery-p16-c8"]
    assert np.sign(sim["celery-p16-c16"] - sim["celery-p16-c8"]) == np.sign(obs["celery-p16-c16"] - obs["celery-p16-c8"])


def test_a_fitted_profile_never_overwrites_a_users_file(configs, tmp_path):
    from sim.calibration.joint import JointFit, write_joint_profile
    from sim.errors import SimError
    fit = JointFit({"overheads.task_exit_latency": 0.3}, 0.01, 1, 0.0, (0,), configs[:2])
    mine = tmp_path / "mine.yaml"
    mine.write_text("my notes\n")
    with pytest.raises(SimError, match="not written by sim calibrate"):
        write_joint_profile(fit, mine, "airflow-2.10")
    assert mine.read_text() == "my notes\n"
    out = write_joint_profile(fit, tmp_path / "fitted.yaml", "airflow-2.10")
    again = write_joint_profile(fit, out, "airflow-2.10")          # sim's own file: replaced
    from sim.scenario import load_profile
    assert load_profile(str(again))["overheads"]["task_exit_latency"] == pytest.approx(0.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fitted.yaml", "mine.yaml"]


def test_airflow3_configurations_fit_their_own_overheads_and_may_hold_out_the_only_celery_one():
    """Airflow 3 (data/airflow-runs/af3: Local p8, p16, Celery p8-c4): the fitted overheads are
    JOINT_FIT_3 (no Celery hops), so the one Celery configuration can be predicted from the Local
    ones; with 2.10's list it cannot (its Celery hops would be fitted on nothing)."""
    from sim.calibration.joint import JOINT_FIT, JOINT_FIT_3, default_fit
    from sim.errors import SimError
    af3 = load_configurations([DATA / "af3"], REST, base_profile="airflow-3")
    assert {c.executor for c in af3} == {"local", "celery"}
    with pytest.raises(SimError, match="af3-celery-p8-c4: no other celery configuration to fit celery"):
        cross_validate(af3, fit=JOINT_FIT, max_evaluations=1)
    assert default_fit(af3) == JOINT_FIT_3                 # what joint_fit and cross_validate fit by default
    assert default_fit(load_configurations([DATA / "local-p8"], REST)) == JOINT_FIT
    assert "overheads.api_request_time" in JOINT_FIT_3
    assert not any(k.startswith("celery.") for k in JOINT_FIT_3)
