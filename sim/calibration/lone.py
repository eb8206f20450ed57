"""A held-out configuration's machine speed, measured on its own lone tasks.

Leaving one configuration out, what its prediction needs from the measuring machine is that
machine's pace while the configuration ran. Its session's speed, fitted on the others, is not
it: a session's configurations ran one after the other on one cloud VM whose pace moved between
them, and the joint fit's speed for a session is a compromise between stages that pull it apart
(chains want a faster machine, fan-outs a slower one). A chain of short tasks amplifies the
error: whether a link catches the scheduler's next loop or the one after turns on tens of
milliseconds, so 3 % of machine speed moves its makespan by 15 % (``docs/background.md``, *The
machine's speed*). In ``data/airflow-runs/af210-wide`` the chains' makespans (13.7-19.5 s) follow
the order of their configurations' fan-outs' lone start tasks' queued -> start (0.31-0.42 s), and
no setting orders them so (parallelism 2, 4, 16, 32: 0.39, 0.35, 0.42, 0.32 s).

So a held-out configuration is predicted, as a user predicts their own machine with ``sim
calibrate-all --speed-only``, at the speed at which the fold's profile takes the configuration's
lone tasks from queued to end, less their known bodies (the fork, set-up, parse and the run's own
overhead: what a chain's links turn on), as the recording did: the model's median is ``L + C /
speed`` (simulated at two speeds), solved for the recorded median. And for each DAG only from the
*other* DAGs' lone tasks: a chain at the speed its diamond's and fan-outs' lone tasks measured, a
diamond at its chain's and fan-outs'. No prediction reads its own DAG's times; every mechanism is
the fold's, fitted on the other configurations. Measured so with the shipped profile, the af210-wide
chains' makespans fall as their configurations' speed rises (Spearman -0.75 over the nine without
overlapping load; ``tests/test_lone_speed.py``).

A lone task is one that cannot overlap any other task of its DAG run (every other task is its
ancestor or its descendant: a chain's tasks, a diamond's first and last, a fan-out's start and
end) in a try with no other task instance running (``running`` at most one). The structure, not
the recorded overlap alone: at Celery concurrency 1 every task runs alone, the fan-out's middle
ones after queueing for seconds behind each other. A configuration whose DAG runs were triggered
several at once has no lone speed: its tasks queued behind each other's.
"""
from __future__ import annotations

import math

import numpy as np

from .model import simulated_observations

#: At most this many task instances running, time-averaged over a try's run, is a lone try (1, less
#: the rounding of that average; speed.py's lone tries too).
LONE = 1.0 + 1e-6
#: The two speeds the profile's lone start is simulated at, to solve ``L + C / speed``.
PROBE_SPEEDS = (0.8, 1.25)
#: The model's seeds a lone start is simulated with (the measurement's own, not the fit's).
SEEDS = (0, 1)
#: The least CPU work (seconds at the profile's machine's speed) a lone task's measure must hold to
#: tell a machine's speed: timestamps and the DB's latency vary by milliseconds from try to try
#: (here and in speed.py's --speed-only).
MIN_CPU = 0.05


def structurally_lone(dag) -> set:
    """The ids of the tasks of ``dag`` that no other task of a run can overlap: every other task
    is an ancestor or a descendant."""
    def reach(task, attr):
        seen, todo = set(), [task]
        while todo:
            for t in getattr(todo.pop(), attr):
                if t.task_id not in seen:
                    seen.add(t.task_id)
                    todo.append(t)
        return seen
    everything = set(dag.tasks)
    return {tid for tid, t in dag.tasks.items()
            if ({tid} | reach(t, "upstream") | reach(t, "downstream")) == everything}


def probe_tasks(config, exclude: str | None = None) -> set:
    """``(dag_id, task_id)`` of ``config``'s structurally lone tasks, but those of DAG ``exclude``."""
    return {(d, t) for d in config.dags if d != exclude
            for t in structurally_lone(config.problem.templates[d])}


def _select(obs, tasks, *, recorded: bool):
    keys = zip(obs["dag_id"], obs["task_id"])
    mask = np.fromiter((k in tasks for k in keys), bool, len(obs))
    if recorded:
        mask &= (obs["running"] <= LONE).to_numpy()
    return obs[mask]


def _overhead(obs, bodies: dict) -> np.ndarray:
    """Each try's queued -> end less its task's known body (``sleep``): the overhead of its way in
    and through, comparable across tasks whose bodies differ."""
    body = np.fromiter((_body(bodies, d, t) for d, t in zip(obs["dag_id"], obs["task_id"])), float, len(obs))
    return (obs["queued_to_started"] + obs["duration"]).to_numpy(float) - body


def _body(bodies: dict, dag: str, task: str) -> float:
    b = bodies.get(dag, math.nan)
    return float(b.get(task, b.get("*", math.nan)) if isinstance(b, dict) else b)


def lone_speed(config, fitted: dict, exclude: str | None = None, seeds=SEEDS) -> float:
    """The ``cpu_speed`` at which the model (``config``'s base profile with ``fitted``'s
    mechanisms) takes ``config``'s lone tasks outside DAG ``exclude`` from queued to end, less
    their known bodies, as its recorded runs did (the median over those tries: the fork, set-up,
    parse and the run's own overhead, the stages whose CPU a chain's links turn on). NaN when none
    ran alone, when the DAG runs were triggered several at once, when a body is unknown, or when
    no speed fits."""
    return lone_speeds(config, fitted, [exclude], seeds)[exclude]


def lone_speeds(config, fitted: dict, excludes, seeds=SEEDS) -> dict:
    """:func:`lone_speed` for each DAG of ``excludes`` left out in turn (``None``: none), from one
    set of simulations: what the model does at the probe speeds does not depend on which tasks
    are read."""
    from .joint import sections_for  # lazy: joint imports this module (a cycle at import time)
    p = config.problem
    out = {e: math.nan for e in excludes}
    if p.concurrent > 1:
        return out
    sims = []
    for speed in PROBE_SPEEDS:
        sections = sections_for(config, fitted, speed=speed)
        sampled = p.bodies(sections)
        sims.append([simulated_observations(*p.replayed(sections, s, sampled), p.roots) for s in seeds])
    x = 1.0 / np.asarray(PROBE_SPEEDS)
    for exclude in excludes:
        tasks = probe_tasks(config, exclude)
        rec = _overhead(_select(p.obs, tasks, recorded=True), p.known_bodies)
        rec = rec[np.isfinite(rec)]
        if not len(rec):
            continue
        points = []
        for at_speed in sims:
            meds = []
            for o in at_speed:
                o = _overhead(_select(o, tasks, recorded=False), p.known_bodies)
                meds.append(float(np.median(o[np.isfinite(o)])) if np.isfinite(o).any() else math.nan)
            points.append(float(np.mean(meds)))
        cpu = (points[0] - points[1]) / (x[0] - x[1])
        latency = points[0] - cpu * x[0]
        target = float(np.median(rec))
        if cpu >= MIN_CPU and target > latency:
            out[exclude] = float(cpu / (target - latency))
    return out


__all__ = ["structurally_lone", "probe_tasks", "lone_speed", "lone_speeds", "PROBE_SPEEDS", "MIN_CPU", "LONE"]
