"""Validation of the simulator against theory (validation.md, "Ground truth for validating the
simulator"), with the ``ideal`` profile: every overhead is zero and the scheduler reacts at once,
so LocalExecutor with ``parallelism: c`` is exactly c FIFO servers and a DAG run is a greedy list
schedule of its tasks.

Statistics (validation.md, "Statistics done right"): every statistical claim uses >= 5 independent
replications (fixed seeds, so the verdict of the same code never flips), discards a warm-up, and
asks a Student-t confidence interval over the replications to cover the theoretical value. The
level is 99 % rather than 95 %: this file checks about a dozen intervals by default, and at 95 %
one of them would miss by pure chance about half the time. To keep a wide interval from "covering"
anything, each check also bounds the interval's relative half-width. Exact identities (Little's
law as bookkeeping, the critical path, Graham's bounds) are checked on every run, with no statistics.

The bigger, more replicated variants are marked ``slow`` (``pytest -m slow``).
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import theory as th
from sim.scenario import scenario_from_dict
from sim.simulation import Simulation

from ideal_dags import DIAMOND_CONSTANT, DIAMOND_DEPS, DIAMOND_RANDOM, critical_path  # tests/ideal_dags.py

#: Confidence level of every interval in this file (see the module docstring).
LEVEL = 0.99
#: "Very large" for limits that must never bind.
UNLIMITED = 1_000_000
#: Mean (or constant) service time of the queueing cases, seconds: 1/mu.
SERVICE = 60.0
#: A wait shorter than this counts as no wait.
EPS = 1e-9


# --------------------------------------------------------------------------- helpers
def scenario_dict(dags: list[dict], *, slots: int = UNLIMITED, seed: int = 0,
                  horizon: float = 3600.0) -> dict:
    """A scenario, shaped like a scenario YAML file, on the ``ideal`` profile with LocalExecutor:
    ``slots`` executor slots (``parallelism``), every other concurrency limit out of the way."""
    return {
        "name": "validation",
        "seed": seed,
        "horizon": horizon,
        "profile": "ideal",
        "airflow": {"parallelism": slots,
                    "default_pool_task_slot_count": UNLIMITED,
                    "max_active_tasks_per_dag": UNLIMITED,
                    "max_active_runs_per_dag": UNLIMITED},
        "executor": {"kind": "local"},
        "dags": dags,
    }


def dag_dict(dag_id: str, schedule: dict, tasks: dict[str, object],
             dependencies: list[str] | str = "") -> dict:
    """One DAG entry; ``tasks`` maps task_id -> duration spec; run and task limits unbounded."""
    return {"dag_id": dag_id, "schedule": schedule,
            "max_active_runs": UNLIMITED, "max_active_tasks": UNLIMITED,
            "tasks": {t: {"duration": d} for t, d in tasks.items()},
            "dependencies": dependencies}


@dataclass
class Frames:
    task_instances: pd.DataFrame
    dag_runs: pd.DataFrame
    transitions: pd.DataFrame


def simulate(data: dict) -> Frames:
    """Build the scenario from ``data``, run it with transitions recorded, return the frames."""
    result = Simulation(scenario_from_dict(data), record_transitions=True).run()
    assert not result.stuck, f"runs did not finish: {result.stuck[:5]}"
    return Frames(result.task_instances, result.dag_runs, result.transitions)


def check_ci(samples, theory: float, max_rel_half_width: float, what: str) -> tuple[float, float]:
    """The t interval (LEVEL) of ``samples`` must cover ``theory`` and be reasonably narrow."""
    mean, hw = th.mean_ci(samples, LEVEL)
    msg = (f"{what}: {mean:.5g} ± {hw:.3g} ({LEVEL:.0%} CI over {len(samples)} seeds) "
           f"vs theory {theory:.5g}")
    assert abs(mean - theory) <= hw, "interval misses theory: " + msg
    assert hw <= max_rel_half_width * theory, "interval too wide to mean anything: " + msg
    return mean, hw


# --------------------------------------------------------------------------- queueing runs
@dataclass(frozen=True)
class Queue:
    """Single-task DAG runs arriving as a Poisson process onto c slots (validation.md: "In
    executor terms: single-task DAG runs arriving as a Poisson process onto c executor slots")."""

    service: str          # "exponential" (M/M/c) or "constant" (M/D/c)
    c: int
    rho: float
    customers: int        # expected arrivals per replication after the warm-up

    @property
    def lam(self) -> float:               # arrivals per second
        return self.rho * self.c / SERVICE

    @property
    def warmup(self) -> float:
        """Discarded start (seconds): 10 relaxation times 1/(cμ(1−√ρ)²) of the queue started
        empty, at least one hour."""
        return max(3600.0, 10.0 * th.mmc_relaxation_time(self.c, self.rho, SERVICE))

    @property
    def horizon(self) -> float:
        return self.warmup + self.customers / self.lam

    def data(self, seed: int) -> dict:
        duration = ({"exponential": {"mean": SERVICE}} if self.service == "exponential"
                    else {"constant": SERVICE})
        dag = dag_dict("q", {"poisson_per_hour": self.lam * 3600.0}, {"work": duration})
        return scenario_dict([dag], slots=self.c, seed=seed, horizon=self.horizon)

    def theory_wq(self) -> float:
        if self.service == "exponential":
            return th.mmc_wq(self.lam, 1.0 / SERVICE, self.c)
        return th.mdc_wq_exact(self.lam, SERVICE, self.c)

    def theory_p_wait(self) -> float:
        if self.service == "exponential":
            return th.mmc_p_wait(self.lam, 1.0 / SERVICE, self.c)
        return th.mdc_p_wait_exact(self.lam, SERVICE, self.c)


@functools.lru_cache(maxsize=None)
def _cached_replication(q: Queue, seed: int) -> Frames:
    return simulate(q.data(seed))


def replicate(q: Queue, seed: int) -> Frames:
    """One replication. Only the queue the Little's-law checks share with the M/M/c test is kept
    in memory (the slow runs would take gigabytes)."""
    if q == LITTLE_QUEUE:
        return _cached_replication(q, seed)
    return simulate(q.data(seed))


def waits(q: Queue, seed: int) -> np.ndarray:
    """Per-customer wait = started_at − due_at of its run, for runs due after the warm-up."""
    f = replicate(q, seed)
    runs = f.dag_runs[["run_id", "due_at"]]
    tis = f.task_instances[["run_id", "try_number", "started_at"]]
    assert (tis.try_number == 1).all() and len(tis) == len(runs)
    m = tis.merge(runs, on="run_id", validate="one_to_one")
    m = m[m.due_at >= q.warmup]
    return (m.started_at - m.due_at).to_numpy()


def check_queue(q: Queue, seeds, max_rel_wq: float, max_rel_p: float) -> None:
    per_seed = [waits(q, s) for s in seeds]
    assert all(w.min() >= -EPS for w in per_seed)
    check_ci([w.mean() for w in per_seed], q.theory_wq(), max_rel_wq, f"{q} mean wait Wq")
    check_ci([(w > EPS).mean() for w in per_seed], q.theory_p_wait(), max_rel_p, f"{q} P(wait)")


SEEDS = tuple(range(1, 11))              # 10 replications by default
SLOW_SEEDS = tuple(range(101, 121))      # 20 other replications for the slow variants

MMC_FAST = [Queue("exponential", 2, 0.5, 6000),
            Queue("exponential", 2, 0.8, 6000),
            Queue("exponential", 4, 0.75, 6000)]
MMC_SLOW = [Queue("exponential", 1, 0.7, 25000),
            Queue("exponential", 2, 0.5, 25000),
            Queue("exponential", 2, 0.8, 25000),
            Queue("exponential", 4, 0.75, 25000),
            Queue("exponential", 8, 0.9, 25000)]
#: The M/M/c case whose runs the Little's-law tests reuse.
LITTLE_QUEUE = MMC_FAST[2]   # c=4, ρ=0.75
MDC_FAST = [Queue("constant", 2, 0.8, 6000),
            Queue("constant", 4, 0.75, 6000)]
MDC_SLOW = [Queue("constant", 1, 0.7, 25000),
            Queue("constant", 3, 0.6, 25000),
            Queue("constant", 4, 0.75, 25000),
            Queue("constant", 8, 0.9, 25000)]


# --------------------------------------------------------------------------- 1. M/M/c
@pytest.mark.parametrize("q", MMC_FAST, ids=lambda q: f"c{q.c}-rho{q.rho}")
def test_mmc_erlang_c(q):
    """M/M/c (validation.md, "M/M/c (Erlang C)"): P(wait) = C(c, a) and Wq = C(c, a)/(cμ − λ).

    Wait of a customer = started_at − due_at of its single-task run; per seed the mean wait and the
    fraction that waited; their t intervals over 10 seeds must cover ``mmc_wq`` / ``mmc_p_wait``."""
    check_queue(q, SEEDS, max_rel_wq=0.35, max_rel_p=0.10)


def test_queue_is_fifo():
    """The M/M/c tests assume FCFS (validation.md's formulas are for it, and ``ideal`` queues runs'
    tasks in order of logical date). Mean wait and P(wait) would not notice another order, so check
    it directly on the reused runs: sorted by due_at, start times never decrease."""
    for seed in SEEDS[:3]:
        f = replicate(LITTLE_QUEUE, seed)
        m = f.task_instances[["run_id", "started_at"]].merge(f.dag_runs[["run_id", "due_at"]],
                                                               on="run_id")
        starts = m.sort_values("due_at", kind="stable").started_at.to_numpy()
        assert np.all(np.diff(starts) >= -EPS)


@pytest.mark.slow
@pytest.mark.parametrize("q", MMC_SLOW, ids=lambda q: f"c{q.c}-rho{q.rho}")
def test_mmc_erlang_c_slow(q):
    """M/M/c (validation.md, Erlang C), more loads, 20 seeds x 25 000 customers: the intervals must
    cover Wq = C(c, a)/(cμ − λ) and C(c, a), and be narrow (Wq to ±15 %, P(wait) to ±4 %)."""
    check_queue(q, SLOW_SEEDS, max_rel_wq=0.15, max_rel_p=0.04)


# --------------------------------------------------------------------------- 2. M/D/c
@pytest.mark.parametrize("q", MDC_FAST, ids=lambda q: f"c{q.c}-rho{q.rho}")
def test_mdc_crommelin(q):
    """M/D/c (validation.md, "M/D/c", exact via Crommelin's chain N(t+D) = max(N(t) − c, 0) +
    Poisson(λD)): the t intervals of the mean wait and of P(wait) over 10 seeds must cover
    ``mdc_wq_exact`` and ``mdc_p_wait_exact``."""
    check_queue(q, SEEDS, max_rel_wq=0.35, max_rel_p=0.10)


@pytest.mark.slow
@pytest.mark.parametrize("q", MDC_SLOW, ids=lambda q: f"c{q.c}-rho{q.rho}")
def test_mdc_crommelin_slow(q):
    """M/D/c (validation.md, Crommelin exact), more loads, 20 seeds x 25 000 customers."""
    check_queue(q, SLOW_SEEDS, max_rel_wq=0.15, max_rel_p=0.04)


def test_mdc_exact_is_not_half_of_mmc():
    """Sanity of the M/D/c target itself (validation.md: Cosmetatos within ~1 % of exact; the plain
    "half of M/M/c" rule 4–12 % low), so the M/D/c tests above do discriminate."""
    for q in MDC_FAST:
        exact = q.theory_wq()
        assert th.cosmetatos_mdc_wq(q.lam, SERVICE, q.c) == pytest.approx(exact, rel=0.02)
        assert 0.5 * th.mmc_wq(q.lam, 1.0 / SERVICE, q.c) < exact


# --------------------------------------------------------------------------- 3. Little's law
WAITING = ("scheduled", "queued")
RUNNING = ("running",)


def state_area(transitions: pd.DataFrame, states, t0: float, t1: float) -> float:
    """∫_{t0}^{t1} (number of task instances in ``states``) dt, rebuilt from the transitions."""
    frm = transitions.from_state.astype(str).isin(states).to_numpy()
    to = transitions.to_state.astype(str).isin(states).to_numpy()
    delta = to.astype(int) - frm.astype(int)
    keep = delta != 0
    times = transitions.time.to_numpy()[keep]
    delta = delta[keep]
    order = np.argsort(times, kind="stable")
    times, level = times[order], np.cumsum(delta[order])
    assert level.min() >= 0
    # level[i] holds on [times[i], times[i+1]); clip each piece to the window
    starts = np.clip(times, t0, t1)
    ends = np.clip(np.append(times[1:], t1), t0, t1)
    return float(np.sum(level * (ends - starts)))


def little_one_seed(q: Queue, seed: int) -> dict:
    """Time averages over the window [warm-up, horizon] from the transitions, and the per-try
    records' version of the same quantities."""
    f = replicate(q, seed)
    t0, t1 = q.warmup, q.horizon
    span = t1 - t0
    tis = f.task_instances
    out = {}
    for name, states, a, b in (("wait", WAITING, "scheduled_at", "started_at"),
                               ("run", RUNNING, "started_at", "ended_at")):
        area = state_area(f.transitions, states, t0, t1)
        start, end = tis[a].to_numpy(), tis[b].to_numpy()
        # Bookkeeping identity: the same area from the rows, each stay clipped to the window.
        clipped = np.clip(np.minimum(end, t1) - np.maximum(start, t0), 0.0, None).sum()
        # Little: tries that entered during the window; λ from their count, W from their rows.
        entered = (start >= t0) & (start < t1)
        out[name] = dict(L=area / span, clipped=clipped / span,
                         lam=entered.sum() / span, W=(end - start)[entered].mean())
    return out




@pytest.mark.parametrize("seed", SEEDS[:5])
def test_little_law_bookkeeping(seed):
    """Little's law (validation.md, "Little's law"): L = λW, for the waiting (scheduled + queued)
    and the running task instances. L is the time average rebuilt from the ``transitions`` table
    over the window [warm-up, horizon]; λ and W come from the per-try rows. Two records of one run
    must agree: the areas exactly (1e-9), L = λW to 1 % (the only gap is the stays that straddle
    the window's ends)."""
    r = little_one_seed(LITTLE_QUEUE, seed)
    for name, x in r.items():
        assert x["L"] == pytest.approx(x["clipped"], rel=1e-9, abs=1e-9), name
        assert x["L"] == pytest.approx(x["lam"] * x["W"], rel=0.01), name


def test_little_law_against_theory():
    """Little's law against theory (validation.md): busy slots = λ × mean service time = a = λ/μ,
    and Lq = λ·Wq with Wq = C(c, a)/(cμ − λ). Time averages per seed (from the transitions), t
    intervals over 10 seeds must cover a and λ·mmc_wq."""
    q = LITTLE_QUEUE
    per_seed = [little_one_seed(q, s) for s in SEEDS]
    check_ci([r["run"]["L"] for r in per_seed], q.lam * SERVICE, 0.03, "busy slots")
    check_ci([r["wait"]["L"] for r in per_seed], q.lam * q.theory_wq(), 0.35, "Lq")


# --------------------------------------------------------------------------- 4. DAG critical path
def dag_from_edges(n: int, edges, durations) -> tuple[dict, list[str]]:
    """Tasks t0..t{n−1} with the given durations and edges (i, j) meaning ti >> tj."""
    names = [f"t{i}" for i in range(n)]
    tasks = {names[i]: durations[i] for i in range(n)}
    deps = [f"{names[i]} >> {names[j]}" for i, j in edges]
    return tasks, deps


def one_run(tasks: dict, deps, *, slots: int = UNLIMITED, seed: int = 0) -> Frames:
    """A single DAG run due at 0 s."""
    dag = dag_dict("g", {"at": [0]}, tasks, deps)
    return simulate(scenario_dict([dag], slots=slots, seed=seed))


def recorded_dag(f: Frames) -> tuple[float, float, float]:
    """(makespan, total work Wk, critical path CP) of the only run, with each task's duration
    taken from its record (ended_at − started_at)."""
    assert len(f.dag_runs) == 1 and (f.dag_runs.state == "success").all()
    run = f.dag_runs.iloc[0]
    makespan = float(run.ended_at - run.started_at)
    tis = f.task_instances
    assert (tis.try_number == 1).all() and tis.task_id.is_unique
    dur = dict(zip(tis.task_id.astype(str), (tis.ended_at - tis.started_at).astype(float)))
    return makespan, float(sum(dur.values())), dur






def layered_dag(seed: int, layers: int = 6, width: int = 5, random_durations: bool = False):
    """A random layered DAG: each task of layer k > 0 depends on 1–3 tasks of layer k − 1 (and
    sometimes one of layer k − 2); durations constant (drawn here) or exponential (drawn by
    the simulator)."""
    rng = random.Random(seed)
    layer_of, edges, n = [], [], 0
    for k in range(layers):
        size = rng.randint(1, width)
        layer_of.append(list(range(n, n + size)))
        for j in layer_of[k]:
            if k > 0:
                for i in rng.sample(layer_of[k - 1], rng.randint(1, min(3, len(layer_of[k - 1])))):
                    edges.append((i, j))
            if k > 1 and rng.random() < 0.3:
                edges.append((rng.choice(layer_of[k - 2]), j))
        n += size
    if random_durations:
        durations = [{"exponential": {"mean": round(rng.uniform(5, 120), 3)}} for _ in range(n)]
    else:
        durations = [round(rng.uniform(1, 120), 3) for _ in range(n)]
    return dag_from_edges(n, edges, durations)


FIXED_DAGS = {
    "diamond-constant": (DIAMOND_CONSTANT, DIAMOND_DEPS),
    "diamond-random": (DIAMOND_RANDOM, DIAMOND_DEPS),
    "layered-constant": layered_dag(11),
    "layered-random": layered_dag(12, random_durations=True),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", FIXED_DAGS)
def test_makespan_equals_critical_path(name, seed):
    """DAG bound (validation.md, "DAG bounds"): unlimited slots and zero overhead give makespan =
    CP exactly. Makespan = ended_at − started_at of the run; CP = the longest path with each
    task's recorded duration (ended_at − started_at); equal to 1e-9 s."""
    tasks, deps = FIXED_DAGS[name]
    f = one_run(tasks, deps, seed=seed)
    makespan, _, dur = recorded_dag(f)
    assert makespan == pytest.approx(critical_path(dur, deps), rel=0, abs=1e-9)
    if name.endswith("constant"):     # the recorded durations are the given constants
        for t, d in dur.items():
            assert d == pytest.approx(float(tasks[t]), rel=0, abs=1e-9)


# --------------------------------------------------------------------------- 5. Graham
def check_graham(tasks: dict, deps, m: int, seed: int = 0) -> None:
    f = one_run(tasks, deps, slots=m, seed=seed)
    makespan, work, dur = recorded_dag(f)
    cp = critical_path(dur, deps)
    lo, hi = th.dag_lower_bound(work, cp, m), th.graham_bound(work, cp, m)
    assert lo - 1e-9 <= makespan <= hi + 1e-9, (
        f"m={m}: makespan {makespan:.9g} outside [{lo:.9g}, {hi:.9g}] (Wk={work:.9g}, CP={cp:.9g})")
    # never more than m tasks at once
    tis = f.task_instances
    ev = np.r_[np.c_[tis.started_at, np.ones(len(tis))], np.c_[tis.ended_at, -np.ones(len(tis))]]
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]     # at equal times, ends before starts
    assert np.cumsum(ev[:, 1]).max() <= m


@pytest.mark.parametrize("m", [1, 2, 3, 5])
@pytest.mark.parametrize("name", FIXED_DAGS)
def test_graham_bounds_fixed_dags(name, m):
    """Graham (validation.md, "DAG bounds"): on m slots, max(Wk/m, CP) <= makespan <=
    Wk/m + (1 − 1/m)·CP, with Wk and CP from the recorded task durations."""
    tasks, deps = FIXED_DAGS[name]
    check_graham(tasks, deps, m)


@st.composite
def random_dags(draw):
    """A random DAG on up to 12 tasks (edges only from lower to higher index, so acyclic),
    constant durations (0 allowed) or exponential ones."""
    n = draw(st.integers(1, 12))
    edges = [(i, j) for j in range(n) for i in range(j) if draw(st.booleans())]
    if draw(st.booleans()):
        durations = draw(st.lists(st.sampled_from([0, 0.5, 1, 2.5, 7, 10, 33.3, 60, 125]),
                                  min_size=n, max_size=n))
    else:
        durations = [{"exponential": {"mean": 30}}] * n
    return dag_from_edges(n, edges, durations)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(dag=random_dags(), m=st.integers(1, 6), seed=st.integers(0, 1000))
def test_graham_bounds_random_dags(dag, m, seed):
    """Graham (validation.md): max(Wk/m, CP) <= makespan <= Wk/m + (1 − 1/m)·CP for random DAGs
    and m slots; with unlimited slots, makespan = CP (abs 1e-9). Derandomized: the same examples
    on every run."""
    tasks, deps = dag
    check_graham(tasks, deps, m, seed)
    makespan, _, dur = recorded_dag(one_run(tasks, deps, seed=seed))
    assert makespan == pytest.approx(critical_path(dur, deps), rel=0, abs=1e-9)
