"""The mechanisms issue #11 found in real Airflow 2.10, each shown by the model with the shipped
`airflow-2.10` profile told only what the measuring machine is (2 cores, the Celery worker on the
same host), and compared with the real runs of data/airflow-runs where they exist.

1. Slot turnover is waiting, not CPU: from a task's end to the next task queued in its slot took
   1.2-1.7 s in every real configuration from parallelism 2 to 16.
2. Celery past the broker's backlog: concurrency 16 at parallelism 16 was no faster than 8 on the
   fan-out of 1 s tasks (the round trip through the scheduler is exposed to every child).
3. No phase-lock: the loop's timers move its phase, so a chain's makespan follows its tasks'
   durations smoothly and varies from run to run.
4. Airflow 3's supervisor notices a share of task exits only at its select time-out,
   min_heartbeat_interval after the task's end, and holds its worker meanwhile: measured in the
   3.3.2 logs, 313 of 882 tries held 5.04 s (median) past their run, the rest 0.03-0.13 s.
5. A loop that only processed executor events sleeps: _process_executor_events returns
   len(event_buffer) after popping each event it processed (2.10.5 and 3.3.2), so the slot a task's
   end freed is refilled by the very next loop only when that loop also queued something; in the
   scheduler logs (executor_events.csv) 21-38 % of the fan-outs' events were followed by a queueing
   within 0.5 s, the rest about 1.08 s later (one idle sleep).
6. Under overlapping load a diamond's last task can starve: it has priority_weight 1, the fan-out's
   40 middle tasks 2, and the critical section takes the heavier first. When the fan-out's start
   ends before the diamond's t4 is queued, t4 waits for all 80 fan-out tasks: real diamonds took
   11.7, 11.4, 48.6 s (local-p16-overlap4) and 43.9, 10.9, 11.2 s (celery-p16-c8-overlap4).
7. A Celery scheduler's loops are longer than a LocalExecutor's (its sync() opens a new connection to
   the database result backend every loop) and a Celery child starts sooner (its worker preloaded
   the operators), so more of a Celery chain's links are caught by the loop after next: 49 %
   against 19 % in one session alternating the two (data/airflow-runs/exit-path).
8. The mini-scheduler holds its DAG run's row lock, which the scheduler's examination skips.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.calibration.inputs import slot_turnover
from sim.scenario import scenario_from_dict
from sim.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "airflow-runs"
MACHINE = {"scheduler_host_cores": 2}
#: task_background_cpu all at a try's exit, where the profiles put it until it was measured
AT_EXIT = {"task_background_at_launch": 0.0, "task_background_in_run": 0.0}


def simulate(dag: dict, *, parallelism: int, executor: str = "local", concurrency: int = 16, runs: int = 4,
             seed: int = 0, airflow: dict | None = None, overheads: dict | None = None,
             profile: str = "airflow-2.10", celery: dict | None = None):
    times = [f"{20 + 300 * i + 0.37 * i}s" for i in range(runs)]
    ex = {"kind": executor}
    if executor == "celery":
        ex["celery"] = {"worker_concurrency": concurrency, "workers_on_scheduler_host": True, **(celery or {})}
    doc = {"name": "mechanism", "seed": seed, "horizon": f"{300 * runs + 600}s", "profile": profile,
           "airflow": {"parallelism": parallelism, **(airflow or {})},
           "overheads": {**MACHINE, **(overheads or {})}, "executor": ex,
           "dags": [{**dag, "schedule": {"at": times}}]}
    return Simulation(scenario_from_dict(doc)).run()


def fanout(width: int = 40, seconds: float = 1.0) -> dict:
    mids = [f"p{i:02d}" for i in range(width)]
    return {"dag_id": "fanout", "max_active_tasks": 64,
            "tasks": {t: {"duration": f"{seconds}s"} for t in ["start", *mids, "end"]},
            "dependencies": f"start >> [{', '.join(mids)}] >> end"}


def real_turnover(config: str, dag: str = "fanout") -> float:
    folder = REAL / "af210-wide" / config if (REAL / "af210-wide" / config).is_dir() else REAL / config
    t = pd.read_csv(folder / "task_instances.csv")
    t = t[t["dag_id"] == dag].rename(columns={"queued_dttm": "queued_at", "end_date": "ended_at"})
    for c in ("queued_at", "ended_at"):
        t[c] = pd.to_datetime(t[c], format="ISO8601")
    return float(slot_turnover(t).median())


def model_turnover(parallelism: int, **kw) -> float:
    return float(slot_turnover(simulate(fanout(), parallelism=parallelism, **kw).task_instances).median())


def test_slot_turnover_is_nearly_constant_across_parallelism_as_measured():
    """From a task's end to the next task queued in its slot: 1.36-1.64 s real (medians) at
    parallelism 2-16. The model's median is the mean of 4 seeds' medians: at parallelism 16 one
    seed's median is a phase (whether a freed slot's next task catches the loop after the end or
    the one after), 0.86-1.57 s over seeds 0-3 with the shipped profile (1.31-1.80 s with the one
    before, whose background CPU was all at the exit)."""
    model = {p: float(np.mean([model_turnover(p, seed=s) for s in range(4)])) for p in (2, 4, 8, 16)}
    real = {p: real_turnover(f"local-p{p}") for p in (2, 4, 8, 16)}
    assert max(real.values()) / min(real.values()) < 1.35             # what the data say
    assert max(model.values()) / min(model.values()) < 1.35, model
    for p in model:
        assert model[p] == pytest.approx(real[p], rel=0.3), (p, model, real)


def test_a_database_on_the_host_stretches_a_loaded_start_not_a_lone_one():
    """data/airflow-runs/start-load: from the parsed line to start_date (the LocalTaskJob's row,
    its dependency checks, the state's update: the database's work) a loaded start took 6.5x and
    14.4x a lone one at p16 and p32, as its parse did (7.4x, 15.4x). With PostgreSQL on the two
    cores (metadata_db_on_scheduler_host, the measuring machine) that waiting is CPU there too:
    a lone start (the fan-out's first task) takes as long as with a database of its own, the
    loaded ones longer. (The try's background CPU is kept at its exit here: its launch share, most
    of it PostgreSQL's own work, would run beside the lone start on the shared cores and count the
    database's CPU twice.)"""
    def starts(on_host):
        t = simulate(fanout(), parallelism=16, runs=1, seed=3,
                     overheads={"metadata_db_on_scheduler_host": on_host, **AT_EXIT}).task_instances
        q2s = t["started_at"] - t["launched_at"]
        return float(q2s[t["task_id"] == "start"].iloc[0]), float(q2s[~t["task_id"].isin(["start", "end"])].median())
    (lone_own, loaded_own), (lone_shared, loaded_shared) = starts(False), starts(True)
    assert lone_shared == pytest.approx(lone_own, abs=0.005)
    assert loaded_shared > loaded_own + 0.1


def test_the_loops_fixed_part_lengthens_the_turnover_not_the_launch():
    """The loop's fixed cost (DAG processor agent, job heartbeat, event logs, timers) comes after
    the executor heartbeat: it delays the freed slot's reuse by two loops' worth, but a queued task
    is launched by the heartbeat of the loop that queued it, without waiting for it."""
    def run(base):
        return simulate(fanout(8, 1.0), parallelism=2, runs=1, airflow={"loop_timers": False},
                        overheads={"scheduler_loop_base": base, "scheduler_host_cores": None,
                                   "overhead_cv": 0}).task_instances
    quick, slow = run(0.0), run(0.5)
    assert ((slow["launched_at"] - slow["queued_at"]) - (quick["launched_at"] - quick["queued_at"])).abs().max() < 0.05
    assert slot_turnover(slow).median() > slot_turnover(quick).median() + 0.3


def refill_after_event(tis: pd.DataFrame) -> np.ndarray:
    """Seconds from each try's slot release (its executor event) to the next queueing in its run."""
    out = []
    for _, g in tis.groupby("run_id", observed=True):
        q = np.sort(g["queued_at"].to_numpy(float))
        for t in g["released_at"].dropna().to_numpy(float):
            i = np.searchsorted(q, t, side="right")
            if i < len(q):
                out.append(q[i] - t)
    return np.array(out)


@pytest.mark.parametrize("config, parallelism, executor, concurrency",
                         [("local-p4", 4, "local", 16), ("celery-p16-c1", 16, "celery", 1)])
def test_a_loop_that_only_processed_events_sleeps_as_in_the_scheduler_logs(config, parallelism, executor,
                                                                            concurrency):
    real = pd.read_csv(REAL / "af210-wide" / config / "executor_events.csv")
    real = real[real["dag_id"] == "fanout"]["event_to_next_queued"].dropna().to_numpy()
    model = refill_after_event(simulate(fanout(40, 1.0), parallelism=parallelism, executor=executor,
                                        concurrency=concurrency).task_instances)
    soon_real, soon_model = (real < 0.5).mean(), (model < 0.5).mean()
    assert 0.2 < soon_real < 0.4                       # the data: mostly a sleep later
    assert abs(soon_model - soon_real) < 0.15, (soon_model, soon_real)
    assert np.median(model) == pytest.approx(np.median(real), abs=0.15)   # ~1.08 s: one idle sleep


def fanout_makespan(concurrency: int, seeds=(0, 1), seconds: float = 1.0, overheads: dict | None = None) -> float:
    out = []
    for seed in seeds:
        dr = simulate(fanout(seconds=seconds), parallelism=16, executor="celery", concurrency=concurrency,
                      seed=seed, overheads=overheads).dag_runs
        out += (dr["ended_at"] - dr["started_at"]).tolist()
    return float(np.mean(out))


def test_celery_concurrency_helps_until_the_cores_are_busy():
    """Real (af210-wide, p16, medians): c2 41.7 s, c8 22.3 s, c16 23.5 s on the fan-out of 1 s tasks."""
    c2, c8, c16 = (fanout_makespan(c) for c in (2, 8, 16))
    assert c2 > 1.4 * c8
    assert abs(c16 - c8) < 0.1 * c8          # past the broker's backlog: little either way


def real_makespans(folder: str, dag: str) -> pd.Series:
    """A recorded configuration's DAG runs of ``dag``: their makespans in seconds."""
    dr = pd.read_csv(REAL / folder / "dag_runs.csv")
    dr = dr[dr["dag_id"] == dag]
    return (pd.to_datetime(dr["end_date"], format="ISO8601")
            - pd.to_datetime(dr["start_date"], format="ISO8601")).dt.total_seconds()


def real_concurrency_makespans(dag: str) -> dict:
    """data/airflow-runs/celery-concurrency: c8 and c16 at p16 in alternating blocks (c8, c16, c8,
    c16), 3 runs of each fan-out per block: makespans by concurrency."""
    out = {}
    for folder in sorted((REAL / "celery-concurrency").glob("celery-p16-c*")):
        mk = real_makespans(f"celery-concurrency/{folder.name}", dag)
        out.setdefault(int(folder.name.split("-c")[1].split("-")[0]), []).extend(mk)
    return out


@pytest.mark.parametrize("dag", ["fanout", "fanout0"])
def test_real_celery_concurrency_16_is_slower_than_8(dag):
    """The measurement the next two tests follow: in alternating blocks, c16 was slower than c8 in
    both blocks, fan-out of 1 s tasks +3.7 % (means 22.22 vs 21.42 s) and of no-ops +9.4 %."""
    real = real_concurrency_makespans(dag)
    assert len(real[8]) == len(real[16]) == 6
    assert np.mean(real[16]) > np.mean(real[8])


def test_celery_concurrency_past_the_backlog_is_slower_for_no_op_tasks_as_measured():
    """Fan-out of no-op tasks (real +9.4 %, above): with nothing to wait on but Airflow's own work,
    twice the children only share the same two cores and add to the scheduler's contention. The
    model has it from where a try's background CPU is done (the test after next)."""
    c8, c16 = (fanout_makespan(c, seconds=0.0) for c in (8, 16))
    assert c16 > c8


@pytest.mark.xfail(strict=True, reason="known gap (issue #11 note): on the fan-out of 1 s tasks the model makes "
                                       "concurrency 16 and 8 a tie (-0.5 % over 8 seeds, -1.7 % over these 2; 5.8 % "
                                       "faster with the background CPU all at the exit); real Airflow was 3.7 % "
                                       "slower in alternating blocks (data/airflow-runs/celery-concurrency), "
                                       "-1.4 to +4.5 % over three sessions, none significant alone")
def test_celery_concurrency_past_the_broker_backlog_is_slower_as_measured():
    c8, c16 = (fanout_makespan(c) for c in (8, 16))
    assert c16 >= c8


def test_background_cpu_where_it_was_measured_makes_celery_16_slower_than_8_on_no_op_tasks():
    """What made concurrency 16 slower than 8, found in process-cpu's windows: a try's background
    CPU (most of it PostgreSQL serving the try's queries) is 38 % done before its start_date and 40 %
    during its run (table (b); the profile's task_background_at_launch and _in_run), not all after
    its exit. Done there, it loads the cores while the next wave starts, and twice the children
    starting at once cost more than they overlap: over 4 seeds concurrency 16 is 7 % slower than 8
    on the no-op fan-out (real +2.5 to +9.4 % in three sessions), and on the 1 s fan-out 1 % slower,
    where all at the exit (the profile's values otherwise) makes it 0.5 % and 6 % faster."""
    measured = {s: {c: fanout_makespan(c, range(4), s) for c in (8, 16)} for s in (0.0, 1.0)}
    at_exit = {s: {c: fanout_makespan(c, range(4), s, AT_EXIT) for c in (8, 16)} for s in (0.0, 1.0)}
    assert measured[0.0][16] > 1.02 * measured[0.0][8]
    assert at_exit[0.0][16] < measured[0.0][16] / measured[0.0][8] * at_exit[0.0][8]
    assert measured[1.0][16] / measured[1.0][8] > at_exit[1.0][16] / at_exit[1.0][8] + 0.02


def test_a_trys_background_cpu_is_the_same_total_wherever_it_is_done():
    """The shares only move the work in time: a lone chain books the same core-seconds either way
    (it runs on a free core, so nothing waits for them)."""
    def host_busy(overheads):
        doc = {"name": "bg", "seed": 0, "horizon": "60s", "profile": "airflow-2.10",
               "airflow": {"parallelism": 8}, "overheads": {**MACHINE, **overheads},
               "dags": [{**chain(0.5), "schedule": {"at": ["5s"]}}]}
        s = Simulation(scenario_from_dict(doc))
        t = s.run().task_instances
        return s.scheduler_host.busy_core_seconds, t
    (exit_busy, exit_t), (measured_busy, measured_t) = host_busy(AT_EXIT), host_busy({})
    assert measured_busy == pytest.approx(exit_busy, rel=1e-9)
    assert (measured_t["ended_at"] - measured_t["queued_at"]).median() == \
        pytest.approx((exit_t["ended_at"] - exit_t["queued_at"]).median(), abs=0.02)


def chain(seconds: float) -> dict:
    names = [f"c{i}" for i in range(10)]
    return {"dag_id": "chain", "tasks": {t: {"duration": f"{seconds}s"} for t in names},
            "dependencies": " >> ".join(names)}


def test_chain_makespan_follows_durations_without_phase_lock():
    """Real chains of 10 x 0.5 s took 14-20 s, run to run. The loop's timers are re-armed from
    when they ran (EventScheduler.call_regular_interval), so they drift across task durations and
    the model's runs vary too (before, on a fixed 5 s grid, chains of 0.6 s and more locked on,
    run-to-run sd 0.03 s), and past 0.55 s a 50 ms change in every task moves the makespan by
    about 10 x 50 ms, not by whole loops. (From 0.5 to 0.55 s the makespan rises about 2 s,
    11-13 %: there a link goes from one idle sleep to two, as the task ends before or after the
    sleep that followed its queueing; real 0.5 s chains spanned 13.2-19.5 s over the
    configurations, data/airflow-runs, with run-to-run sd from 0.05 to 1.3 s.) Every duration's sd
    must be 5x the locked model's at least: 0.27-0.64 s with the loop's examination as measured,
    0.33 s and up before."""
    means, spreads = [], []
    for ms in range(500, 801, 50):
        dr = simulate(chain(ms / 1000), parallelism=16, runs=8).dag_runs
        mk = (dr["ended_at"] - dr["started_at"]).to_numpy()
        means.append(mk.mean())
        spreads.append(mk.std())
    steps = np.diff(means)
    assert min(spreads) > 0.15, spreads
    assert np.abs(steps[1:]).max() < 0.1 * np.mean(means), (means, steps)
    assert 13.2 < means[0] < 19.5


def chain_link_times(t: pd.DataFrame, queued: str, ended: str) -> tuple[np.ndarray, np.ndarray]:
    """For each chain link, per DAG run: seconds from the upstream task's end to its successor's
    queueing, and between the two queueings."""
    links, spacings = [], []
    for _, g in t.groupby("run_id", observed=True):
        g = g.sort_values(queued)
        q, e = g[queued].to_numpy(float), g[ended].to_numpy(float)
        links += list(q[1:] - e[:-1])
        spacings += list(q[1:] - q[:-1])
    return np.array(links, dtype=float), np.array(spacings, dtype=float)


def chain_links(t: pd.DataFrame, queued: str, ended: str) -> np.ndarray:
    """Seconds from each chain task's end to its successor's queueing, per DAG run."""
    return chain_link_times(t, queued, ended)[0]


def real_chains(folder: str) -> pd.DataFrame:
    """A recorded configuration's chain task instances, queued_dttm and end_date in seconds."""
    t = pd.read_csv(REAL / folder / "task_instances.csv")
    t = t[t["dag_id"] == "chain"]
    epoch = pd.Timestamp(0, tz="UTC")
    return t.assign(**{c: (pd.to_datetime(t[c], format="ISO8601") - epoch).dt.total_seconds()
                       for c in ("queued_dttm", "end_date")})


def test_chain_links_fall_within_what_real_airflow_showed():
    """A chain's link is queued either by the loop right after its upstream's end (the
    mini-scheduler scheduled it; under 0.2 s) or one idle sleep later. The share of fast links
    depends on where task ends fall in the loop's cycle: over the measured LocalExecutor
    configurations of 0.5 s chains it was 0.04-0.44 (median link 0.32-0.97 s). A model locked onto
    the loop's phase puts every link on one side (share 0 or 1); the model must land inside the
    measured range at each parallelism."""
    shares, medians = [], []
    for folder in ("local-p8", "af210-wide/local-p4", "af210-wide/local-p16", "af210-wide/local-p32",
                   "af210-wide/local-p2"):
        links = chain_links(real_chains(folder), "queued_dttm", "end_date")
        shares.append((links < 0.2).mean())
        medians.append(np.median(links))
    for parallelism in (2, 4, 8, 16, 32):
        links = chain_links(simulate(chain(0.5), parallelism=parallelism, runs=6).task_instances,
                            "queued_at", "ended_at")
        assert min(shares) <= (links < 0.2).mean() <= max(shares), (parallelism, shares)
        assert min(medians) <= np.median(links) <= max(medians), (parallelism, medians)


def chain_configurations(executor: str) -> list[str]:
    """Every Airflow 2.10 configuration measured with the 0.5 s chain and no other load: the
    chain ran alone (the overlapping loads and Airflow 3 are left out)."""
    out = []
    for f in sorted(REAL.glob(f"**/{executor}-p*/task_instances.csv")):
        folder = f.parent.relative_to(REAL).as_posix()
        if "overlap" in folder or folder.startswith("af3"):
            continue
        if (pd.read_csv(f, usecols=["dag_id"])["dag_id"] == "chain").any():
            out.append(folder)
    return out


def real_chain_link(folder: str) -> tuple[float, float]:
    """(median seconds from a chain task's queueing to its end, mean chain makespan)."""
    t = real_chains(folder)
    return float(np.median(t["end_date"] - t["queued_dttm"])), float(real_makespans(folder, "chain").mean())


def model_chain_curve(executor: str, speeds, seeds=(0, 1, 2)) -> pd.DataFrame:
    """The model's 0.5 s chain on the measuring machine at each cpu_speed: its median link
    (queued -> end) and mean makespan."""
    rows = []
    for speed in speeds:
        links, spans = [], []
        for seed in seeds:
            r = simulate(chain(0.5), parallelism=8, executor=executor, concurrency=4, runs=6, seed=seed,
                         overheads={"cpu_speed": float(speed)})
            t, dr = r.task_instances, r.dag_runs
            links += list(t["ended_at"] - t["queued_at"])
            spans += list(dr["ended_at"] - dr["started_at"])
        rows.append((speed, float(np.median(links)), float(np.mean(spans))))
    return pd.DataFrame(rows, columns=["speed", "link", "makespan"]).sort_values("link")


@pytest.mark.parametrize("executor", [
    pytest.param("local", marks=pytest.mark.xfail(
        strict=True, reason="known gap (issue #11 note): with the profile fitted with the background's "
                            "measured shares (2026-12-07), Local chains given their link come out 5.4 % short on "
                            "average, exit-path/local-p8-b -12.8 %, held-out-2/local-p6 -10.5 %, local-p8 -10.4 % "
                            "(-8.6..+4.0 % before): the loop right after an end catches more links than real")),
    "celery"])
def test_given_its_measured_link_a_chains_makespan_is_predicted_as_measured(executor):
    """A chain's makespan is a knife edge of its link (queued -> end; medians of 0.95-1.38 s in the
    24 measured configurations): a task that ends before the loop after the one that queued it
    has run its critical section gets its successor queued at once, else one idle sleep later.
    Real chains took 12.8 s at a median link of 0.953 s and 17.4 s at 1.045 s. The model, at the
    cpu_speed that gives each configuration's measured link, predicts its chain makespan within
    12 % in every configuration (when written: Local -8.6..+4.0 %, Celery -9.7..+0.5 %, short by
    3 % on average: the model still catches about 30 % of links of 1.1-1.3 s in the loop right
    after, real Airflow 11-26 %). This tests the loops' mechanism alone: what a configuration's
    link will be is the machine's speed, which the fit takes from the diamonds (the next test)."""
    curve = model_chain_curve(executor, np.arange(0.65, 1.71, 0.05))
    assert curve["link"].min() < 0.95 and curve["link"].max() > 1.38     # spans the measured links
    folders = chain_configurations(executor)
    assert len(folders) >= (11 if executor == "local" else 13)
    errors = {}
    for folder in folders:
        link, real = real_chain_link(folder)
        errors[folder] = float(np.interp(link, curve["link"], curve["makespan"])) / real - 1.0
    print(errors)
    assert all(abs(e) <= 0.12 for e in errors.values()), errors
    assert abs(np.mean(list(errors.values()))) <= 0.05, errors


def test_a_diamonds_lone_tries_do_not_tell_a_chains_link_to_the_knife_edges_width():
    """Why the cross-validation misses local-p8-b's chain (issue #11 note): exit-path's local-p8-b
    and new-session's local-p8 ran their diamonds' lone tries (t1, t4: queued -> end, 2 s of
    sleep) 39 ms apart, on machines whose CPU probe differed 1.9x; their chains' links (0.5 s of
    sleep) were 93 ms apart, and their chains took 17.4 and 12.8 s. The chain's overhead moved
    2.4 times as much as the diamond's: a fit that takes the machine's speed from the diamonds
    cannot place these two chains on the right sides of the knife edge. The measurement, not the
    model."""
    def lone_diamond_link(folder):
        t = pd.read_csv(REAL / folder / "task_instances.csv")
        t = t[(t["dag_id"] == "diamond") & t["task_id"].isin(["t1", "t4"])]
        end, queued = (pd.to_datetime(t[c], format="ISO8601") for c in ("end_date", "queued_dttm"))
        return float((end - queued).dt.total_seconds().median())
    a, b = "exit-path/local-p8-b", "new-session/local-p8"
    assert abs(lone_diamond_link(a) - lone_diamond_link(b)) < 0.045
    (link_a, chain_a), (link_b, chain_b) = real_chain_link(a), real_chain_link(b)
    assert link_a - link_b > 0.09
    assert chain_a > 1.3 * chain_b


def test_airflow3_chain_links_are_one_idle_cycle_apart_as_measured():
    """Airflow 3 has no mini-scheduler: a chain's next task is scheduled and queued by the first
    loop after its upstream's end, and a 0.5 s task ends within one idle cycle, so the queueings
    are one idle sleep plus a busy and an idle loop apart: median 1.10-1.14 s in the 3.3.2 runs.
    The airflow-3 profile's scheduler_loop_base is measured from this (0.03 s); the fit had made it
    0.134 s, and the spacing 1.32 s."""
    for cfg, parallelism, executor in (("af3-local-p8", 8, "local"), ("af3-local-p16", 16, "local"),
                                       ("af3-celery-p8-c4", 8, "celery")):
        real = chain_link_times(real_chains(f"af3/{cfg}"), "queued_dttm", "end_date")[1]
        tis = simulate(chain(0.5), parallelism=parallelism, executor=executor, concurrency=4, runs=6,
                       profile="airflow-3").task_instances
        model = chain_link_times(tis, "queued_at", "ended_at")[1]
        assert 1.09 < np.median(real) < 1.15
        assert np.median(model) == pytest.approx(np.median(real), abs=0.04), (cfg, np.median(model))


def _held_past_run(result) -> pd.Series:
    """Celery: from a try's end to its slot's release (the result seen by sync)."""
    t = result.task_instances
    return (t["released_at"] - t["ended_at"]).dropna()


def test_airflow3_supervisor_holds_a_share_of_tries_one_heartbeat_interval_as_measured():
    real = pd.concat(pd.read_csv(f) for f in sorted((REAL / "af3").glob("*/supervisor.csv")))
    share = real["late"].mean()
    assert 0.25 < share < 0.5 and real.loc[real["late"], "beyond_run"].median() == pytest.approx(5.0, abs=0.2)
    # Airflow 3 profile, Celery at concurrency 4 on the 2-core machine: the fan-out's tries whose
    # release came a min_heartbeat_interval (5 s) or more after their end, against the measured share
    held = _held_past_run(simulate(fanout(), parallelism=8, executor="celery", concurrency=4,
                                   profile="airflow-3", runs=6))
    n, late = len(held), int((held >= 5.0).sum())
    p = 0.35                                     # the profile's value (the measured share)
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(late / n - p) < 4 * sd, (late, n)
    # ... and none without the late exits, nor in Airflow 2 (LocalTaskJob polls its child)
    none = _held_past_run(simulate(fanout(), parallelism=8, executor="celery", concurrency=4,
                                   profile="airflow-3", runs=2,
                                   overheads={"supervisor_late_exit_share": 0.0}))
    af2 = _held_past_run(simulate(fanout(), parallelism=8, executor="celery", concurrency=4, runs=2))
    assert (none >= 5.0).sum() == 0 and (af2 >= 5.0).sum() == 0


def test_celery_hands_a_lone_task_to_a_child_as_fast_as_measured():
    """From queued_dttm to the worker's `Executing command in Celery` line (the rest of the critical
    section, the commit, the heartbeat's apply_async, the broker, the prefork dispatch): 7-9 ms
    median for the chains' lone tasks in four Celery configurations of two sessions
    (celery_handoff.csv, bench/real_airflow/celery_handoff.py). The model stamps QUEUED where
    Airflow does, after the examination and the critical section's pool lock and SELECT; then the
    UPDATE and the per-TI CPU, the fitted publish (5.6 ms) and hop (3.1 ms). It was 0.054 s while
    QUEUED was stamped at the loop's start, and 0.019 s (an xfail) until the loop's examination
    was measured (bench/real_airflow/examine_cost.py) and the profile refitted beside it."""
    real = []
    for cfg in ("new-session/celery-p16-c8", "af210-wide/celery-p16-c1", "af210-wide/celery-p16-c4x2"):
        h = pd.read_csv(REAL / cfg / "celery_handoff.csv")
        real.append(h.loc[h["dag_id"] == "chain", "queued_to_executing"].median())
    assert 0.005 <= min(real) and max(real) <= 0.015, real
    r = simulate(chain(0.5), parallelism=16, executor="celery", concurrency=8, runs=4)
    ev, tis = r.events, r.task_instances.set_index(["ti_uid", "try_number"])
    child = ev[ev["what"].astype(str) == "child process started"].groupby(["ti_uid", "try_number"])["time"].min()
    model = float(np.median((child - tis["queued_at"]).dropna()))
    assert model == pytest.approx(float(np.median(real)), abs=0.01), model


def _overlap_diamonds(config: str, seeds) -> tuple[list, list]:
    """The real configuration replayed (its runs triggered at once with their measured offsets):
    every diamond run's makespan, and how long its t4 waited from ready to queued."""
    from sim.calibration.joint import load_configurations, sections_for

    c = load_configurations([REAL / "af210-wide" / config], REAL / "rest")[0]
    sec = sections_for(c, {})
    makespans, waits = [], []
    for seed in seeds:
        tis, drs = c.problem.replayed(sec, seed)
        d = drs[drs["dag_id"] == "diamond"]
        makespans += list(d["ended_at"] - d["started_at"])
        t4 = tis[(tis["dag_id"] == "diamond") & (tis["task_id"] == "t4")].set_index("run_id")
        waits += list((t4["queued_at"] - t4["ready_at"]).reindex(d["run_id"]))
    return makespans, waits


def _real_diamonds(config: str) -> list:
    return list(real_makespans(f"af210-wide/{config}", "diamond"))


@pytest.mark.parametrize("config", [
    "local-p16-overlap4",
    pytest.param("celery-p16-c8-overlap4", marks=pytest.mark.xfail(
        strict=True, reason="known gap (issue #11 note): with the profile fitted with the background's measured "
                            "shares (2026-12-07) the Celery diamond loses the race in 39 of 60 runs (0.65, the "
                            "test's band 0.1-0.6; 30 of 60 before; 38 of 60 with the host's groups, 2026-12-08); "
                            "real 1 of 3, which a share of 0.65 gives at most once in 28 % of three-run samples"))])
def test_under_overlapping_load_a_diamonds_last_task_sometimes_starves_as_measured(config):
    real = _real_diamonds(config)
    assert sum(m > 30 for m in real) == 1 and sum(m < 13 for m in real) == 2
    makespans, waits = _overlap_diamonds(config, seeds=range(20))
    slow = [m > 30 for m in makespans]
    # both outcomes, the slow one about as often as measured (1 run in 3; 60 simulated runs, so
    # the share is not a handful of runs' luck)
    assert 0.1 <= np.mean(slow) <= 0.6, makespans
    # and little between: real runs took under 13 s or over 30 s; of the model's 60, at most one in
    # between (one of 60 took 15.8 s since the refit with the host's groups, 2026-12-08; none before)
    assert sum(15 <= m <= 30 for m in makespans) <= 1, makespans
    # and the slow runs are the starvation: t4 waited for the fan-outs' tasks
    assert all(w > 25 for w, s in zip(waits, slow) if s)


def _real_cpu_per_try(folder: Path) -> dict:
    """{dag_id: [core-seconds per try of each clean run]}: the whole machine's busy cores from
    /proc/stat over the run (contention.csv, 1 s samples) less the baseline, per task instance."""
    cont = pd.read_csv(folder / "contention.csv")
    base = float(cont.loc[cont["run_id"].str.startswith("(baseline"), "busy_cores_mean"].iloc[0])
    tries = pd.read_csv(folder / "task_instances.csv").groupby("run_id").size()
    out: dict = {}
    for r in cont[(cont["clean"] == "yes") & cont["dag_id"].notna()].itertuples():
        out.setdefault(r.dag_id, []).append((r.busy_cores_mean - base) * r.n_samples_1s / tries[r.run_id])
    return out


def _model_cpu_per_try(config, speeds: dict, dag: str, seeds=(0, 1)) -> float:
    """The model's core-seconds per try of one run of ``dag`` alone on ``config``'s host at
    ``speeds``, counted as the 1 s samples count: from a second before the first queueing to the
    end, with the idle loop's CPU before it taken off."""
    from sim.calibration.joint import sections_for
    from sim.calibration.model import build_scenario, clone_dag
    from sim.model.schedules import At

    sec = sections_for(config, speeds)
    p = config.problem
    bodies = p.bodies(sec)
    model = []
    for seed in seeds:
        def alone(at):
            one = [clone_dag(p.templates[dag], bodies.get(dag, {}), At((at,)))]
            s = Simulation(build_scenario(sec, config.executor, one, seed, horizon=at))
            return s, s.run().task_instances
        (early, tis), (late, _) = alone(10.0), alone(70.0)
        # the loop's CPU while idle, which runs before the trigger: 60 s more of it
        rate = (late.scheduler_host.busy_core_seconds - early.scheduler_host.busy_core_seconds) / 60.0
        before = float(tis["queued_at"].min()) - 1.0
        model.append((early.scheduler_host.busy_core_seconds - rate * before) / len(tis))
    return float(np.mean(model))


@pytest.mark.xfail(strict=True, reason="known gap (issue #11 note), in the measurement more than the model: at the speed "
                                       "that starts a lone task as fast as new-session's machine did (1.35), the "
                                       "model's core-seconds per try are 5-23 % below /proc/stat's (Celery's "
                                       "chain -23 %), but /proc/stat counts the harness too: "
                                       "its psql polls, twice a second then, and its trigger CLI cost 0.08-0.26 "
                                       "core-s a try in process-cpu (a machine half as fast), where the model is "
                                       "above Airflow's own CPU (the test after this one)")
def test_a_try_costs_the_host_the_cpu_real_airflow_used_lone_or_loaded(new_session):
    """7. Real Airflow 2.10 used 0.70-0.87 core-seconds of the 2-core machine per try, in lone chains
    and loaded fan-outs alike (data/airflow-runs/new-session, /proc/stat), while a lone try's path
    (queued -> start, its run's overhead, end -> mini-scheduler) is about 0.6 s of wall time: part of
    the work is done beside it (Overheads.task_background_cpu). The held-out session, its machine's
    speed fitted on its diamonds' lone tasks (the new_session fixture): each chain's and fan-out's CPU per try in the
    model within 15 % of the real one."""
    new, speeds = new_session
    errors = {}
    for c in new:
        real = _real_cpu_per_try(c.folder)
        for dag in ("chain", "fanout", "fanout0"):
            assert dag in c.dags
            errors[(c.name, dag)] = _model_cpu_per_try(c, speeds, dag) / float(np.mean(real[dag])) - 1.0
    print(speeds, errors)
    assert all(abs(e) <= 0.15 for e in errors.values()), "; ".join(f"{k}: {v:+.3f}" for k, v in errors.items())


#: The harness's own processes in process_cpu_summary.txt's roles: its state polls (psql), its
#: Python, and the `airflow dags trigger` CLI that created each run.
HARNESS_ROLES = ("harness", "harness-psql", "cli")


def _airflow_cpu_per_try(summary: Path) -> dict:
    """{(configuration, dag_id): core-seconds per try of Airflow's own processes} from the
    per-process sampler's tables (a): every role attributed, less the harness's, plus what the
    machine was busy beyond the attributed and the sampler (short processes between two ticks)."""
    out, dag, names = {}, None, []
    for line in summary.read_text().splitlines():
        if line.startswith("(a) "):
            dag = line[4:].split(":")[0]
            continue
        if dag is None:
            continue
        if line.startswith("role"):
            names = line[4:].replace("celery", " celery").replace("local", " local").split()
            rows: dict = {}
            continue
        parts = line.split()
        if not parts:
            continue
        label, values = " ".join(parts[:-len(names)]), [float(v) for v in parts[-len(names):]]
        rows[label] = values
        if label == "busy-attr-self":
            for i, name in enumerate(names):
                own = rows["= attributed (sum)"][i] - sum(rows[r][i] for r in HARNESS_ROLES if r in rows)
                out[(name, dag)] = own + max(values[i], 0.0)
            dag = None
    return out


def test_the_model_books_at_least_the_cpu_airflow_s_own_processes_used_per_try(process_cpu_session):
    """7. Where the harness sampled each process (data/airflow-runs/process-cpu, 50 ms ticks), the
    CPU per try of Airflow's own processes (scheduler, DAG processor, task supervisors and raw
    tasks, Celery, PostgreSQL; the harness's polls and trigger CLI taken off) against the model's,
    each configuration at its session's speed from its diamonds' lone tasks: the model books about
    as much, -3 to +22 % (6-29 % more before the refit with the host's groups, 2026-12-08, which took
    task_background_cpu from 0.186 to 0.151 core-s), within -5 and +35 %. So a loaded fan-out that
    the model finishes sooner than Airflow did is not short of CPU per try; and of /proc/stat's more
    than the model in new-session (the test above) a share, perhaps all, is the harness's own work:
    0.08-0.26 core-s a try here, on a machine half as fast."""
    new, speeds = process_cpu_session
    real = _airflow_cpu_per_try(REAL / "process-cpu" / "process_cpu_summary.txt")
    assert {k[0] for k in real} == {c.name for c in new}
    ratios = {}
    for c in new:
        for dag in ("chain", "fanout", "fanout0"):
            ratios[(c.name, dag)] = _model_cpu_per_try(c, speeds, dag) / real[(c.name, dag)]
    print(ratios)
    assert all(0.95 <= r <= 1.35 for r in ratios.values()), ratios


def test_work_done_beside_a_try_slows_loaded_hosts_not_a_lone_try():
    """7. Overheads.task_background_cpu is work nobody waits for: on the 2-core
    machine a lone chain's tries see a free core and keep their pace, while a fan-out's tries share
    both cores with it and take longer."""
    def makespans(dag, background):
        r = simulate(dag, parallelism=16, runs=3, overheads={"task_background_cpu": background})
        d = r.dag_runs
        return float((d["ended_at"] - d["started_at"]).mean())
    lone = makespans(chain(0.5), 0.3) / makespans(chain(0.5), 0.0)
    loaded = makespans(fanout(), 0.3) / makespans(fanout(), 0.0)
    assert abs(lone - 1.0) < 0.03, lone
    assert loaded > 1.1, loaded


def examine_dag(n: int) -> dict:
    """bench/real_airflow/examine_cost.py's DAG: ``hold`` sleeps 40 s; n downstream tasks that run
    only if it fails, so while it sleeps the loop examines n waiting task instances and nothing else."""
    tasks = {"hold": {"duration": "40s"}}
    tasks.update({f"w{i:04d}": {"duration": "0s", "trigger_rule": "all_failed"} for i in range(n)})
    dag = {"dag_id": f"examine_{n}", "tasks": tasks, "max_active_tasks": 64}
    if n:
        dag["dependencies"] = "hold >> [" + ", ".join(t for t in tasks if t != "hold") + "]"
    return dag


def examine_cost_real() -> pd.DataFrame:
    return pd.concat([pd.read_csv(REAL / "examine-cost" / f"examine_cost_{ex}.csv", dtype={"n": str})
                      for ex in ("local", "celery")])


@pytest.mark.parametrize("n", [0, 200, 800])
def test_a_loop_costs_the_cpu_real_airflow_spent_examining_waiting_task_instances(n, examine_cost_session):
    """8. Every loop examines each running DAG run and checks the dependencies of each of its task
    instances not yet scheduled, whether anything changed or not. Measured on real Airflow 2.10
    (examine_cost.py: the scheduler process's own CPU while ``hold`` sleeps): 28 ms a loop with
    one run and none waiting, 0.57 ms more per waiting task instance (the profile's
    scheduler_per_run and scheduler_per_ti_examined were taken from these runs, so this checks
    that the loop charges them as measured, at that session's machine speed; its idle loop, 16.7 ms,
    is scheduler_loop_base). Before, one fitted 3.5 ms per task instance priced examining it like
    queueing it: 6x the real cost, 2.8 s a loop for this DAG at n = 800."""
    _, speeds = examine_cost_session
    real = examine_cost_real()
    measured = float(real.loc[real["n"] == str(n), "cpu_per_loop_s"].median())
    doc = {"name": "examine", "seed": 0, "horizon": "600s", "profile": "airflow-2.10",
           "airflow": {"parallelism": 8},
           "overheads": {**MACHINE, "cpu_speed": next(iter(speeds.values()))}, "executor": {"kind": "local"},
           "dags": [{**examine_dag(n), "schedule": {"at": ["0s"]}}]}
    r = Simulation(scenario_from_dict(doc)).run()
    s = r.summary["scheduler"]
    per_loop = s["cpu_seconds"] / s["loops"]
    assert abs(per_loop / measured - 1) < 0.15, (n, per_loop, measured)


def test_a_chains_fast_links_are_queued_one_sleep_and_two_loops_after_their_upstream():
    """A chain's link is fast when its upstream ends before the second loop after its own
    queueing: that loop queues it (the loop that queued the upstream goes on at once, the next
    sleeps 1 s). The spacing of the two queueings is then the sleep plus what two loops cost:
    1.09-1.15 s (median 1.11) in every measured Airflow 2.10 configuration, Local and Celery
    (data/airflow-runs, the 0.5 s chains; 0.07 of it no more than the loops' CPU and DB round
    trips). Not fitted on: the loop's figures are measured (examine_cost.py) and the joint fit
    scores makespans and stage means, not this spacing. Before they were measured the model's
    spacing was 1.15-1.19 s: a loop examining a chain cost 2.5 times what it does."""
    real = np.concatenate([fast_spacing(real_chains(folder), "queued_dttm", "end_date")
                           for folder in ("local-p8", "celery-p8-c4", "af210-wide/local-p4", "af210-wide/local-p32",
                                          "af210-wide/celery-p16-c4x2", "af210-wide/celery-p16-c1")])
    model = np.concatenate([fast_spacing(simulate(chain(0.5), parallelism=p, executor=ex, concurrency=4,
                                                  runs=16, overheads={"cpu_speed": 1.24}).task_instances,
                                         "queued_at", "ended_at")
                            for p, ex in ((8, "local"), (8, "celery"))])
    assert len(real) > 30 and len(model) > 30
    assert abs(np.median(model) - np.median(real)) < 0.03, (np.median(model), np.median(real))


def fast_spacing(t: pd.DataFrame, queued: str, ended: str) -> np.ndarray:
    """For each chain link queued within 0.25 s of its upstream's end: seconds between the two
    queueings."""
    links, spacings = chain_link_times(t, queued, ended)
    return spacings[links < 0.25]


# -- 7. where a chain link's time goes, Local against Celery (data/airflow-runs/exit-path) ---------
def link_gaps(tis: pd.DataFrame) -> np.ndarray:
    """Per chain link: seconds from the upstream's queueing to the next task's. The next is queued
    either by the loop after next, about one idle sleep later, or later still."""
    gaps = []
    for _, g in tis[tis["dag_id"] == "chain"].groupby("run_id", observed=True):
        k = g["task_id"].astype(str).str[1:].astype(int)
        gaps += np.diff(g["queued_at"].to_numpy(float)[np.argsort(k.to_numpy())]).tolist()
    return np.array(gaps)


def real_link_gaps(config: str) -> np.ndarray:
    t = pd.read_csv(REAL / "exit-path" / config / "task_instances.csv").rename(columns={"queued_dttm": "queued_at"})
    t["queued_at"] = (pd.to_datetime(t["queued_at"], format="ISO8601") - pd.Timestamp("2026-01-01", tz="UTC")
                      ).dt.total_seconds()
    return link_gaps(t)


def test_a_celery_schedulers_loops_are_longer_and_its_chains_quicker_than_locals_as_measured():
    """Real (exit-path, one session, Local and Celery alternating): the links the loop after next
    caught (queueings under 1.2 s apart) were 1.11 s apart with Celery against 1.08 with Local (the
    Celery scheduler's sync() connects to the result backend anew every loop), and 49 % of
    Celery's links against 19 % (its children also start sooner: the worker preloaded the
    operators). The model at that session's speed shows both."""
    def quick(gaps):
        return (gaps < 1.2).mean(), float(np.median(gaps[gaps < 1.2]))

    real = {ex: quick(np.concatenate([real_link_gaps(f"{ex}-{s}") for s in "ab"])) for ex in ("local-p8", "celery-p8-c4")}
    assert real["celery-p8-c4"][0] > real["local-p8"][0] + 0.2 and real["celery-p8-c4"][1] > real["local-p8"][1] + 0.02
    speed = {"cpu_speed": 1.17}                          # the fit's for that session (airflow-2.10's cpu_speed comment)
    model = {ex: quick(np.concatenate([link_gaps(simulate(chain(0.5), parallelism=8, executor=ex, concurrency=4, seed=s,
                                                          overheads=speed).task_instances) for s in range(3)]))
             for ex in ("local", "celery")}
    assert model["celery"][0] > model["local"][0] + 0.15, (model, real)
    assert model["celery"][1] > model["local"][1] + 0.02, (model, real)


def test_the_database_result_backend_connects_for_every_fetch():
    """celery's SessionManager gives a process that never forked (the scheduler) a NullPool engine:
    each sync() fetch pays result_backend_connect_time besides its query; a Redis backend does not."""
    from sim.infra.result_backend import ResultBackend

    class DB:
        def __init__(self):
            self.at = []

        def book(self, n=1, at=None):
            self.at.append(at)
            return 0.002 * n

    class Env:
        now = 10.0

    db = DB()
    cost = ResultBackend(Env(), db, "database", 0.0, 0.0, 0.001, connect_time=0.0084).fetch_all(3)[1]
    assert cost == pytest.approx(0.0084 + 0.002 + 3 * 0.001) and db.at == [pytest.approx(10.0084)]
    redis = ResultBackend(Env(), DB(), "redis", 0.002, 0.003, 0.001, connect_time=0.0084).fetch_all(3)[1]
    assert redis == pytest.approx(0.003 + 3 * 0.001)


@pytest.mark.parametrize("fresh", [False, True])
def test_a_celery_child_starts_sooner_than_a_local_worker_s_process_by_the_preloaded_imports(fresh):
    """A Celery worker imports the operators before forking its children; a LocalExecutor worker
    does not (measured: hand-off to start_date 0.302 s against 0.336 s). A fresh interpreter
    imports everything anew, so then neither saves."""
    one = {"dag_id": "one", "tasks": {"t": {"duration": "1s"}}}
    start = {}
    for ex in ("local", "celery"):
        tis = simulate(one, parallelism=4, executor=ex, profile="ideal", runs=2, celery={"worker_preload_cpu": 0.04},
                       airflow={"execute_tasks_new_python_interpreter": fresh},
                       overheads={"process_start_fork": 0.3, "process_start_interpreter": 1.0}).task_instances
        start[ex] = float((tis["started_at"] - tis["launched_at"]).median())
    if fresh:
        assert start["celery"] == pytest.approx(start["local"]) == pytest.approx(1.0)
    else:
        assert start["local"] == pytest.approx(0.3) and start["celery"] == pytest.approx(0.26)


def test_the_scheduler_passes_over_a_dag_run_whose_row_a_mini_scheduler_holds():
    """2.10's mini-scheduler locks its DAG run's row (SELECT ... FOR UPDATE SKIP LOCKED) and the
    scheduler selects the runs to examine with skip_locked too: while a finished task's
    mini-scheduler works, the loop passes over the run, so its downstream waits for the
    mini-scheduler's commit, not the next loop. Without the mini-scheduler the next loop queues it."""
    two = {"dag_id": "two", "tasks": {"a": {"duration": "1s"}, "b": {"duration": "1s"}}, "dependencies": "a >> b"}
    slow_mini = {"mini_scheduler_cpu": 3.0}          # (ideal: the loop wakes at a's outcome, as the lock is taken)

    def wait(mini: bool) -> float:
        tis = simulate(two, parallelism=4, profile="ideal", runs=3, overheads=slow_mini,
                       airflow={"schedule_after_task_execution": mini}).task_instances.set_index(["run_id", "task_id"])
        return float((tis.xs("b", level="task_id")["queued_at"] - tis.xs("a", level="task_id")["ended_at"]).max())

    held, free = wait(True), wait(False)
    assert held == pytest.approx(3.0, abs=0.01)       # the mini-scheduler's end: it scheduled b
    assert free < 0.01                                 # the loop the outcome woke
