"""Fit a profile's overhead parameters to recorded runs, and predict other runs with it.

The parameters are mechanisms of the model, the same for every DAG: CPU work of the scheduler's
loop, per task instance and per metadata-DB query; CPU work of a task process before its
``start_date`` (fork, DAG parsing), inside its run (``task_run_cpu``) and after it
(``task_exit_cpu``), all shared among the host's cores; for Celery the broker's publish and
delivery hops. The objective is the mean squared relative error of the per-stage means
(ready -> queued, queued -> started, task duration) and of the DAG-run makespans over the
calibration DAGs (their medians where DAG runs were triggered at once: ``MEDIAN_WHY``), each
simulated over a few seeds with common random numbers; the optimiser is a Sobol design over the
parameters' ranges (in log space), then bounded Nelder-Mead from the best point. Deterministic
for given seeds.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import qmc
from tqdm import tqdm

from ..errors import SimError
from ..importers.airflow_export import dag_from_export
from ..scenario import load_profile
from . import inputs as inp
from .model import complete_sections, gap_for, replay, simulated_observations, stage_means
from .parameters import PARAMETERS  # noqa: F401  (sim.calibration.fit.PARAMETERS: the API)
from .profile_file import quality_table, write_profile

#: Fitted when not known; process_start_* is the one of the deployment's start-up mode.
DEFAULT_FIT = ("overheads.scheduler_loop_base", "overheads.scheduler_per_ti", "overheads.db_query_time",
               "overheads.process_start", "overheads.task_run_cpu", "overheads.task_exit_cpu",
               "overheads.task_background_cpu",
               "overheads.scheduler_host_cores", "celery.publish_time", "celery.delivery_time",
               "celery.fetch_per_task")
#: Relative errors are taken against at least this many seconds (a stage of a few ms is noise).
FLOOR = 0.05
#: Why a configuration may be scored by its medians: under overlapping load one DAG run in about
#: three loses a priority race and takes 4x as long (a diamond's last task, priority_weight 1,
#: waits behind a fan-out's 40 middle tasks, weight 2; measured in data/airflow-runs/af210-wide's
#: overlap4 runs and modelled, tests/test_fidelity_mechanisms.py). Over 3 runs a mean counts how
#: many lost that coin toss, real and simulated alike; the median is the typical run. A median of
#: fewer than MEDIAN_RUNS values is not robust to one lost race (of 2 it is their mean): such a
#: stage is reported, not scored.
MEDIAN_WHY = "one run in three loses a priority race under overlapping load"
MEDIAN_RUNS = 3


@dataclass
class Problem:
    """Everything a fit or a prediction needs, read once."""

    executor: str
    base_profile: str
    prof: dict                          # the base profile's sections
    known: dict                         # dotted key -> value (not fitted)
    templates: dict                     # dag_id -> DAG (structure and attributes)
    obs: pd.DataFrame                   # observed_runs rows of these DAGs
    observed: pd.DataFrame              # stage_stats
    known_bodies: dict
    runs: dict                          # dag_id -> number of runs to replay
    gaps: dict
    workers: int
    sources: dict = field(default_factory=dict)
    jitter: list = field(default_factory=list)   # see inputs.overhead_jitter
    inputs: tuple = (None, None)                  # the runs and dag_runs as given
    roots: set | None = None                      # without a dag-run export: the DAGs' root tasks
    concurrent: int = 1                           # DAG runs triggered at once (model.replay)
    offsets: dict = field(default_factory=dict)   # dag_id -> seconds after its batch's first trigger
    statistic: str = "mean"                       # what is scored: "mean", or "p50" (see MEDIAN_WHY)

    def cores(self, sections: dict):
        ov, cel = sections["overheads"], sections.get("celery", {})
        if self.executor == "celery" and not cel.get("workers_on_scheduler_host"):
            return cel.get("worker_host_cores")
        return ov.get("scheduler_host_cores")

    def bodies(self, sections: dict) -> dict:
        return inp.body_samples(self.obs, sections["overheads"].get("task_run_cpu", 0.0),
                                self.cores(sections), self.known_bodies, self.jitter,
                                {d: list(t.tasks) for d, t in self.templates.items()})

    def replayed(self, sections: dict, seed: int, bodies: dict | None = None, workers: int | None = None):
        """The recorded runs replayed once at ``sections``: (task instances, DAG runs) frames."""
        return replay(sections, self.executor, self.templates, self.bodies(sections) if bodies is None else bodies,
                      self.runs, self.gaps, seed, workers or self.workers, self.concurrent, self.offsets)

    def simulate(self, sections: dict, seeds, workers: int | None = None) -> dict:
        """``{(dag_id, stage): (mean, p50)}`` averaged over ``seeds``."""
        bodies = self.bodies(sections)
        acc: dict = {}
        for seed in seeds:
            tis, drs = self.replayed(sections, seed, bodies, workers)
            for k, v in stage_means(simulated_observations(tis, drs, self.roots), inp.STAGES).items():
                acc.setdefault(k, []).append(v)
        return {k: tuple(float(np.mean([x[i] for x in v])) for i in range(2)) for k, v in acc.items()}


def _prepare(runs, dags, executor, dag_runs, base_profile, settings, bodies, config=None) -> Problem:
    if executor not in ("local", "celery"):
        raise SimError(f"calibration models the local and celery executors, not {executor!r}")
    known = {}
    if config is not None:
        cfg, cfg_executor = inp.read_config(config)
        if cfg_executor is not None and cfg_executor != executor:
            raise SimError(f"{config}: core.executor is {cfg_executor}, but the calibration is for {executor}")
        if executor != "celery":
            cfg = {k: v for k, v in cfg.items() if not k.startswith("celery.")}
        inp.check_settings(cfg, str(config), inp.config_names())
        known.update(cfg)
    sets = inp.normalise_settings(settings)
    if executor != "celery":
        sets = {k: v for k, v in sets.items() if not k.startswith("celery.")}
    inp.check_settings(sets, "--set")
    known.update(sets)
    prof = load_profile(base_profile)
    ti, dr = inp.read_runs(runs, dag_runs)
    structures = inp.read_structures(dags)
    inp.check_exported(ti, structures)
    # a task with no successful try (it failed, or never ran) needs no recorded duration when
    # its DAG's bodies are known: they replace the durations
    templates = {d: dag_from_export(ti, s, dag_id=d, unrun=0.0 if d in (bodies or {}) else None)
                 for d, s in structures.items()}
    obs = inp.observations(ti, dr, structures)
    observed = inp.stage_stats(obs)
    n_runs, gaps = {}, {}
    for d in structures:
        mk = obs.loc[obs["dag_id"] == d].drop_duplicates("run_id")["makespan"].dropna().tolist()
        n_runs[d] = max(3, len(mk))
        gaps[d] = gap_for(mk, {})
    hosts = ti.loc[ti["dag_id"].isin(structures), "hostname"].dropna().nunique() if "hostname" in ti else 0
    problem = Problem(executor, base_profile, prof, known, templates, obs, observed, dict(bodies or {}),
                      n_runs, gaps, max(1, int(hosts)),
                      {"runs": ti.attrs.get("source"), "dag_runs": dr.attrs.get("source") if dr is not None else None})
    problem.jitter = inp.overhead_jitter(obs, problem.cores(complete_sections(prof, known, {})))
    problem.inputs = (runs, dag_runs)
    if dr is None:
        problem.roots = {(d, t.task_id) for d, dag in templates.items() for t in dag.tasks.values() if not t.upstream}
    return problem


def _free_parameters(problem: Problem, fit) -> list[str]:
    interp = problem.known.get("airflow.execute_tasks_new_python_interpreter",
                               problem.prof["airflow"].get("execute_tasks_new_python_interpreter", False))
    names = []
    for key in fit or DEFAULT_FIT:
        if key == "overheads.process_start":
            key = "overheads.process_start_interpreter" if interp else "overheads.process_start_fork"
        if key not in PARAMETERS:
            raise SimError(f"cannot fit {key!r}; fittable: {', '.join(PARAMETERS)}")
        if problem.executor not in PARAMETERS[key][2] or key in problem.known:
            continue
        names.append(key)
    return names


def _start_value(problem: Problem, key: str) -> float:
    section, name = key.split(".", 1)
    lo, hi = PARAMETERS[key][:2]
    v = problem.prof.get(section, {}).get(name)
    if v is None or not v > 0:
        v = math.sqrt(lo * hi)
    return float(min(max(v, lo), hi))


def log_box(names) -> tuple[np.ndarray, np.ndarray]:
    """The search box of ``names`` in log space (their PARAMETERS ranges)."""
    return np.log([PARAMETERS[n][0] for n in names]), np.log([PARAMETERS[n][1] for n in names])


def progress_bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    return tqdm(total=total, desc=desc, unit="fit", leave=False, disable=None)


def memoised(score, names, lo, hi, bar=None):
    """``(evaluate, cache)``: ``evaluate(z)`` is ``score({name: value})`` at the log-space point
    ``z`` clipped to the box, computed once per point (the optimisers revisit points); ``cache``
    counts the evaluations."""
    cache: dict = {}

    def evaluate(z) -> float:
        z = np.clip(np.asarray(z, float), lo, hi)
        key = tuple(np.round(z, 10))
        if key not in cache:
            cache[key] = score({n: float(np.exp(v)) for n, v in zip(names, z)})
            if bar is not None:
                bar.update(1)
        return cache[key]
    return evaluate, cache


def _nelder_mead(f, z0, lo, hi, budget: int, step: float) -> np.ndarray:
    n = len(z0)
    simplex = [z0] + [z0 + np.eye(n)[i] * (step if z0[i] + step <= hi[i] else -step) for i in range(n)]
    res = minimize(f, z0, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                   options={"maxfev": budget, "xatol": 0.01, "fatol": 1e-5, "adaptive": True,
                            "initial_simplex": np.clip(simplex, lo, hi)})
    return np.clip(res.x, lo, hi)


def _compass(f, z, lo, hi, budget: int, cache: dict, step=0.4, smallest: float = 0.02) -> np.ndarray:
    """Try each parameter up and down by ``step`` (log space; one for all or one each), keep any
    improvement, halve the steps when none helps."""
    end = len(cache) + max(0, budget)
    fz = f(z)
    step = np.broadcast_to(np.asarray(step, float), np.shape(z)).copy()
    while step.max() >= smallest and len(cache) < end:
        improved = False
        for i in range(len(z)):
            for sign in (1.0, -1.0):
                if len(cache) >= end:
                    break
                y = z.copy()
                y[i] = min(max(y[i] + sign * step[i], lo[i]), hi[i])
                if y[i] == z[i]:
                    continue
                fy = f(y)
                if fy < fz - 1e-12:
                    z, fz, improved = y, fy, True
                    break
        if not improved:
            step /= 2.0
    return z


def _guess(problem: Problem, key: str) -> float:
    """A rough physical starting value from the recorded runs (the least contended DAG)."""
    obs, st = problem.obs, problem.observed
    quiet = obs.groupby("dag_id")["running"].mean().idxmin()
    q2s = st[(st["dag_id"] == quiet) & (st["stage"] == "queued_to_started")]["mean"]
    parse = float(problem.prof["overheads"].get("dag_file_parse_time", 0.0) or 0.0)
    guess = {"overheads.scheduler_loop_base": 0.01, "overheads.scheduler_per_ti": 0.001,
             "overheads.db_query_time": 0.002, "overheads.task_exit_cpu": 0.2,
             "overheads.scheduler_host_cores": 4.0, "celery.publish_time": 0.005, "celery.delivery_time": 0.005,
             "overheads.task_run_cpu": 0.1}
    start = (float(q2s.iloc[0]) if len(q2s) else 0.3) * 0.8 - parse
    guess["overheads.process_start_fork"] = guess["overheads.process_start_interpreter"] = start
    known = problem.known_bodies.get(quiet)
    if known is not None:
        body = obs[obs["dag_id"] == quiet]
        b = body["task_id"].map(lambda t: known.get(t, known.get("*")) if isinstance(known, dict) else known)
        over = (body["duration"] - b.astype(float)).dropna()
        if len(over):
            guess["overheads.task_run_cpu"] = float(over.median())
    lo, hi = PARAMETERS[key][:2]
    return float(min(max(guess.get(key, math.sqrt(lo * hi)), lo), hi))


def _quality(problem: Problem, sim: dict, role: str, dags) -> pd.DataFrame:
    """Per DAG and stage: observed and simulated mean and p50; ``error`` (and for the makespan
    ``within_spread``) of the statistic its fit scores (:func:`_statistic`)."""
    rows = []
    obs = problem.observed
    for _, o in obs[obs["dag_id"].isin(dags)].iterrows():
        s = sim.get((o["dag_id"], o["stage"]), (math.nan, math.nan))
        i, col = _statistic(problem, o["stage"])
        row = {"dag_id": o["dag_id"], "role": role, "stage": o["stage"], "n": int(o["n"]),
               "observed_mean": o["mean"], "observed_p50": o["p50"], "simulated_mean": s[0],
               "simulated_p50": s[1], "statistic": col,
               "error": (s[i] - o[col]) / max(abs(o[col]), FLOOR),
               "observed_min": o["min"], "observed_max": o["max"], "ci_low": o["ci_low"], "ci_high": o["ci_high"]}
        row["within_spread"] = bool(o["min"] <= s[i] <= o["max"]) if o["stage"] == "makespan" else None
        row["scored"] = _scored(problem, o)
        rows.append(row)
    return pd.DataFrame(rows)


def _statistic(problem: Problem, stage: str) -> tuple[int, str]:
    """What is scored of ``stage``: (0, "mean") or (1, "p50") (the problem's statistic, or the
    stage's own: inputs.STAGE_STATISTIC)."""
    if problem.statistic == "p50" or inp.STAGE_STATISTIC.get(stage) == "p50":
        return 1, "p50"
    return 0, "mean"


def _scored(problem: Problem, o) -> bool:
    """Whether the observed stage ``o`` is scored (a median of fewer than MEDIAN_RUNS is not)."""
    return problem.statistic != "p50" or int(o["n"]) >= MEDIAN_RUNS


def _objective_terms(problem: Problem, sim: dict, dags) -> np.ndarray:
    """Each scored stage's relative error of the problem's ``statistic`` (mean or p50)."""
    obs = problem.observed
    errs = []
    for _, o in obs[obs["dag_id"].isin(dags)].iterrows():
        if not _scored(problem, o):
            continue
        s = sim.get((o["dag_id"], o["stage"]))
        i, col = _statistic(problem, o["stage"])
        errs.append(10.0 if s is None or not math.isfinite(s[i]) else (s[i] - o[col]) / max(abs(o[col]), FLOOR))
    return np.array(errs)


@dataclass
class Calibration:
    """A fitted profile and how well it reproduces the runs it was fitted on."""

    profile: dict                 # {"extends", "description", "airflow", "overheads", "celery"}
    fitted: dict                  # dotted key -> fitted value
    known: dict                   # dotted key -> value given (config, settings)
    quality: pd.DataFrame         # per DAG and stage: observed vs simulated
    objective: float
    evaluations: int
    wall_seconds: float
    seeds: tuple
    executor: str
    dags: list
    problem: Problem = field(repr=False)
    fitted_at: str = ""

    def sections(self, settings=None) -> dict:
        """The complete profile sections (base, known, fitted), with ``settings`` on top."""
        return complete_sections(self.problem.prof, {**self.known, **inp.normalise_settings(settings)},
                                 self.fitted)

    def predict(self, dags, *, runs=None, dag_runs=None, settings=None, bodies=None, seeds=None,
                workers: int | None = None) -> pd.DataFrame:
        """Simulate other DAGs (structure files) with the fitted profile and compare with their
        recorded runs (default: the export it was fitted on). ``settings`` changes the deployment
        (``{"airflow.parallelism": 4}``); the comparison is then only meaningful for runs
        recorded with those settings."""
        return predict(self, dags, runs=runs if runs is not None else self.problem.inputs[0],
                       dag_runs=dag_runs if dag_runs is not None else self.problem.inputs[1],
                       executor=self.executor, settings=settings,
                       bodies=bodies if bodies is not None else self.problem.known_bodies,
                       seeds=seeds or self.seeds, workers=workers)

    def write(self, path) -> Path:
        return write_profile(self, path)

    def table(self) -> str:
        return quality_table(self.quality)


def calibrate(runs, dags, *, executor: str = "local", dag_runs=None, base_profile: str = "airflow-2.10",
              settings=None, config=None, bodies=None, seeds=(0, 1, 2), fit=None, max_evaluations: int = 300,
              design_points: int = 32, progress: bool = False) -> Calibration:
    """Fit ``base_profile``'s overheads to the recorded runs of ``dags``.

    ``runs``: task-instance export path(s) (or DataFrames); ``dags``: ``<dag_id>.tasks.json``
    structure file(s), the DAGs to fit on; ``dag_runs``: dag-run export path(s), for makespans
    and root tasks' ready times; ``settings``: known deployment settings, not fitted
    (``{"airflow.parallelism": 8, "overheads.scheduler_host_cores": 2,
    "celery.workers_on_scheduler_host": True}``); ``config``: a dump of Airflow's configuration
    (``config.txt``) read for more known settings (``settings`` wins); ``bodies``: the tasks' own
    work when known (``{"chain": 0.5, "fanout": {"end": 1.0}}``), else estimated from the
    export; ``seeds``: simulations per evaluation; ``fit``: the dotted keys to fit (default
    :data:`DEFAULT_FIT` minus the known ones)."""
    t0 = time.perf_counter()
    problem = _prepare(runs, dags, executor, dag_runs, base_profile, settings, bodies, config)
    names = _free_parameters(problem, fit)
    if not names:
        raise SimError("nothing to fit: every parameter is given as a known setting")
    seeds = tuple(int(s) for s in seeds)
    lo, hi = log_box(names)
    dag_ids = list(problem.templates)
    bar = progress_bar(progress, max_evaluations, f"calibrate {executor}")

    def score(fitted: dict) -> float:
        sections = complete_sections(problem.prof, problem.known, fitted)
        terms = _objective_terms(problem, problem.simulate(sections, seeds), dag_ids)
        return float(np.mean(terms ** 2))
    evaluate, cache = memoised(score, names, lo, hi, bar)

    # Starting points: a rough physical guess from the data, the base profile, and the two best
    # points of a Sobol design over the whole box. Nelder-Mead from each, then a compass search
    # from the best (robust to the objective's small steps: a task just catching a loop or not).
    starts = [np.log([_guess(problem, n) for n in names]), np.log([_start_value(problem, n) for n in names])]
    m = int(math.log2(design_points)) if design_points >= 2 and max_evaluations >= 4 * design_points else 0
    if m:
        sobol = qmc.Sobol(len(names), scramble=True, seed=seeds[0]).random_base2(m)
        design = [lo + u * (hi - lo) for u in sobol]
        scores = [evaluate(c) for c in design]
        starts += [design[i] for i in np.argsort(scores)[:2]]
    per_start = max(len(names) + 2, (max_evaluations - len(cache)) // (len(starts) + 1))
    results = [_nelder_mead(evaluate, np.clip(z0, lo, hi), lo, hi, per_start, 0.4) for z0 in starts]
    best = min(results, key=evaluate)
    best = _compass(evaluate, best, lo, hi, max_evaluations - len(cache), cache, step=0.2, smallest=0.02)
    if bar is not None:
        bar.close()
    fitted = {n: float(np.exp(v)) for n, v in zip(names, best)}
    sections = complete_sections(problem.prof, problem.known, fitted)
    sim = problem.simulate(sections, seeds)
    quality = _quality(problem, sim, "fit", dag_ids)
    profile = _profile_dict(problem, fitted)
    return Calibration(profile, fitted, dict(problem.known), quality, evaluate(best), len(cache),
                       time.perf_counter() - t0, seeds, executor, dag_ids, problem,
                       datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _profile_dict(problem: Problem, fitted: dict) -> dict:
    out = {"extends": problem.base_profile, "airflow": {}, "overheads": {}, "celery": {}}
    for key, value in {**problem.known, **fitted}.items():
        section, name = key.split(".", 1)
        out[section][name] = value
    if problem.executor != "celery":
        out.pop("celery")
    return {k: v for k, v in out.items() if v != {} or k == "extends"}


def predict(profile, dags, *, runs, executor: str = "local", dag_runs=None, settings=None, bodies=None,
            seeds=(0, 1, 2), workers: int | None = None) -> pd.DataFrame:
    """Simulate ``dags`` with a profile (a :class:`Calibration`, a profile name or file) and
    compare with their recorded runs: per DAG and stage, observed and simulated mean and p50,
    the relative error, and for the makespan whether the prediction lies within the recorded
    runs' spread (min to max)."""
    if isinstance(profile, Calibration):
        base, known, fitted = profile.problem.base_profile, dict(profile.known), dict(profile.fitted)
        prof = profile.problem.prof
    else:
        base, known, fitted = str(profile), {}, {}
        prof = load_profile(str(profile))
    known.update(inp.normalise_settings(settings))
    problem = _prepare(runs, dags, executor, dag_runs, base, {}, bodies)
    problem.prof, problem.known = prof, known
    if isinstance(profile, Calibration):
        problem.jitter = profile.problem.jitter          # the fitted runs' variation, not these
    else:
        problem.jitter = [0.0]       # a profile's own variation (loop phases, contention), never these runs'
    sections = complete_sections(prof, known, fitted)
    sim = problem.simulate(sections, tuple(seeds), workers)
    return _quality(problem, sim, "predicted", list(problem.templates))
