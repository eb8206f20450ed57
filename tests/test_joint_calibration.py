"""One profile fitted to every recorded configuration at once, and leave-one-configuration-out
cross-validation (sim/calibration/joint.py, `sim calibrate-all`; issue #11).

The data are real Airflow 2.10 runs on a 2-core machine (data/airflow-runs: the shared local-p8
and celery-p8-c4, and the harness's af210-wide configurations). The slow test is the issue's
acceptance check: every held-out fan-out and chain makespan within 15 % of the real runs, and the
Celery concurrency direction right.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.calibration.joint import (BENCH_DAG_ATTRS, SPEED, _names, cross_validate, error_table, joint_fit,
                                   load_configurations, reference_session, sections_for)
from sim.calibration.model import replay
from sim.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "airflow-runs"
REST = DATA / "rest"
ALL = [DATA / "local-p8", DATA / "celery-p8-c4", DATA / "af210-wide", DATA / "exit-path"]


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


def test_celerys_hand_off_is_read_from_the_workers_logs_and_scored(configs):
    """celery_handoff.csv (the workers' logs): the chains' median queued -> executing is one more
    stage of the configurations that have it, scored against the model's QUEUED -> the worker's
    child starting the task, like any stage (relative to FLOOR, capped)."""
    import pandas as pd

    from sim.calibration.inputs import HANDOFF
    from sim.calibration.joint import FLOOR, JointFit, _errors
    c = by_name(configs, "celery-p16-c1")
    obs = c.problem.observed
    h = obs[obs["stage"] == HANDOFF]
    assert list(h["dag_id"]) == ["chain"]
    logs = pd.read_csv(DATA / "af210-wide" / "celery-p16-c1" / "celery_handoff.csv")
    scored = set(c.problem.obs["run_id"])
    real = logs[(logs["dag_id"] == "chain") & logs["run_id"].isin(scored) & (logs["try_number"] == 1)]
    assert h["n"].iloc[0] == len(real) > 20
    assert h["p50"].iloc[0] == pytest.approx(real["queued_to_executing"].median())
    assert 0.005 < h["p50"].iloc[0] < 0.015
    # only where the logs were read: not celery-p8-c4 (no celery_handoff.csv), not LocalExecutor
    for name in ("celery-p8-c4", "local-p8", "local-p16"):
        assert not (by_name(configs, name).problem.observed["stage"] == HANDOFF).any()
    dags = c.dags
    try:
        c.dags = ["chain"]
        n_terms = (obs["dag_id"] == "chain").sum()
        q = {}
        for hop in (0.002, 0.032):
            fitted = {"celery.delivery_time": hop}
            terms = _errors(c, fitted, (0,))
            assert len(terms) == n_terms
            row = JointFit(fitted, 0, 0, 0, (0,), [c]).quality().set_index("stage").loc[HANDOFF]
            assert row["error"] == pytest.approx((row["simulated_p50"] - row["observed_p50"]) / FLOOR)
            assert np.isclose(terms, row["error"]).any()       # one term of the objective
            q[hop] = row["simulated_p50"]
        assert q[0.032] - q[0.002] == pytest.approx(0.030, abs=0.003)   # the broker hop is in it
    finally:
        c.dags = dags


def _lone_task_start(folder) -> float:
    """Median queued -> start of the chain's and diamond's tasks (one task at a time: the
    machine's own pace of forking and parsing, nothing competing)."""
    import pandas as pd
    t = pd.read_csv(folder / "task_instances.csv")
    t = t[t["dag_id"].isin(["chain", "diamond"]) & (t["state"] == "success")]
    q, s = (pd.to_datetime(t[c], format="ISO8601") for c in ("queued_dttm", "start_date"))
    return float((s - q).dt.total_seconds().median())


def test_lone_tasks_start_at_their_sessions_pace():
    """The measured reason for a speed per session: lone tasks' start-up (fork, parsing, CPU work)
    clusters by measuring session, not by setting. The same VM type started them at 0.35-0.39 s in
    the first af210-wide session, 0.32-0.33 s in the second, 0.30-0.31 s in the shared runs; the
    ranges do not overlap, while within a session parallelism 2 to 32 and Local or Celery move it
    little. (A chain's makespan follows: 13-16 s in the faster sessions, 16-20 s in the slower.)"""
    by = {}
    for folder in [DATA / "local-p8", DATA / "celery-p8-c4", *sorted((DATA / "af210-wide").iterdir())]:
        if (folder / "machine.yaml").is_file() and "overlap" not in folder.name:
            from sim.calibration.joint import _session
            by.setdefault(_session(folder), []).append(_lone_task_start(folder))
    ranges = {k: (min(v), max(v)) for k, v in by.items()}
    assert len(ranges) == 3 and all(len(v) >= 2 for v in by.values())
    order = sorted(ranges, key=lambda k: ranges[k][0])
    assert order == ["shared-2026-11-24", "af210-wide-2", "af210-wide-1"], ranges
    for faster, slower in zip(order, order[1:]):
        assert ranges[faster][1] < ranges[slower][0], ranges


def test_each_session_gets_its_own_machine_speed(configs):
    sessions = {c.name: c.session for c in configs}
    assert sessions["local-p8"] == sessions["celery-p8-c4"] == "shared-2026-11-24"
    assert sessions["local-p16"] == "af210-wide-1" and sessions["local-p4"] == "af210-wide-2"
    assert reference_session(configs) == "af210-wide-1"          # the most configurations
    speeds = [n for n in _names(configs, None) if n.startswith(SPEED)]
    assert speeds == [SPEED + "af210-wide-2", SPEED + "exit-path-2026-12-07T01:50Z", SPEED + "shared-2026-11-24"]
    fitted = {SPEED + "af210-wide-2": 1.1}
    assert sections_for(by_name(configs, "local-p4"), fitted)["overheads"]["cpu_speed"] == 1.1
    assert sections_for(by_name(configs, "local-p16"), fitted)["overheads"].get("cpu_speed", 1.0) == 1.0


def test_session_speeds_start_from_how_soon_lone_tasks_started(configs):
    """The fit's start for each session's speed: the reference session's lone-task queued -> start
    over the session's, executor by executor (faster sessions > 1; the fit refines it)."""
    from sim.calibration.joint import speed_start
    guess = speed_start(configs, "af210-wide-1")
    assert set(guess) == {SPEED + "af210-wide-2", SPEED + "exit-path-2026-12-07T01:50Z", SPEED + "shared-2026-11-24"}
    assert 1.03 < guess[SPEED + "af210-wide-2"] < guess[SPEED + "shared-2026-11-24"] < 1.3, guess
    assert speed_start([by_name(configs, "local-p16")], "af210-wide-1") == {}


def test_runs_that_shared_the_machine_with_a_rejected_run_are_dropped():
    """In local-p2 an aborted attempt's fan-out (not in contention.csv) ran on for 845 s; the next
    attempt's first diamond ran beside it and waited 53 s for the two slots (usually 11 s). It is
    dropped with the rejected run; the other diamonds are kept, and no other folder loses a run."""
    import pandas as pd

    from sim.calibration.joint import _clean_runs, _overlapping

    tis, drs = _clean_runs(DATA / "af210-wide" / "local-p2")
    diamonds = drs[drs["dag_id"] == "diamond"]
    mk = (pd.to_datetime(diamonds["end_date"], format="ISO8601")
          - pd.to_datetime(diamonds["start_date"], format="ISO8601")).dt.total_seconds()
    assert "local_p2__diamond__0__1796454472483" not in set(drs["run_id"])
    assert len(diamonds) == 2 and mk.max() < 15.0
    assert set(tis["run_id"]) == set(drs["run_id"])
    # a run is dropped only if its time overlaps a rejected one's
    t = lambda s: f"2026-01-01T00:00:{s:02d}+00:00"   # noqa: E731
    d = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "start_date": [t(0), t(5), t(20), t(30)],
                      "end_date": [t(10), t(15), t(25), None]})
    assert _overlapping(d, {"a"}) == {"b"}
    assert _overlapping(d, {"d"}) == set()
    assert _overlapping(d, set()) == set()


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


def test_runs_triggered_at_once_are_scored_by_their_medians(configs):
    """Under overlapping load one diamond run in three loses a priority race (4x slower, real and
    simulated): over 3 runs a mean counts coin tosses, so those configurations score medians."""
    from sim.calibration.fit import _objective_terms, _quality
    assert {c.name for c in configs if c.problem.statistic == "p50"} == {c.name for c in configs
                                                                         if c.problem.concurrent > 1} != set()
    for name, stat in (("local-p16-overlap4", "p50"), ("local-p16", "mean")):
        p = by_name(configs, name).problem
        o = p.observed[p.observed["dag_id"] == "diamond"]
        # a simulation whose medians match the real ones and whose means are 50 % off
        sim = {("diamond", r["stage"]): (1.5 * r["mean"] + 1.0, r["p50"]) for _, r in o.iterrows()}
        terms = _objective_terms(p, sim, ["diamond"])
        q = _quality(p, sim, "fit", ["diamond"])
        assert set(q["statistic"]) == {stat}
        if stat == "p50":
            assert np.allclose(terms, 0.0) and np.allclose(q["error"], 0.0)
            assert "(medians" in error_table(q.assign(configuration=name))
        else:
            assert (np.abs(terms) > 0.4).all() and "medians" not in error_table(q.assign(configuration=name))
    # the chain: 3 runs, its makespan scored by their median; the diamond: 2 kept runs (11.4 and
    # 48.6 s, the race lost once), whose median is their mean, so it is shown but not scored
    p = by_name(configs, "local-p16-overlap4").problem
    q = _quality(p, p.simulate(sections_for(by_name(configs, "local-p16-overlap4"), {}), (0,)), "fit",
                 ["chain", "diamond"]).set_index(["dag_id", "stage"])
    assert q.loc[("chain", "makespan"), "scored"] and not q.loc[("diamond", "makespan"), "scored"]
    assert q.loc[("diamond", "makespan"), "observed_max"] > 4 * q.loc[("diamond", "makespan"), "observed_min"]
    assert len(_objective_terms(p, {}, ["chain", "diamond"])) == len(q) - 1
    assert "2 runs, not scored" in error_table(q.reset_index().assign(configuration="local-p16-overlap4"))


def test_the_held_out_summary_counts_only_scored_makespans():
    import pandas as pd
    from sim.calibration.joint import held_out_summary
    q = pd.DataFrame({"stage": ["makespan"] * 4 + ["duration"], "error": [0.02, -0.10, 0.30, -0.62, 5.0],
                      "scored": [True, True, True, False, True]})
    assert held_out_summary(q) == ("held-out makespans: median |error| 10.0%, worst 30.0%, 67% within 15 % "
                                   "(1 not scored, shown above)")
    assert "not scored" not in held_out_summary(q.drop(columns="scored"))


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


def test_a_second_round_searches_again_from_where_the_first_ended(configs):
    """joint_fit(rounds=2) is the search run twice, the second from the first's result with a budget
    of its own: the same values as two fits one after the other, and never a worse objective."""
    from sim.errors import SimError
    two = [dataclasses.replace(by_name(configs, n), dags=["chain", "fanout0"]) for n in ("local-p2", "local-p16")]
    kw = dict(fit=["overheads.task_exit_latency", "overheads.process_start_fork"], seeds=(0,), max_evaluations=12)
    first = joint_fit(two, **kw)
    again = joint_fit(two, **kw, start=first.fitted)
    both = joint_fit(two, **kw, rounds=2)
    assert both.fitted == pytest.approx(again.fitted, rel=1e-9)
    assert both.objective == pytest.approx(again.objective, rel=1e-9) and both.objective <= first.objective
    assert both.evaluations == first.evaluations + again.evaluations
    with pytest.raises(SimError, match="rounds"):
        joint_fit(two, **kw, rounds=0)


def test_a_staged_fit_searches_first_with_its_settings_then_from_there_without(configs):
    """joint_fit(first=...) is a fit of configurations with those settings on top, then a fit of
    them as they are started where it ended: the same values, the two budgets together."""
    first = {"overheads.task_exit_latency": 0.0}              # (the profile's, measured: 0.0265 s)
    two = [dataclasses.replace(by_name(configs, n), dags=["chain", "fanout0"]) for n in ("local-p2", "local-p16")]
    off = [dataclasses.replace(c, problem=copy.copy(c.problem)) for c in two]
    for c in off:
        assert c.problem.known.keys().isdisjoint(first)      # it comes from the profile
        c.problem.known = {**c.problem.known, **first}
    kw = dict(fit=["overheads.task_background_cpu", "overheads.process_start_fork"], seeds=(0,), max_evaluations=12)
    pre = joint_fit(off, **kw)
    then = joint_fit(two, **kw, start=pre.fitted)
    staged = joint_fit(two, **kw, first=first)
    assert staged.fitted == pytest.approx(then.fitted, rel=1e-9)
    assert staged.objective == pytest.approx(then.objective, rel=1e-9)
    assert staged.evaluations == pre.evaluations + then.evaluations
    # the first stage held the exit's wait at 0: scored as they are, its point scores differently
    assert joint_fit(two, **kw).objective != pytest.approx(pre.objective, rel=1e-9)


def test_a_fit_over_two_sessions_fits_the_other_sessions_speed(configs, tmp_path):
    # copies: the module's configurations keep every DAG for the tests after this one
    two = [dataclasses.replace(by_name(configs, n), dags=["chain", "diamond"]) for n in ("local-p4", "local-p16")]
    fit = joint_fit(two, fit=["overheads.task_exit_latency"], seeds=(0,), max_evaluations=8,
                    reference="af210-wide-1")
    assert set(fit.fitted) == {"overheads.task_exit_latency", SPEED + "af210-wide-2"}
    from sim.calibration.joint import write_joint_profile
    from sim.scenario import load_profile
    text = write_joint_profile(fit, tmp_path / "p.yaml", "airflow-2.10").read_text()
    assert "session af210-wide-1" in text and "af210-wide-2 " in text     # a comment, not a setting
    assert load_profile(str(tmp_path / "p.yaml"))["overheads"].get("cpu_speed", 1.0) == 1.0


@pytest.fixture(scope="module")
def new_session_makespans(new_session):
    """Predicted once for the two tests below."""
    return _held_out_makespans(new_session)                # 2 seeds: one swung a fan-out 4 points


def test_a_session_the_fit_never_saw_is_predicted_from_its_diamonds_speed(new_session, new_session_makespans):
    """data/airflow-runs/new-session: a fourth session, measured after the profile was fitted, at
    two settings the training set has (Local p8, Celery p16 c8). Its chains took 12.6-12.8 s
    against 16.0 and 16.6 s in the sessions the fit saw. Only its machine's speed is fitted, and on
    the diamonds' lone tasks alone (the new_session fixture); the chains and fan-outs are predicted."""
    from sim.calibration.joint import JointFit
    new, speeds = new_session
    assert all(1.15 < v < 1.6 for v in speeds.values())   # faster than the reference machine, as its lone tasks were
    mk = new_session_makespans
    print(speeds, mk.to_dict())
    others = mk.drop(("local-p8", "chain"))                # (its own test below)
    assert len(others) == 7 and (others.abs() <= 0.15).all(), mk.to_dict()
    # at the profile's own speed the same chains come out over 25 % long
    slow = JointFit({}, 0, 0, 0, (0,), new).quality().query("stage == 'makespan'").set_index(
        ["configuration", "dag_id"])["error"]
    assert (slow.xs("chain", level="dag_id") > 0.25).all()


def _held_out_makespans(session, seeds=(0, 1)):
    """A held-out folder's makespan errors, each configuration at its session's fitted speed, the
    mechanisms as shipped."""
    from sim.calibration.joint import JointFit
    new, speeds = session
    fit = JointFit(speeds, 0, 0, 0, seeds, new)
    return fit.quality().query("stage == 'makespan'").set_index(["configuration", "dag_id"])["error"]


@pytest.fixture(scope="module")
def process_cpu_makespans(process_cpu_session):
    """Predicted once for the two tests below."""
    return _held_out_makespans(process_cpu_session)


@pytest.mark.xfail(strict=True, reason="known gap (issue #11 note): new-session's Local p8 chain is predicted 18.2 % "
                                       "long with the cores shared among Linux's autogroups and the profile refitted "
                                       "(+6.9 % before): each link's queued -> end is within tens of ms of the loop "
                                       "that queues the next, and the refit's waits (task_run_latency 3.8 -> 9.2 ms) "
                                       "tip more links past it (background.md, 'A database on Airflow's own host')")
def test_a_fast_session_s_lone_local_chain_is_predicted_from_its_diamonds_speed(new_session_makespans):
    """new-session's Local p8 chain (12.8 s; 16.0 s in local-p8's session at nearly the same speed)
    within 15 %, as the other seven makespans of the session above."""
    mk = new_session_makespans
    assert abs(mk[("local-p8", "chain")]) <= 0.15, mk.to_dict()


def test_a_slower_session_the_fit_never_saw_has_its_chains_predicted_from_its_diamonds_speed(
        process_cpu_session, process_cpu_makespans):
    """data/airflow-runs/process-cpu: a fifth session, on a slower machine (its diamonds' speed
    about 0.8 of the reference machine's; new-session's 1.3). Its chains took 19.8-20.6 s against
    new-session's 12.6-13.1 s at the same settings: each link waited one more idle loop, because a
    0.5 s task's queued -> end, slower here, ended after the loop's next pass more often. Only the
    speed is fitted, on the diamonds; the chains, and so that phase effect, are predicted."""
    new, speeds = process_cpu_session
    assert all(0.6 < v < 1.0 for v in speeds.values())    # slower than the reference machine, as its lone tasks were
    mk = process_cpu_makespans
    print(speeds, mk.to_dict())
    assert (mk.xs("chain", level="dag_id").abs() <= 0.10).all(), mk.to_dict()


def test_a_slower_session_the_fit_never_saw_has_its_fan_outs_predicted_from_its_diamonds_speed(
        process_cpu_makespans):
    """process-cpu's fan-outs, Local's and Celery's, within 15 %, each configuration at its own
    session's speed (local-p8 was measured again in a second harness invocation). With the speed
    fitted on the diamonds' stage errors instead of their lone starts, Celery's came out 11-24 %
    short: a dip of that bumpy objective, not the model."""
    mk = process_cpu_makespans
    fan = mk[mk.index.get_level_values("dag_id").str.startswith("fanout")]
    assert len(fan) == 6 and (fan.abs() <= 0.15).all(), fan.to_dict()


def test_settings_and_a_workload_the_fit_never_saw_are_predicted_from_the_diamonds_speed(
        held_out_settings_session):
    """data/airflow-runs/held-out: a sixth session (a slower machine again, the harness alone, no
    sampler) at settings no fit has seen (LocalExecutor parallelism 12, Celery parallelism 12 with
    concurrency 6) and a workload never measured before (widefan: start >> 120 x `sleep 1` >> end,
    at Local p32 and Celery p16 c8). Only the speed is fitted, on the diamonds; every chain and
    fan-out makespan is predicted, within the 15 % the cross-validation asks of held-out
    configurations. (A strict xfail from 2026-12-07 to the host's groups, 2026-12-08: Local p12's
    1 s fan-out was predicted 17.2 % long; with the cores shared among Linux's autogroups and the
    profile refitted, +13.7 %.)"""
    new, speeds = held_out_settings_session
    assert all(0.6 < v < 1.0 for v in speeds.values())    # slower than the reference machine, as its lone tasks were
    mk = _held_out_makespans(held_out_settings_session)
    print(speeds, mk.to_dict())
    predicted = mk[mk.index.get_level_values("dag_id") != "diamond"]
    assert set(predicted.index.get_level_values("dag_id")) == {"chain", "fanout", "fanout0", "widefan"}
    assert (predicted.abs() <= 0.15).all(), predicted.to_dict()


def test_settings_a_shape_and_cpu_bound_celery_tasks_no_fit_has_seen_are_predicted_from_the_diamonds_speed(
        held_out_3_session):
    """data/airflow-runs/held-out-3, measured after every fit and cross-validation: LocalExecutor
    parallelism 24 and Celery p16 with concurrency 12 (settings no session has), the etl DAG
    (eight chains side by side between an extract and a load, mixed durations: a shape never
    measured) and cpufanout (CPU-bound bodies, never measured under Celery). Only the speed is
    fitted, on the diamonds' lone tasks (1.39, a fast machine); the etl and cpufanout makespans are
    predicted within 15 % (measured: etl -2.5 % and -4.7 %, cpufanout -8.8 % on Celery and -14.6 %
    on Local p24, both short)."""
    new, speeds = held_out_3_session
    assert all(1.2 < v < 1.6 for v in speeds.values())
    mk = _held_out_makespans(held_out_3_session)
    print(speeds, mk.to_dict())
    predicted = mk[mk.index.get_level_values("dag_id") != "diamond"]
    assert set(predicted.index.get_level_values("dag_id")) == {"etl", "cpufanout"} and len(predicted) == 4
    assert (predicted.abs() <= 0.15).all(), predicted.to_dict()


def _most_at_once(tis: pd.DataFrame) -> int:
    """The most tries between their queueing and their end at one moment (what a pool's or a
    DAG's cap counts: queued and running)."""
    marks = sorted([(t, 1) for t in tis["queued_at"]] + [(t, -1) for t in tis["ended_at"]])
    return int(np.max(np.cumsum([d for _, d in marks])))


def test_a_pool_a_dag_cap_retries_and_a_rescheduling_sensor_are_predicted_from_the_diamonds_speed(features_session):
    """data/airflow-runs/features, measured after every fit: Airflow's own limits and retries, at
    settings the fit knows (Local p16, Celery p16 c8), on DAGs no fit has used: 24 one-second tasks
    through a pool of 4 slots, the same under the DAG's max_active_tasks 6, a chain of 4 whose every
    task fails its first try (retry_delay 2 s), and a sensor in reschedule mode (poke_interval 3 s)
    that holds at its third poke. Only the speed is fitted, on the diamonds' lone tasks (1.44); the
    rest is predicted (measured: pooled -4.3 % Local, -6.2 % Celery; capped +0.4 % and -5.0 %;
    retry -0.5 % and +1.4 %; sensed -2.3 % and +2.2 %). The replay keeps the limits as Airflow did:
    at most 4 and 6 tries queued or running at once, two tries a retried task, three pokes a run."""
    new, speeds = features_session
    assert all(1.2 < v < 1.6 for v in speeds.values())
    mk = _held_out_makespans(features_session)
    print(speeds, mk.to_dict())
    predicted = mk[mk.index.get_level_values("dag_id") != "diamond"]
    assert set(predicted.index.get_level_values("dag_id")) == {"pooled", "capped", "retry", "sensed"}
    assert len(predicted) == 8 and (predicted.abs() <= 0.15).all(), predicted.to_dict()
    for c in new:
        real = pd.read_csv(c.folder / "task_instances.csv")
        for col, exported in (("queued_at", "queued_dttm"), ("ended_at", "end_date")):
            real[col] = (pd.to_datetime(real[exported], format="ISO8601", utc=True)
                         - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        tis, _ = c.problem.replayed(sections_for(c, speeds), 0)
        for frame in (real, tis):
            runs = lambda dag, prefix: [g for _, g in frame[(frame["dag_id"] == dag) & frame["task_id"].str.startswith(
                prefix)].groupby("run_id", observed=True)]
            assert [_most_at_once(g) for g in runs("pooled", "r")] == [4, 4, 4]
            assert [_most_at_once(g) for g in runs("capped", "")] == [6, 6, 6]
        assert (tis[tis["dag_id"] == "retry"].groupby(["run_id", "task_id"], observed=True).size() == 2).all()
        assert (tis[(tis["dag_id"] == "sensed") & (tis["task_id"] == "wait")].groupby(
            "run_id", observed=True).size() == 3).all()


def test_task_mapping_and_trigger_rules_after_a_failure_are_predicted_from_the_diamonds_speed(features_2_session):
    """data/airflow-runs/features-2, measured after every fit (Local p16, Celery p16 c8): `mapped`
    (twelve instances of a task, made once its upstream succeeded) and `rules` (a fails; b,
    all_success, is upstream_failed; c, one_failed, and z, all_done, run). Only the speed is fitted,
    on the diamonds' lone tasks (1.40); measured: mapped -11.4 % Local, -7.2 % Celery (the twelve
    loaded starts are short, the known gap of test_a_loaded_start_stretches_as_real_airflow_s_did); rules -9.0 %
    and -7.4 %, where the real runs spread 4.1-6.1 s: c is queued at the first loop after a's
    failure, 0.1 to 1.1 s later as the loop's phase falls (-12.5 % on Local before the model ran the
    mini-scheduler after a failure). The replay marks b upstream_failed and runs c and z, as Airflow did."""
    new, speeds = features_2_session
    assert all(1.2 < v < 1.6 for v in speeds.values())
    mk = _held_out_makespans(features_2_session)
    print(speeds, mk.to_dict())
    predicted = mk[mk.index.get_level_values("dag_id") != "diamond"]
    assert set(predicted.index.get_level_values("dag_id")) == {"mapped", "rules"}
    assert len(predicted) == 4 and (predicted.abs() <= 0.15).all(), predicted.to_dict()
    for c in new:
        tis, _ = c.problem.replayed(sections_for(c, speeds), 0)
        rules = tis[tis["dag_id"] == "rules"].assign(task_id=lambda d: d["task_id"].astype(str),
                                                     state=lambda d: d["state"].astype(str))
        assert rules.groupby("task_id")["state"].agg(set).to_dict() == \
            {"a": {"failed"}, "b": {"upstream_failed"}, "c": {"success"}, "z": {"success"}}
        mapped = tis[(tis["dag_id"] == "mapped") & (tis["task_id"] == "m")]
        assert (mapped.groupby("run_id", observed=True)["map_index"].nunique() == 12).all()


def test_a_session_measured_after_the_cross_validation_is_predicted_from_its_diamonds_speed(start_load_session):
    """data/airflow-runs/start-load: an eighth session, measured after this fit and its
    cross-validation (LocalExecutor p16 and p32, each a training setting, on a machine of speed
    1.22 by its diamonds' lone tasks). Every fan-out's makespan within 4.2 % (measured)."""
    new, speeds = start_load_session
    assert all(1.1 < v < 1.35 for v in speeds.values())
    mk = _held_out_makespans(start_load_session)
    print(speeds, mk.to_dict())
    assert (mk.abs() <= 0.15).all(), mk.to_dict()


@pytest.mark.parametrize("config", [
    pytest.param("local-p16", marks=pytest.mark.xfail(
        strict=True, reason="known gap (issue #11 note): with the cores shared among Linux's autogroups (the "
                            "background CPU in PostgreSQL's group, the starts in the scheduler's) and the profile "
                            "refitted, p16's loaded start stretches 8.2x against the measured 7.5x (+10.5 %; 8.1x "
                            "before)")),
    "local-p32"])
def test_a_loaded_start_stretches_as_real_airflow_s_did(start_load_session, config):
    """The fan-outs' middle tasks' queued -> start over the lone tasks' (the diamond's first and
    last, the fan-outs' start and end), real against the model at the session's speed: within 10 %.
    Real: 7.5x (p16) and 15.1x (p32). The model: 8.2x and 15.9x with a try's background CPU done
    where it was measured (0.38 of it before start_date: PostgreSQL serving the start's queries
    shares the cores with the starts) in PostgreSQL's group of the host, 8.1x and 15.9x with the
    cores shared among all processes alike, 6.5x and 12.7x when the profile did it all at the exit
    (a strict xfail until 2026-12-07)."""
    from sim.calibration.model import simulated_observations
    new, speeds = start_load_session
    lone_ids = {"t1", "t4", "start", "end"}
    ratios = {}
    for c in new:
        if c.name != config:
            continue
        o = c.problem.obs
        loaded = o["dag_id"].isin(["fanout", "fanout0"]) & ~o["task_id"].isin(lone_ids)
        real = o.loc[loaded, "queued_to_started"].median() / o.loc[o["task_id"].isin(lone_ids), "queued_to_started"].median()
        sec = sections_for(c, speeds)
        p = c.problem
        model = []
        for seed in (0, 1):
            m = simulated_observations(*p.replayed(sec, seed, p.bodies(sec)), p.roots)
            ld = m["dag_id"].isin(["fanout", "fanout0"]) & ~m["task_id"].isin(lone_ids)
            model.append(m.loc[ld, "queued_to_started"].median() / m.loc[m["task_id"].isin(lone_ids), "queued_to_started"].median())
        ratios[c.name] = (real, float(np.mean(model)))
    print(ratios)
    assert len(ratios) == 1 and all(abs(m / r - 1) <= 0.10 for r, m in ratios.values()), ratios


def test_a_session_measured_after_the_speed_fit_was_chosen_is_predicted_from_its_diamonds_speed(
        held_out_2_session):
    """data/airflow-runs/held-out-2: a seventh session, measured after `--speed-only` was changed to
    fit lone tasks' start-up (chosen while looking at the three sessions above), at settings no
    session has (LocalExecutor parallelism 6, Celery parallelism 10 with concurrency 5). Only the
    speed is fitted, on the diamonds' lone starts; every chain and fan-out makespan within 15 %."""
    new, speeds = held_out_2_session
    assert all(0.6 < v < 1.2 for v in speeds.values())
    mk = _held_out_makespans(held_out_2_session)
    print(speeds, mk.to_dict())
    predicted = mk[mk.index.get_level_values("dag_id") != "diamond"]
    assert len(predicted) == 6 and (predicted.abs() <= 0.15).all(), predicted.to_dict()


@pytest.mark.slow
def test_the_shipped_mechanisms_of_a_try_are_a_minimum_of_the_joint_objective(configs):
    """The shipped airflow-2.10 values are what the committed data fit: moving any one of a try's
    fitted CPU mechanisms, or its start wait, by x0.8 or x1.25 (the rest as shipped) raises the
    joint objective on the 17 training configurations (2 seeds). process_start_fork (0.3043) lies
    within 2 % of where every fit starts (joint.START, 0.3): this checks that the data put the
    minimum there, not that the search never moved it. (The exit's wait and CPU are measured, not
    fitted, since 2026-12-07.)"""
    from sim.calibration.joint import JOINT_FIT, _errors, _loss
    from sim.scenario import load_profile
    prof = load_profile("airflow-2.10")
    shipped = {k: float(prof[k.split(".")[0]][k.split(".")[1]]) for k in JOINT_FIT}
    speeds = {SPEED + "af210-wide-2": 1.205, SPEED + "exit-path-2026-12-07T01:50Z": 1.171,
              SPEED + "shared-2026-11-24": 1.211}                        # the fit's (the profile's cpu_speed comment)

    def objective(**moved):
        fitted = {**shipped, **speeds, **moved}
        return float(np.mean([_loss(_errors(c, fitted, (0, 1))) for c in configs]))

    base = objective()
    raised = {}
    for key in ("overheads.process_start_fork", "overheads.task_run_cpu", "overheads.task_background_cpu",
                "overheads.process_start_latency"):
        for factor in (0.8, 1.25):
            raised[(key, factor)] = objective(**{key: shipped[key] * factor}) - base
    print(base, raised)
    assert all(r > 0.0 for r in raised.values()), raised


def test_cli_speed_only_fits_a_machine_and_writes_a_profile_at_its_speed(tmp_path, capsys):
    """`sim calibrate-all FOLDER --speed-only`: the base profile's mechanisms as they are, the
    session's cpu_speed against its machine, written as a profile that extends the base."""
    out = tmp_path / "mine.yaml"
    assert cli(["calibrate-all", str(DATA / "new-session"), "--speed-only", "--dag", "diamond", "--seeds", "1",
                "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "session new-session-2026-12-05T22:33Z: cpu_speed" in text
    assert "(10 speeds simulated x 1 seeds)" in text and "a lone task's queued -> start: recorded 0.2" in text
    from sim.scenario import load_profile
    assert "is the recorded 0.291 s" in out.read_text()          # what fixed it, in the file
    speed = load_profile(str(out))["overheads"]["cpu_speed"]
    assert 1.15 < speed < 1.6                    # faster than the profile's machine, as its lone tasks were
    assert load_profile(str(out))["overheads"]["task_run_cpu"] == load_profile("airflow-2.10")["overheads"]["task_run_cpu"]
    # several sessions cannot share one profile's speed; nothing to cross-validate without mechanisms
    two = [str(DATA / "new-session"), str(DATA / "local-p8")]
    assert cli(["calibrate-all", *two, "--speed-only", "--dag", "diamond", "--seeds", "1",
                "--out", str(tmp_path / "two.yaml")]) == 2
    assert "2 sessions" in capsys.readouterr().err and not (tmp_path / "two.yaml").exists()
    assert cli(["calibrate-all", two[0], "--speed-only", "--cross-validate"]) == 2
    # configurations of one session whose lone tasks started far apart are pointed out
    assert cli(["calibrate-all", str(DATA / "held-out-2"), "--speed-only", "--dag", "diamond", "--seeds", "1",
                "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "celery-p10-c5 0.489 s, local-p6 0.370 s (32 % apart: one speed splits the difference" in text
    # a scan has no optimiser budget: a budget given is refused, not silently ignored
    assert cli(["calibrate-all", two[0], "--speed-only", "--evaluations", "12"]) == 2
    assert "--evaluations" in capsys.readouterr().err


def test_cli_calibrate_all_bad_folder_exits_2(tmp_path, capsys):
    assert cli(["calibrate-all", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err


def test_cli_calibrate_all_refuses_rounds_it_cannot_run(capsys):
    folder = str(DATA / "local-p8")
    assert cli(["calibrate-all", folder, "--rounds", "0"]) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err
    assert cli(["calibrate-all", folder, "--speed-only", "--rounds", "2"]) == 2
    assert "no search to repeat" in capsys.readouterr().err
    for bad, why in (("overheads.nope=0", "unknown overheads setting(s): nope"),
                     ("overheads.task_run_cpu=0", "it is fitted"),
                     ("overheads.task_background_in_run=x", "expected a number"),
                     ("task_background_in_run", "expected SECTION.KEY=VALUE")):
        assert cli(["calibrate-all", folder, "--first", bad]) == 2
        err = capsys.readouterr().err
        assert why in err and "--first" in err and "Traceback" not in err, err


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue #11's acceptance check, not met yet: 29 of 30 held-out fan-out and "
                                       "chain makespans within 15 % at the speed of each configuration's other "
                                       "DAGs' lone tasks (local-p8-b's chain -21.1 %, its speed from its diamond's "
                                       "8 lone tries); Celery c16 predicted 5.6 % slower than c8 on the 1 s fan-out, "
                                       "real 4.5 % slower (docs/howto.md, the cross-validation table)")
def test_leave_one_configuration_out_predicts_every_held_out_makespan_within_15_percent():
    configs = load_configurations(ALL, REST)
    q = cross_validate(configs, seeds=(0,), max_evaluations=120, processes=2, rounds=2,      # speed="lone"
                       first={"overheads.task_background_at_launch": 0.0, "overheads.task_background_in_run": 0.0})
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
