"""Catch-up, held out: a DAG scheduled every minute, unpaused with 30 data intervals over
(data/airflow-runs/catchup, Airflow 2.10.5, LocalExecutor p16 and Celery p16 c8, 3 catch-ups
each). The scheduler creates those runs itself, one a loop, up to max_active_runs_per_dag (16);
each run's end then points ``next_dagrun`` back to the interval after its own, and the loops walk
it forward past the runs that exist before a 17th is made, so the catch-up runs in two waves
(sim/airflow/dagrun_creation.py). And data/airflow-runs/catchup-sequential: the same with
max_active_runs 1, runs one after the other. Nothing here was fitted: each session's cpu_speed
comes from its diamonds' lone tasks, as for every held-out session."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from sim.calibration.joint import load_configurations, sections_for
from sim.calibration.model import build_scenario
from sim.calibration.speed import fit_speeds
from sim.model.dag import DAG
from sim.model.durations import Constant
from sim.model.schedules import CatchUp, Interval
from sim.simulation import Simulation

FOLDER = DATA / "catchup"
RUNS, MAX_ACTIVE = 30, 16


def _seconds(col: pd.Series) -> np.ndarray:
    return (pd.to_datetime(col, format="ISO8601") - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def _measures(created, started, ended) -> dict:
    """From the first run's creation: the whole catch-up; how many of the first 16 runs (by
    creation) had not ended when the 17th was made, and how long after the first of them ended
    it was made; from a run's end to the next run's creation (one at a time); a run's mean
    duration."""
    order = np.argsort(created, kind="stable")
    created, started, ended = created[order], started[order], ended[order]
    wave = len(created) > MAX_ACTIVE
    return {"span": ended.max() - created[0],
            "first_wave_left": int((ended[:MAX_ACTIVE] > created[MAX_ACTIVE]).sum()) if wave else np.nan,
            "refill_wait": created[MAX_ACTIVE] - ended[:MAX_ACTIVE].min() if wave else np.nan,
            "first_wave_made": created[MAX_ACTIVE - 1] - created[0] if wave else np.nan,
            "next_made": float(np.mean(created[1:] - ended[:-1])),
            "mean_run": float(np.mean(ended - started))}


def catchup_dag(runs: int = RUNS, max_active_runs: int | None = None, dag_id: str = "catchup") -> DAG:
    """bench_dags.py's catchup_<tag>_<rep>: a diamond of `sleep 1` tasks, every minute, ``runs``
    intervals due."""
    dag = DAG(dag_id, CatchUp(Interval(60.0), runs), max_active_runs=max_active_runs)
    for name in ("t1", "t2", "t3", "t4"):
        dag.task(name, duration=Constant(1.0))
    dag.set_dependencies("t1 >> [t2, t3] >> t4")
    return dag


def _session(folder) -> tuple[list, dict]:
    """A catch-up folder's configurations (their diamonds) and its session's speed, fitted on the
    diamonds' lone tasks as for every held-out session (conftest.held_out_session, which also
    loads every DAG's REST structure: the catch-up DAGs have none)."""
    diamonds = load_configurations([folder], DATA / "rest", dags=["diamond"])
    return diamonds, fit_speeds(diamonds, reference="af210-wide-1", seeds=(0, 1))[0].fitted


def _predicted(folder, runs: int, max_active_runs: int | None = None, autogroup: bool = True) -> dict:
    """{configuration: (real measures of its catch-ups, the model's over 3 seeds)}, the model at
    the session's speed from its diamonds (and ``overheads.host_autogroup`` as given)."""
    diamonds, speeds = _session(folder)
    out = {}
    for config in diamonds:
        dr = pd.read_csv(config.folder / "dag_runs.csv")
        dr = dr[dr["dag_id"].str.startswith("catchup_")]
        assert (dr.groupby("dag_id").size() == runs).all()
        real = [_measures(_seconds(g["queued_at"]), _seconds(g["start_date"]), _seconds(g["end_date"]))
                for _, g in dr.groupby("dag_id")]
        sections = sections_for(config, speeds)
        sections["overheads"]["host_autogroup"] = autogroup
        model = []
        for seed in range(3):
            r = Simulation(build_scenario(sections, config.executor, [catchup_dag(runs, max_active_runs)], seed,
                                          horizon=1.0, workers=config.problem.workers)).run().dag_runs
            assert len(r) == runs and (r["state"] == "success").all()
            model.append(_measures(r["created_at"].to_numpy(), r["started_at"].to_numpy(), r["ended_at"].to_numpy()))
        out[config.name] = (pd.DataFrame(real), pd.DataFrame(model))
    assert sorted(out) == ["celery-p16-c8", "local-p16"]
    return out


@pytest.fixture(scope="module")
def catchups() -> dict:
    return _predicted(FOLDER, RUNS)


def test_a_real_catch_up_past_max_active_runs_ran_in_two_waves():
    """The measurement itself: in each of the 6 catch-ups the 17th run was made 3.9-9.7 s after
    the first run ended, with at most half of the first 16 still running (0 in five). Were an
    end to make room at once, the 17th would come a loop after the first end, 15 still running;
    the run ends that keep sending ``next_dagrun`` back hold it off (the scheduler's log has the
    pointer going back at each end: "Setting next_dagrun for ...")."""
    for cfg in ("local-p16", "celery-p16-c8"):
        dr = pd.read_csv(FOLDER / cfg / "dag_runs.csv")
        dr = dr[dr["dag_id"].str.startswith("catchup_")]
        assert dr["dag_id"].nunique() == 3 and (dr.groupby("dag_id").size() == RUNS).all()
        for _, g in dr.groupby("dag_id"):
            m = _measures(_seconds(g["queued_at"]), _seconds(g["start_date"]), _seconds(g["end_date"]))
            assert m["refill_wait"] > 3.0 and m["first_wave_left"] <= 8, (cfg, m)


def test_the_model_runs_a_catch_up_in_waves_and_as_long_as_measured(catchups):
    """At the session's speed the model makes the 17th run once the first wave has (nearly)
    drained, as real Airflow did, and the whole catch-up lasts as long within 10 % (when
    written: Local +5 %, Celery -4 %; since the host's groups, 2026-12-08, +0.6 and +6.8 %). The
    17th run came 6.1 and 7.0 s after the first end (real 6.4 and 6.9 s; now 5.9 and 6.2 s). The model before the pointer, which made up to 10 runs of a DAG a loop
    and the 17th at the first end, made it 1.2 and 1.7 s after (13 of the first 16 still running
    on Celery) and its Local runs were 28 % too long. A run's own duration within 15 %."""
    for cfg, (real, model) in catchups.items():
        print(cfg, real.mean().round(2).to_dict(), model.mean().round(2).to_dict())
        assert (model["refill_wait"] > 3.0).all() and (model["first_wave_left"] <= 8).all(), (cfg, model)
        assert model["span"].mean() == pytest.approx(real["span"].mean(), rel=0.10), cfg
        assert model["mean_run"].mean() == pytest.approx(real["mean_run"].mean(), rel=0.15), cfg


def test_the_first_wave_of_a_catch_up_is_made_as_fast_as_measured(catchups):
    """One run a loop: how fast the first 16 runs come is how fast the loop runs while the runs
    and their first tasks pile up. Real: 2.3 s (Celery) and 6.4 s (Local). The model, with the
    cores shared among Linux's autogroups (the scheduler's group alone beside the Celery worker's
    8 children, PostgreSQL's): 3.0 and 9.2 s; with every process sharing alike (a strict xfail until
    2026-12-08) Celery's took 7.0 s. Local's scheduler shares its group with its own task
    processes either way, and its loop stays slower than real (issue #11's note)."""
    for cfg, (real, model) in catchups.items():
        assert model["first_wave_made"].mean() == pytest.approx(real["first_wave_made"].mean(), rel=0.5), cfg


def test_a_catch_up_one_run_at_a_time_is_predicted_as_measured():
    """data/airflow-runs/catchup-sequential (a later session, a slower machine: its diamonds'
    speed 0.87): the same DAG with ``max_active_runs`` 1 and 10 intervals due, twice on each
    executor. Each run's end points ``next_dagrun`` at an interval no run has yet, and the next
    loop makes it: real Airflow made the next run 0.82-1.04 s after the last ended on average
    (an idle sleep at most, 1.06 s). The model within 0.2 s of that and the whole catch-up within
    10 % (when written: Local +1.8 %, Celery +2.8 %; the gaps 0.91 and 0.83 s against 0.98 and
    0.90; since the host's groups, 2026-12-08: +5.7 and +2.7 %, 0.87 and 0.95 s)."""
    for cfg, (real, model) in _predicted(DATA / "catchup-sequential", 10, max_active_runs=1).items():
        print(cfg, real.mean().round(2).to_dict(), model.mean().round(2).to_dict())
        assert real["next_made"].between(0.5, 1.1).all(), (cfg, real)
        assert model["next_made"].mean() == pytest.approx(real["next_made"].mean(), abs=0.2), cfg
        assert model["span"].mean() == pytest.approx(real["span"].mean(), rel=0.10), cfg


def _burst_dags(n: int = 12, runs: int = 2) -> list:
    return [catchup_dag(runs, dag_id=f"catchup_{k}") for k in range(n)]


def test_twelve_dags_due_at_once_get_ten_runs_in_the_first_loop_and_last_as_long_as_measured():
    """data/airflow-runs/dag-burst: twelve catch-up DAGs, 2 intervals due each, unpaused in one
    UPDATE (a fast session: diamonds' speed 1.28). Real Airflow's first loop made 10 runs within
    0.07 s (max_dagruns_to_create_per_loop DAGs, one run each: ten DAGs, not five DAGs' two
    runs, as the model made them before 2026-12-07) and the 11th came with a later
    loop; the model does the same, and the whole burst (24 runs, 96 tries on 16 slots) lasts as
    long within 10 % (when written: Local -2 %, Celery -8 %; since the host's groups, -4.1 and
    -4.6 %). Its later loops were slower than real when written (all 24 runs made by 3.6-5.1 s
    against 0.64 and 1.69 s; Celery's second loop 1.75 s after the first, real 0.39 s): issue
    #11's note."""
    diamonds, speeds = _session(DATA / "dag-burst")
    for config in diamonds:
        dr = pd.read_csv(config.folder / "dag_runs.csv")
        dr = dr[dr["dag_id"].str.startswith("catchup_")]
        assert dr["dag_id"].nunique() == 12 and len(dr) == 24 and (dr["state"] == "success").all()
        real_made = np.sort(_seconds(dr["queued_at"]))
        real_span = _seconds(dr["end_date"]).max() - real_made[0]
        spans = []
        for seed in range(3):
            r = Simulation(build_scenario(sections_for(config, speeds), config.executor, _burst_dags(), seed,
                                          horizon=1.0, workers=config.problem.workers)).run().dag_runs
            made = np.sort(r["created_at"].to_numpy())
            assert len(r) == 24 and made[9] - made[0] < 0.1 < made[10] - made[0], (config.name, made)
            assert r.nsmallest(10, "created_at")["dag_id"].nunique() == 10      # one run a DAG
            spans.append(r["ended_at"].max() - made[0])
        assert real_made[9] - real_made[0] < 0.1 < real_made[10] - real_made[0], real_made
        first = dr.assign(t=_seconds(dr["queued_at"])).nsmallest(10, "t")
        assert first["dag_id"].nunique() == 10
        print(config.name, real_span, np.mean(spans))
        assert np.mean(spans) == pytest.approx(real_span, rel=0.10), config.name


def test_the_machines_group_scheduling_is_what_kept_the_real_celery_scheduler_fast():
    """The measurement behind the first-wave tests (data/airflow-runs/autogroup-off): the same
    catch-ups with Linux's group scheduling by session switched off. Celery's first wave, made
    in 2.0-2.5 s with it on, took 5.5-5.6 s; Local's, whose task processes share the scheduler's
    session either way, barely moved (6.1-6.8 -> 7.3 s); lone tasks (the diamonds' medians) by
    0.04 s on Local and 0.6 s on Celery (9.1 -> 9.7 s; one of its three took 10.2 s)."""
    def measured(folder, cfg):
        dr = pd.read_csv(DATA / folder / cfg / "dag_runs.csv")
        wave = [_measures(_seconds(g["queued_at"]), _seconds(g["start_date"]), _seconds(g["end_date"]))
                ["first_wave_made"] for _, g in dr[dr["dag_id"].str.startswith("catchup_")].groupby("dag_id")]
        d = dr[dr["dag_id"] == "diamond"]
        return np.array(wave), float(np.median(_seconds(d["end_date"]) - _seconds(d["start_date"])))
    for folder, on in (("catchup", "1"), ("autogroup-off", "0")):
        for cfg in ("local-p16", "celery-p16-c8"):
            text = (DATA / folder / cfg / "machine.yaml").read_text()
            assert f"sched_autogroup_enabled: {on}" in text or (on == "1" and "sched_autogroup" not in text)
    (c_on, d_c_on), (c_off, d_c_off) = measured("catchup", "celery-p16-c8"), measured("autogroup-off", "celery-p16-c8")
    (l_on, d_l_on), (l_off, d_l_off) = measured("catchup", "local-p16"), measured("autogroup-off", "local-p16")
    assert c_off.min() > 2 * c_on.max()                       # Celery: its scheduler lost its own group
    assert l_off.mean() < 1.25 * l_on.mean()                   # Local: shared the group either way
    assert abs(d_c_off - d_c_on) < 1.0 and abs(d_l_off - d_l_on) < 0.2      # lone tasks: little contention


def test_a_session_with_group_scheduling_off_is_predicted_with_the_model_s_groups_off():
    """data/airflow-runs/autogroup-off held out (only its diamonds' speed fitted), the model told
    what that machine had: ``overheads.host_autogroup: false``. The catch-ups last as long within
    10 % (when written: Local -1.0 %, Celery +6.0 %), and the model's Celery first wave, as the
    real one, over twice as long as with the groups: real 5.6 s here against 2.3 s in the catchup
    session; the model 9.7 s here, 3.4 s with its groups on. (Its loop is slower than real either
    way, as Local's above.)"""
    off = _predicted(DATA / "autogroup-off", RUNS, autogroup=False)
    on = _predicted(DATA / "autogroup-off", RUNS, autogroup=True)
    for cfg, (real, model) in off.items():
        print(cfg, real.mean().round(2).to_dict(), model.mean().round(2).to_dict())
        assert model["span"].mean() == pytest.approx(real["span"].mean(), rel=0.10), cfg
    # (the real first waves, over twice as long with autogroup off: the measurement's own test above)
    model = off["celery-p16-c8"][1]
    assert model["first_wave_made"].mean() > 2 * on["celery-p16-c8"][1]["first_wave_made"].mean()
