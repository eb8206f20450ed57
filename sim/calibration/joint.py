"""One profile for many deployments: fit the overhead mechanisms once over every recorded
configuration (LocalExecutor at several parallelisms, Celery at several concurrencies, overlapping
load), and cross-validate by leaving one configuration out.

A fit to a single configuration can absorb a wrong mechanism into its numbers (a CPU cost that is
really waiting fits one parallelism and misses the next); a fit to all of them at once cannot, and
predicting a configuration the fit never saw is the honest test of the model (issue #11).

A configuration is a folder the real-Airflow harness wrote (``bench/real_airflow/harness.py``):
``task_instances.csv``, ``dag_runs.csv``, ``config.txt`` (the effective settings, read as known
settings) and ``contention.csv`` (only runs marked clean are used); a Celery one may also have
``celery_handoff.csv`` (from the workers' logs), whose chains' median hand-off, queued to the
worker's child executing the task, is then one more stage scored. The results folder's
``matrix.yaml`` says what ``config.txt`` cannot: Celery workers and DAG runs triggered at once.
What the machine is (its cores, the Celery worker on the scheduler's host) is given as settings.
Task bodies are known (the benchmark DAGs ``sleep``), so no variation is borrowed from the runs
that are scored: the simulated spread is the model's own (loop phases, contention).

Configurations measured in different sessions (``machine.yaml``'s ``session``; else the results
folder) may have run on a faster or slower machine: the same 2-core cloud VM type measured at two
times of one day started its lone tasks 10 % apart, which moves a chain's makespan by 20 % (where
task ends fall in the loop's cycle). Each session but the reference one (the one with the most
configurations) has its own ``overheads.cpu_speed``, fitted with the mechanisms; every mechanism
stays one value for all. Leaving a configuration out, each of its DAGs is predicted at the speed its
other DAGs' lone tasks measured (:mod:`.lone`; or, ``speed="session"``, its session's speed fitted on
the others of that session): a prediction for another setting on a machine whose speed is known.
"""
from __future__ import annotations

import datetime
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc
from tqdm import tqdm

from ..errors import SimError
from ..files import read_text
from ..model.dag import Sensor
from ..model.durations import Constant
from ..scenario.schema import read_yaml
from . import inputs as inp
from .fit import (FLOOR, MEDIAN_RUNS, MEDIAN_WHY, PARAMETERS, Problem, _compass, _nelder_mead, _objective_terms,
                  _prepare, _quality, log_box, memoised, progress_bar)
from .lone import lone_speeds
from .model import complete_sections
from .profile_file import MARKER, write_safely

#: The mechanisms fitted jointly: one value each for every configuration of a machine class.
JOINT_FIT = ("overheads.scheduler_per_ti", "overheads.db_query_time",
             "overheads.process_start_fork", "overheads.process_start_latency",
             "overheads.task_run_cpu", "overheads.task_run_latency",
             "overheads.task_background_cpu",
             "celery.publish_time", "celery.delivery_time", "celery.fetch_per_task")
# (task_exit_latency and task_exit_cpu are not among them: measured, the first from the task logs
# with the mini-scheduler's CPU (data/airflow-runs/exit-path), the second from the supervisor's
# CPU after end_date (data/airflow-runs/process-cpu); the profile says how.)
#: Airflow 3's (a base profile with execution_api): the Execution API request instead of the DB
#: query the task processes no longer make, and no Celery hops (the same Celery as 2.10's fit).
#: Not the loop's fixed part either: measured from the chains' queue spacing (airflow-3 profile).
JOINT_FIT_3 = ("overheads.process_start_fork", "overheads.process_start_latency",
               "overheads.task_run_cpu", "overheads.task_run_latency",
               "overheads.task_exit_cpu", "overheads.task_exit_latency", "overheads.api_request_time")
# (celery.send_pool_startup is not among them: with sync_parallelism 0 a 2-core scheduler host
# sends in its main thread, max(1, cores - 1) = 1 process, so these runs cannot tell it.)
#: The benchmark DAGs' own work (bench/real_airflow/bench_dags.py: `sleep 2`, `sleep 0.5`, ...;
#: cpufanout's middle tasks burn 1 CPU-second each, its start and end run `true`; etl's branches
#: sleep 0.5 and 2 s, then run `true`).
BENCH_BODIES = {"diamond": 2.0, "chain": 0.5, "fanout": 1.0, "fanout0": 0.0, "widefan": 1.0,
                "cpufanout": {"*": 1.0, "start": 0.0, "end": 0.0},
                "etl": {"extract": 1.0, "load": 1.0, **{f"{s}{i}": b for i in range(8)
                                                        for s, b in (("a", 0.5), ("b", 2.0), ("c", 0.0))}},
                "pooled": 1.0, "capped": 1.0, "retry": 0.5, "sensed": {"wait": 0.0, "after": 1.0},
                "mapped": {"*": 1.0, "start": 0.0, "end": 0.0}, "rules": {"a": 0.5, "b": 1.0, "c": 1.0, "z": 0.5}}
#: What the REST API's task list does not carry (bench_dags.py): the DAGs' own max_active_tasks,
#: which tasks compute rather than wait, which fail their first tries (``failed_tries``, by task-id
#: prefix), and a sensor's mode and poke interval. sensed's condition holds at its third poke (a
#: counter); the model's sensor holds a time after its first poke, and any time between the second
#: poke's end and the third's gives three pokes. In the model those ended 4.0-4.3 s and 7.8-8.7 s
#: after the first poke's start (a 3 s reschedule, a loop, a start-up each time): 6 s, between.
#: (8 s, the first guess, was past one replayed run's third poke, which then poked a fourth
#: time; the test holds the count of pokes at three.)
BENCH_DAG_ATTRS = {"fanout": {"max_active_tasks": 64}, "fanout0": {"max_active_tasks": 64},
                   "cpufanout": {"max_active_tasks": 64, "cpu_bound": ("q",)},
                   "widefan": {"max_active_tasks": 128},
                   "pooled": {"max_active_tasks": 64}, "capped": {"max_active_tasks": 6},
                   "retry": {"failed_tries": {"f": 1}}, "mapped": {"max_active_tasks": 64},
                   "rules": {"failed_tries": {"a": 1}},
                   "sensed": {"sensor": {"wait": Sensor(Constant(6.0), mode="reschedule", poke_interval=3.0)}}}
#: The measuring machine of data/airflow-runs: 2 cores, Celery's worker on the same host. (PostgreSQL
#: ran there too, but the shipped profiles were fitted without overheads.metadata_db_on_scheduler_host:
#: refitted with it, see docs/background.md "A database on Airflow's own host".)
MACHINE_2CORE = {"overheads.scheduler_host_cores": 2, "celery.workers_on_scheduler_host": True}


@dataclass
class Configuration:
    """One recorded deployment setting and the problem that replays it."""

    name: str
    folder: Path
    executor: str
    problem: Problem
    dags: list = field(default_factory=list)
    session: str = ""           # the measuring session (machine.yaml), for its machine's speed


def _matrix_entry(folder: Path) -> dict:
    for m in (folder.parent / "matrix.yaml", folder / "matrix.yaml"):
        if m.is_file():
            doc = read_yaml(read_text(m), str(m))
            for c in (doc or {}).get("configurations", []) or []:
                if isinstance(c, dict) and c.get("name") == folder.name:
                    return c
    return {}


def _session(folder: Path) -> str:
    """The measuring session of a configuration folder: ``machine.yaml``'s ``session`` (written by
    the harness), else the folder holding it (one session per results folder)."""
    m = folder / "machine.yaml"
    if m.is_file():
        doc = read_yaml(read_text(m), str(m))
        if isinstance(doc, dict) and doc.get("session") not in (None, ""):
            return str(doc["session"])
    return folder.parent.name


def _clean_runs(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    tis, drs = inp.read_runs(folder / "task_instances.csv", folder / "dag_runs.csv")
    src_t, src_d = tis.attrs.get("source"), drs.attrs.get("source")
    keep = set(drs["run_id"]) | set(tis["run_id"])
    cont = folder / "contention.csv"
    if cont.is_file():
        c = pd.read_csv(cont)
        if "clean" in c:
            keep &= set(c.loc[c["clean"] == "yes", "run_id"])
    keep -= _overlapping(drs, set(drs["run_id"]) - keep)
    # The first DAG runs after a scheduler start wait for the DAG file to be parsed again (54 s
    # for a 10 s diamond, data/airflow-runs/README.md): start-up, not steady state. Drop the
    # first batch (runs queued within 2 s of the first); the harness now also warms up first.
    q = pd.to_datetime(drs["queued_at"], format="ISO8601", utc=True)
    keep -= set(drs.loc[q <= q.min() + pd.Timedelta(seconds=2), "run_id"])
    tis = tis[tis["run_id"].isin(keep)].reset_index(drop=True)
    drs = drs[drs["run_id"].isin(keep)].reset_index(drop=True)
    tis.attrs["source"], drs.attrs["source"] = src_t, src_d
    return tis, drs


def _overlapping(drs: pd.DataFrame, rejected: set) -> set:
    """The runs that were running while a rejected run was (an unclean one, or one of an aborted
    attempt that contention.csv does not list): they shared the machine with it. (In
    data/airflow-runs/af210-wide/local-p2 an aborted attempt's fan-out ran on for 845 s, and the
    next attempt's first diamond, kept, waited 53 s for slots against its usual 11.)"""
    if not rejected:
        return set()
    def seconds(col):
        t = pd.to_datetime(drs[col], format="ISO8601", utc=True)
        return ((t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy()
    start, end = seconds("start_date"), seconds("end_date")
    end = np.where(np.isnan(end), np.inf, end)             # still running when exported
    bad = drs["run_id"].isin(rejected).to_numpy()
    ids = drs["run_id"].to_numpy()
    return {ids[i] for i in range(len(ids)) if not bad[i] and not np.isnan(start[i])
            and ((start[bad] < end[i]) & (end[bad] > start[i])).any()}


def _trigger_offsets(drs: pd.DataFrame, at_once: int) -> dict:
    """Per DAG, the median time from its batch's first ``queued_at`` to its own: the harness
    triggers a batch's runs one after the other (each an `airflow dags trigger` call)."""
    q = pd.to_datetime(drs["queued_at"], format="ISO8601", utc=True)
    d = drs.assign(q=q).sort_values("q").reset_index(drop=True)
    batch = (d["q"].diff().dt.total_seconds().fillna(1e9) > 15.0).cumsum()   # batches are far apart
    first = d.groupby(batch)["q"].transform("min")
    off = (d["q"] - first).dt.total_seconds()
    return {dag: float(v) for dag, v in off.groupby(d["dag_id"]).median().items()}


def load_configurations(folders, structures_dir, *, machine: dict | None = None, bodies: dict | None = None,
                        base_profile: str = "airflow-2.10", dags=None, dag_attrs: dict | None = None
                        ) -> list[Configuration]:
    """The configurations in ``folders`` (each a harness results folder; a folder holding such
    folders stands for all of them), replaying the DAGs of ``structures_dir``
    (``<dag_id>.tasks.json``) that each one recorded (``dags`` to restrict them)."""
    machine = dict(MACHINE_2CORE if machine is None else machine)
    bodies = dict(BENCH_BODIES if bodies is None else bodies)
    structures_dir = Path(structures_dir)
    found: list[Path] = []
    for f in folders:
        f = Path(f)
        if (f / "task_instances.csv").is_file():
            found.append(f)
        elif f.is_dir():
            found += sorted(p for p in f.iterdir() if (p / "task_instances.csv").is_file())
        else:
            raise SimError(f"{f}: not a folder of recorded runs (no task_instances.csv)")
    if not found:
        raise SimError("no recorded configuration found (folders with task_instances.csv)")
    out = []
    for folder in found:
        cfg, executor = inp.read_config(folder / "config.txt")
        if executor not in ("local", "celery"):
            continue
        tis, drs = _clean_runs(folder)
        have = set(tis.loc[tis["state"] == "success", "dag_id"].dropna())
        wanted = [d for d in (dags or sorted(have)) if d in have and d in bodies
                  and (structures_dir / f"{d}.tasks.json").is_file()]
        if not wanted:
            continue
        entry = _matrix_entry(folder)
        settings = {k: v for k, v in machine.items() if executor == "celery" or not k.startswith("celery.")}
        problem = _prepare(tis, [structures_dir / f"{d}.tasks.json" for d in wanted], executor, drs,
                           base_profile, settings, {d: bodies[d] for d in wanted}, folder / "config.txt")
        for d in wanted:
            attrs = (dag_attrs if dag_attrs is not None else BENCH_DAG_ATTRS).get(d, {})
            dag = problem.templates[d]
            if "max_active_tasks" in attrs:
                dag.max_active_tasks = int(attrs["max_active_tasks"])
            for t in dag.tasks.values():
                if any(t.task_id.startswith(prefix) for prefix in attrs.get("cpu_bound", ())):
                    t.cpu_bound = True
                for prefix, n in attrs.get("failed_tries", {}).items():
                    if t.task_id.startswith(prefix):
                        t.failed_tries = int(n)
                if t.task_id in attrs.get("sensor", {}):
                    t.sensor = attrs["sensor"][t.task_id]
        if (folder / inp.POOLS_FILE).is_file():
            problem.known.update(inp.read_pools(folder / inp.POOLS_FILE))
        problem.workers = int(entry.get("workers", 1))
        problem.concurrent = int(entry.get("concurrent_runs", 1))
        if problem.concurrent > 1:
            problem.offsets = _trigger_offsets(drs, problem.concurrent)
            problem.statistic = "p50"     # fit.MEDIAN_WHY: the typical run, not the race's coin toss
        problem.jitter = [0.0]            # the model's own variation, not the scored runs'
        handoff = folder / inp.HANDOFF_FILE
        if executor == "celery" and handoff.is_file():
            # Celery's hand-off, measured in the workers' logs: one more stage of the chains
            rows = inp.handoff_stats(handoff, problem.obs, [d for d in inp.HANDOFF_DAGS if d in wanted])
            if len(rows):
                problem.observed = pd.concat([problem.observed, rows], ignore_index=True)
        out.append(Configuration(folder.name, folder, executor, problem, wanted, _session(folder)))
    if not out:
        raise SimError("no configuration with LocalExecutor or CeleryExecutor runs of known DAGs")
    return out


def default_fit(configs) -> tuple:
    """The mechanisms fitted when none are named: Airflow 3's when the configurations' base profile
    runs tasks through the Execution API, else 2.x's."""
    if any(c.problem.prof.get("airflow", {}).get("execution_api") for c in configs):
        return JOINT_FIT_3
    return JOINT_FIT


#: A fitted session speed's name: SPEED + the session.
SPEED = "cpu_speed@"
#: The reference "session" of a fit of speeds alone: the base profile's machine, which no recorded
#: configuration belongs to, so every session gets a speed against it.
BASE_MACHINE = "(the base profile's machine)"
#: How far a session's machine may be from the reference one's (a factor either way), and the
#: fit's first step for it in log space.
SPEED_RANGE = 2.0
SPEED_STEP = 0.1


def reference_session(configs) -> str:
    """The session whose machine the fitted profile describes (speed 1): the one with the most
    configurations, the first by name among equals."""
    counts: dict = {}
    for c in configs:
        counts[c.session] = counts.get(c.session, 0) + 1
    return min(counts, key=lambda s: (-counts[s], s)) if counts else ""


def _names(configs, fit, reference: str | None = None) -> list[str]:
    kinds = {c.executor for c in configs}
    names = []
    for key in (default_fit(configs) if fit is None else fit):
        if key not in PARAMETERS:
            raise SimError(f"cannot fit {key!r}; fittable: {', '.join(PARAMETERS)}")
        if kinds & set(PARAMETERS[key][2]) and not all(key in c.problem.known for c in configs):
            names.append(key)
    reference = reference_session(configs) if reference is None else reference
    names += sorted({SPEED + c.session for c in configs if c.session != reference})
    return names


def _lone_start(configs) -> float:
    """The median over ``configs`` of each one's median queued -> start of task instances that ran
    alone (fork, set-up and parsing with nothing competing: the machine's pace). The median of
    medians, as in one configuration tasks that ran alone may still have queued behind others
    (Celery at concurrency 1)."""
    meds = []
    for c in configs:
        o = c.problem.obs
        x = o.loc[o["running"] <= 1.0, "queued_to_started"].dropna()
        if len(x):
            meds.append(float(x.median()))
    return float(np.median(meds)) if meds else float("nan")


def speed_start(configs, reference: str) -> dict:
    """Where each session's speed starts: how much sooner its lone tasks started than the
    reference session's (:func:`_lone_start`, the fit refines it); 1 when either has none. Only
    the configurations being fitted are read."""
    ref = _lone_start([c for c in configs if c.session == reference])
    out = {}
    for session in sorted({c.session for c in configs} - {reference}):
        own = _lone_start([c for c in configs if c.session == session])
        guess = ref / own if own > 0 and ref > 0 else 1.0          # (NaN compares false)
        out[SPEED + session] = min(max(guess, 1.0 / SPEED_RANGE), SPEED_RANGE)
    return out


def _box(names) -> tuple[np.ndarray, np.ndarray]:
    speeds = [n.startswith(SPEED) for n in names]
    lo, hi = log_box([n for n, sp in zip(names, speeds) if not sp])
    it_lo, it_hi = iter(lo), iter(hi)
    r = math.log(SPEED_RANGE)
    return (np.array([-r if sp else next(it_lo) for sp in speeds]),
            np.array([r if sp else next(it_hi) for sp in speeds]))


def sections_for(config: Configuration, fitted: dict, speed: float | None = None) -> dict:
    """The settings ``config`` is simulated with: its base profile, its known settings, the fitted
    mechanisms and its session's machine speed (the reference's, 1, when none was fitted), or
    ``speed`` when given."""
    p = config.problem
    sections = complete_sections(p.prof, p.known, {k: v for k, v in fitted.items() if not k.startswith(SPEED)})
    if speed is None:
        speed = fitted.get(SPEED + config.session)
    if speed is not None:
        sections["overheads"]["cpu_speed"] = speed
    return sections


def _errors(config: Configuration, fitted: dict, seeds) -> np.ndarray:
    p = config.problem
    return _objective_terms(p, p.simulate(sections_for(config, fitted), seeds), config.dags)


#: A stage's squared relative error counts at most this much (50 % off), so that one stage the
#: model gets badly wrong cannot pull every mechanism away from the rest of the data.
CAP = 0.25


def _loss(errors: np.ndarray) -> float:
    return float(np.mean(np.minimum(errors ** 2, CAP)))


@dataclass
class JointFit:
    fitted: dict
    objective: float
    evaluations: int
    wall_seconds: float
    seeds: tuple
    configurations: list

    def quality(self, configs=None, role: str = "fit", dags=None) -> pd.DataFrame:
        """Per configuration, DAG and stage: observed and simulated mean, relative error (of
        ``dags`` only, when given)."""
        rows = []
        for c in configs or self.configurations:
            p = c.problem
            sim = p.simulate(sections_for(c, self.fitted), self.seeds)
            q = _quality(p, sim, role, c.dags if dags is None else [d for d in c.dags if d in dags])
            q.insert(0, "configuration", c.name)
            rows.append(q)
        return pd.concat(rows, ignore_index=True)


#: Where every fit starts: round physical values for a small Linux host (CPU-seconds of a task
#: process's start, run and exit of a few tenths, its exit waiting a few tenths, loop and query
#: costs of milliseconds), the same for every fit and fold, so a held-out configuration never
#: shapes its own fold's start.
START = {"overheads.scheduler_loop_base": 0.2, "overheads.scheduler_per_ti": 0.0015,
         "overheads.db_query_time": 0.0025, "overheads.process_start_fork": 0.3,
         "overheads.process_start_latency": 0.03, "overheads.task_run_cpu": 0.2,
         "overheads.task_run_latency": 0.01, "overheads.task_exit_cpu": 0.1,
         "overheads.task_exit_latency": 0.1, "overheads.task_background_cpu": 0.1, "celery.publish_time": 0.01, "celery.delivery_time": 0.01,
         "celery.fetch_per_task": 0.001}


def joint_fit(configs: list[Configuration], *, fit=None, seeds=(0, 1), max_evaluations: int = 240,
              start: dict | None = None, progress: bool = False, design_points: int = 0,
              reference: str | None = None, rounds: int = 1, first: dict | None = None) -> JointFit:
    """Fit one value of each mechanism to all ``configs`` at once: the mean over configurations
    of each one's mean squared relative stage error, each term capped at :data:`CAP` (every
    configuration counts alike).

    The search: from :data:`START` (or ``start``), a compass search in log space (each parameter
    up and down by a step, the step halved when nothing helps: robust to the objective's small
    jumps, a task just catching a loop or not), then Nelder-Mead with what is left of the budget.
    ``design_points`` > 0 first scores a Sobol design over the whole box and starts from its best
    point if that beats the start. ``rounds`` > 1 runs that search again from where the last one
    ended, as often, each with ``max_evaluations`` of its own: the compass's step, halved to its
    smallest by the end of a round, starts large again, which lets the search leave a point where
    the small steps stopped (the cross-validation's folds fitted with 120 evaluations each ended
    2-28 % lower on their training configurations after a second round, docs/howto.md).

    With configurations from several sessions, each session but ``reference`` (default
    :func:`reference_session`) also gets its machine's speed (``cpu_speed@<session>``), starting
    from :func:`speed_start`.

    ``first`` (settings, e.g. a measured mechanism switched off) makes the fit staged: the whole
    search runs first with ``first`` on top of every configuration's settings, then again, as long,
    from where that ended with the configurations' own. A mechanism measured after the others were
    fitted then joins the fit the way it joined the model (continuation), and every fold of a
    cross-validation takes the same path without ever starting from values fitted on its held-out
    configuration. (With the background's measured shares, issue #11: the search from
    :data:`START` ended where eight held-out sessions' makespans were predicted worse, 5.7-6.1 %
    mean, than by the staged fit, 4.5 %; docs/background.md, "Work beside a try".)"""
    if rounds < 1:
        raise SimError(f"rounds must be at least 1 (got {rounds})")
    kw = dict(fit=fit, seeds=seeds, max_evaluations=max_evaluations, progress=progress, reference=reference,
              rounds=rounds)
    if not first:
        return _search(configs, start=start, design_points=design_points, **kw)
    t0 = time.perf_counter()
    pre = _search(configs, start=start, design_points=design_points, on_top=dict(first), **kw)
    then = _search(configs, start=pre.fitted, **kw)
    return JointFit(then.fitted, then.objective, pre.evaluations + then.evaluations,
                    time.perf_counter() - t0, then.seeds, then.configurations)


def _search(configs: list[Configuration], *, fit, seeds, max_evaluations: int, start: dict | None,
            progress: bool, reference: str | None, rounds: int, design_points: int = 0,
            on_top: dict | None = None) -> JointFit:
    """One search of :func:`joint_fit`, every configuration simulated with ``on_top`` over its
    settings and the values tried."""
    t0 = time.perf_counter()
    names = _names(configs, fit, reference)
    seeds = tuple(int(s) for s in seeds)
    lo, hi = _box(names)
    bar = progress_bar(progress, max_evaluations * rounds, "joint fit")

    def score(fitted):
        if on_top:
            fitted = {**fitted, **on_top}
        return float(np.mean([_loss(_errors(c, fitted, seeds)) for c in configs]))

    evaluate, cache = memoised(score, names, lo, hi, bar)
    guess = {**START, **speed_start(configs, reference_session(configs) if reference is None else reference),
             **(start or {})}
    z0 = np.clip(np.log([guess[n] if n in guess else math.sqrt(PARAMETERS[n][0] * PARAMETERS[n][1])
                         for n in names]), lo, hi)
    if design_points >= 2:
        sobol = qmc.Sobol(len(names), scramble=True, seed=seeds[0]).random_base2(int(math.log2(design_points)))
        design = [lo + u * (hi - lo) for u in sobol]
        best_design = min(design, key=evaluate)
        if evaluate(best_design) < evaluate(z0):
            z0 = best_design
    # a machine's speed is tens of per cent from the reference's, a mechanism's value unknown to
    # a factor of several: their first steps are x1.1 and x1.5
    steps = [SPEED_STEP if n.startswith(SPEED) else 0.4 for n in names]
    best, evaluations = z0, 0
    for round_ in range(rounds):
        if round_:                      # a round of its own: its budget and its memo afresh
            evaluations += len(cache)
            evaluate, cache = memoised(score, names, lo, hi, bar)
        best = _compass(evaluate, best, lo, hi, int(max_evaluations * 0.75) - len(cache), cache,
                        step=steps, smallest=0.05)
        rest = max_evaluations - len(cache)
        if rest > len(names) + 2:
            polished = _nelder_mead(evaluate, best, lo, hi, rest, 0.1)
            if evaluate(polished) < evaluate(best):
                best = polished
    if bar is not None:
        bar.close()
    fitted = {n: float(np.exp(v)) for n, v in zip(names, best)}
    return JointFit(fitted, evaluate(best), evaluations + len(cache), time.perf_counter() - t0, seeds, list(configs))


_FOLDS: dict = {}          # what forked fold processes read (set before the fork, never pickled)


#: Where a held-out configuration's machine speed comes from (cross_validate's ``speed``).
HELD_OUT_SPEEDS = {"lone": "measured on its other DAGs' lone tasks, for each DAG predicted",
                   "session": "its session's, fitted on the others of that session"}


def _fold(i: int):
    configs, kw = _FOLDS["configs"], dict(_FOLDS["kw"])
    held = configs[i]
    how = kw.pop("speed")
    jf = joint_fit(configs[:i] + configs[i + 1:], **kw)
    if how == "session":
        return held.name, jf.fitted, {}, jf.quality([held], role="held out")
    rows, used = [], {}
    mechanisms = {k: v for k, v in jf.fitted.items() if not k.startswith(SPEED)}
    speeds = lone_speeds(held, mechanisms, held.dags)
    for dag in held.dags:
        speed = speeds[dag]
        fitted = dict(jf.fitted)
        if math.isfinite(speed):
            fitted[SPEED + held.session] = used[dag] = min(max(speed, 1.0 / SPEED_RANGE), SPEED_RANGE)
        else:
            used[dag] = math.nan                # (none ran alone: its session's, as "session")
        fold = JointFit(fitted, jf.objective, jf.evaluations, jf.wall_seconds, jf.seeds, jf.configurations)
        rows.append(fold.quality([held], role="held out", dags=[dag]))
    return held.name, jf.fitted, used, pd.concat(rows, ignore_index=True)


def cross_validate(configs: list[Configuration], *, fit=None, seeds=(0, 1), max_evaluations: int = 240,
                   progress: bool = False, start: dict | None = None, processes: int = 1,
                   speed: str = "lone", rounds: int = 1, first: dict | None = None) -> pd.DataFrame:
    """Leave one configuration out: fit on the others, predict the one left out. Returns the
    held-out quality rows of every configuration (column ``configuration``) with the fitted values
    of each fold in ``.attrs["folds"]`` and, per configuration and DAG, the speed it was predicted
    at in ``.attrs["speeds"]``. Every fold starts from :data:`START` (or ``start``) and searches
    ``rounds`` times (:func:`joint_fit`, staged when ``first`` is given); the reference session is
    the whole set's in every fold.

    The held-out configuration's machine speed (:data:`HELD_OUT_SPEEDS`): ``"lone"``, for each DAG
    the speed at which the fold's mechanisms take its *other* DAGs' lone tasks from queued to end,
    less their bodies, as recorded (:mod:`.lone`: what a user does for a machine of their own; its
    session's fitted speed where no other DAG has lone tasks); ``"session"``, its session's speed fitted on the others of that
    session (the reference's, 1, when it was its session's only one)."""
    if speed not in HELD_OUT_SPEEDS:
        raise SimError(f"held-out speed {speed!r}: expected one of {', '.join(HELD_OUT_SPEEDS)}")
    for held in configs:
        others = [c for c in configs if c is not held]
        for key in (default_fit(configs) if fit is None else fit):
            kinds = PARAMETERS[key][2]
            if held.executor in kinds and not any(c.executor in kinds for c in others):
                raise SimError(f"{held.name}: no other {held.executor} configuration to fit {key} on")
    kw = dict(fit=fit, seeds=seeds, max_evaluations=max_evaluations, start=start,
              reference=reference_session(configs), speed=speed, rounds=rounds, first=first)
    _FOLDS.update(configs=configs, kw=kw)
    try:
        if processes > 1:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                results = pool.map(_fold, range(len(configs)))
        else:
            results = []
            bar = None
            if progress:
                bar = tqdm(total=len(configs), desc="cross-validation", unit="fold", leave=False, disable=None)
            for i in range(len(configs)):
                results.append(_fold(i))
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
    finally:
        _FOLDS.clear()
    out = pd.concat([q for *_, q in results], ignore_index=True)
    out.attrs["folds"] = {name: fitted for name, fitted, _, _ in results}
    out.attrs["speeds"] = {name: used for name, _, used, _ in results}
    return out


def write_joint_profile(fit: JointFit, path, base: str) -> Path:
    """A profile file: the base profile with the jointly fitted values, each saying what fitted it
    (never written over a file sim did not write)."""

    names = ", ".join(c.name for c in fit.configurations)
    lines = [f"{MARKER}-all` on {datetime.date.today().isoformat()}: one value of each mechanism",
             f"# for all of {names}",
             f"# (mean squared relative stage error {fit.objective:.4g}, seeds {', '.join(map(str, fit.seeds))}).",
             f"extends: {base}"]
    sections: dict = {}
    speeds = {k[len(SPEED):]: v for k, v in fit.fitted.items() if k.startswith(SPEED)}
    if speeds:
        ref = reference_session(fit.configurations)
        lines.append(f"# CPU figures are for the machine of session {ref}; the other sessions' fitted "
                     f"cpu_speed: " + ", ".join(f"{k} {v:.3g}" for k, v in speeds.items()) + ".")
    for key, value in fit.fitted.items():
        if key.startswith(SPEED):
            continue
        section, name = key.split(".", 1)
        sections.setdefault(section, []).append(f"  {name}: {value:.4g}".ljust(38) + " # fitted jointly")
    for section, rows in sections.items():
        lines.append(f"{section}:")
        lines += rows
    return write_safely(path, "\n".join(lines) + "\n")


def write_speed_profile(speed: float, path, base: str, session: str, why: str = "") -> Path:
    """A profile file: the base profile at one session's fitted machine speed (never written over
    a file sim did not write); ``why``, a comment line saying what fixed it."""
    lines = [f"{MARKER}-all --speed-only` on {datetime.date.today().isoformat()}: the machine of session",
             f"# {session} against {base}'s, every mechanism as {base} has it.",
             *([f"# {why}"] if why else []),
             f"extends: {base}", "overheads:",
             f"  cpu_speed: {speed:.4g}".ljust(38) + " # fitted on the session's recorded runs"]
    return write_safely(path, "\n".join(lines) + "\n")


def held_out_summary(q: pd.DataFrame) -> str:
    """One line on the scored makespans of a cross-validation (a median of too few runs is shown
    in the table, not counted here)."""
    rows = q[q["stage"] == "makespan"]
    mk = rows.loc[rows["scored"].astype(bool) if "scored" in rows else rows.index, "error"].abs()
    shown = f" ({len(rows) - len(mk)} not scored, shown above)" if len(mk) < len(rows) else ""
    return (f"held-out makespans: median |error| {mk.median():.1%}, worst {mk.max():.1%}, "
            f"{(mk <= 0.15).mean():.0%} within 15 %{shown}")


def error_table(q: pd.DataFrame, indent: str = "") -> str:
    """Makespan and per-stage relative errors, one line per configuration and DAG."""
    lines = [f"{indent}{'configuration':24s} {'DAG':9s} {'makespan real':>13s} {'model':>7s} {'error':>7s}  "
             f"{'q->start':>8s} {'duration':>8s} {'ready->q':>8s} {'q->exec':>8s}  within spread"]
    medians = False
    for (cfg, dag), g in q.groupby(["configuration", "dag_id"], sort=False):
        by = {r["stage"]: r for _, r in g.iterrows()}
        mk = by.get("makespan")
        if mk is None:
            continue

        def e(stage):
            r = by.get(stage)
            return f"{r['error']:+8.0%}" if r is not None and math.isfinite(r["error"]) else f"{'-':>8s}"
        med = mk.get("statistic") == "p50"
        medians |= med
        real, model = (mk["observed_p50"], mk["simulated_p50"]) if med else (mk["observed_mean"], mk["simulated_mean"])
        note = "  (medians)" if med else ""
        if not mk.get("scored", True):
            note = f"  (medians; {int(mk['n'])} runs, not scored)"
        lines.append(f"{indent}{cfg:24s} {dag:9s} {real:11.2f} s {model:7.2f} "
                     f"{mk['error']:+7.1%}  {e('queued_to_started')} {e('duration')} {e('ready_to_queued')} "
                     f"{e(inp.HANDOFF)}  {'yes' if mk['within_spread'] else 'no'}{note}")
    if medians:
        lines.append(f"{indent}(medians: DAG runs triggered at once are scored by their medians, as {MEDIAN_WHY};"
                     f" a median of fewer than {MEDIAN_RUNS} runs is not scored)")
    return "\n".join(lines)


def handoff_table(q: pd.DataFrame, indent: str = "") -> str:
    """Celery's hand-off (queued -> the worker's child executing), median real and model in ms,
    one line per configuration and DAG that has it; empty when none has. (Its error in
    :func:`error_table` is relative to :data:`FLOOR`, 50 ms, as the hand-off is a few.)"""
    h = q[q["stage"] == inp.HANDOFF]
    lines = [f"{indent}{cfg:24s} {dag:9s} hand-off median real {r['observed_p50'] * 1e3:6.1f} ms, model "
             f"{r['simulated_p50'] * 1e3:6.1f} ms (error {r['error']:+.0%} of {FLOOR * 1e3:.0f} ms)"
             for cfg, dag, r in ((r["configuration"], r["dag_id"], r) for _, r in h.iterrows())]
    return "\n".join(lines)


__all__ = ["Configuration", "JointFit", "load_configurations", "joint_fit", "cross_validate", "error_table", "handoff_table",
           "write_joint_profile", "held_out_summary", "JOINT_FIT", "JOINT_FIT_3", "SPEED", "BASE_MACHINE", "write_speed_profile", "reference_session", "sections_for", "speed_start", "default_fit", "BENCH_BODIES", "MACHINE_2CORE", "FLOOR",
           "HELD_OUT_SPEEDS", "SPEED_RANGE"]
