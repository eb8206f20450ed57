"""A machine's speed alone: ``sim calibrate-all --speed-only``.

Every mechanism stays as the base profile has it; each measuring session gets one number, its
``overheads.cpu_speed`` against the profile's machine. That one number is what a user needs to
predict their own machine from the shipped profile, and what every held-out check of the shipped
profile rests on.

What fixes it: how long a task that ran alone took from queued to ``start_date`` on that machine
(the fork, the interpreter's set-up and the DAG file's parse, with nothing competing: the
machine's pace, as :func:`sim.calibration.joint.speed_start` reads it). In the model that wait is a
latency plus CPU work done at the machine's speed, ``L + C / cpu_speed``: the fit simulates the
recorded runs at a few speeds, fits ``L`` and ``C`` by least squares (R^2 above 0.99 on every
committed session) and solves for the speed at which the model's median lone start equals the
recorded one.

Airflow 3 writes ``start_date`` when the supervisor has forked the task process, before its
set-up and parse: its lone start is a few milliseconds of waiting whatever the machine (the
``airflow-3`` profile's model: 0.017 + 0.002 / cpu_speed s), and tells nothing of the speed. When
the lone start holds less than :data:`MIN_CPU` of CPU work, the fit uses the lone task's queued ->
end instead (its set-up, parse, run and exit: the same tasks, the body included in both the
recording and the model).

Why not the stages' objective, as the joint fit does: in the speed alone it is bumpy. Where a
task's end falls in the scheduler loop's cycle moves a short DAG's makespan by a whole idle loop
(the phase effect), so an optimiser lands in one of its dips: on the committed held-out sessions
the speeds it found moved by 8-41 % between pairs of seeds, and its predictions of the Celery
fan-outs on the slower machines came out 11-24 % short. The lone start moves smoothly with the
speed; its speeds move by 4-5 % between pairs of seeds, and every chain and fan-out of the three
held-out sessions is predicted within 12.6 % at them (12.3 % with the refitted profile). It is not
the joint fit's scale (on the training sessions it gives 1.20, 1.25, 1.33 where the joint fit has
1, 1.24, 1.25): ``docs/howto.md``, *What the cross-validation says*, compares the two.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import SimError
from .fit import progress_bar
from .joint import SPEED, SPEED_RANGE, JointFit, _errors, _loss, sections_for
from .lone import LONE, MIN_CPU
from .model import simulated_observations

#: The speeds simulated: 10, equal steps in log-speed from x1/2 to x2 of the profile's machine.
POINTS = 10
#: What a lone task's time is measured by, in turn: queued -> start, else queued -> end.
MEASURES = {"queued_to_started": "queued -> start", "queued_to_ended": "queued -> end"}


def grid() -> np.ndarray:
    """The speeds simulated, from 1/SPEED_RANGE to SPEED_RANGE in equal log steps."""
    r = math.log(SPEED_RANGE)
    return np.exp(np.linspace(-r, r, POINTS))


def lone_tasks(config) -> set:
    """The tasks of ``config``'s recorded runs that ran alone (at most one task instance running
    on the host, time-averaged over its run, in most of its runs)."""
    o = config.problem.obs
    return set(o.groupby("task_id")["running"].median().loc[lambda r: r <= LONE].index)


def _measure(obs, measure: str):
    if measure == "queued_to_ended":
        return obs["queued_to_started"] + obs["duration"]
    return obs[measure]


def recorded_lone_start(config, measure: str = "queued_to_started") -> float:
    """The median queued -> start (or another of :data:`MEASURES`) of ``config``'s recorded tries
    of :func:`lone_tasks` that ran alone (NaN when there are none)."""
    o = config.problem.obs
    x = _measure(o, measure)[(o["running"] <= LONE) & o["task_id"].isin(lone_tasks(config))].dropna()
    return float(x.median()) if len(x) else math.nan


def simulated_lone_start(config, fitted: dict, seeds, measure: str = "queued_to_started") -> float:
    """The model's median queued -> start (or another of :data:`MEASURES`) of the same tasks, at
    ``fitted``'s speed, averaged over ``seeds``."""
    p = config.problem
    sections = sections_for(config, fitted)
    bodies = p.bodies(sections)
    ids = lone_tasks(config)
    meds = []
    for seed in seeds:
        sim = simulated_observations(*p.replayed(sections, seed, bodies), p.roots)
        meds.append(float(_measure(sim, measure)[sim["task_id"].isin(ids)].median()))
    return float(np.mean(meds))


def solve(speeds, starts, recorded: float) -> tuple[float, float, float, float]:
    """``(speed, L, C, R^2)``: the least-squares line ``start = L + C / speed`` through the
    simulated points (how well it fits them), solved for the recorded start; clipped to the
    speeds' range."""
    speeds, starts = np.asarray(speeds, float), np.asarray(starts, float)
    lo, hi = float(np.min(speeds)), float(np.max(speeds))
    ok = np.isfinite(starts)                     # (a speed at which no lone task succeeded: none)
    if ok.sum() < 3:
        raise SimError("the model started no lone task at most of the speeds tried: no speed fits")
    x, y = 1.0 / speeds[ok], starts[ok]
    c, latency = np.polyfit(x, y, 1)
    if c <= 0:
        raise SimError("the model's lone start does not shorten as the machine gets faster: no speed fits it")
    speed = c / (recorded - latency) if recorded > latency else hi
    r2 = 1.0 - np.var(y - (latency + c * x)) / np.var(y)
    return float(min(max(speed, lo), hi)), float(latency), float(c), float(r2)


def fit_speeds(configs, *, reference: str, seeds=(0, 1), progress: bool = False) -> tuple[JointFit, dict]:
    """Each session's ``cpu_speed`` against ``reference`` (a session none of ``configs`` belongs
    to: the base profile's machine), the mechanisms as the configurations' base profile has them.

    Returns the :class:`JointFit` (``fitted`` holds ``cpu_speed@<session>`` for every session; its
    objective is the stages' at the fitted speeds) and, per session, what fixed the speed:
    ``{session: {"recorded": s, "latency": L, "cpu": C, "r2": how well L + C / speed fits,
    "measure": which of MEASURES, "configurations": {name: its own recorded lone start}}}``."""
    t0 = time.perf_counter()
    seeds = tuple(int(s) for s in seeds)
    sessions = sorted({c.session for c in configs} - {reference})
    speeds = grid()
    bar = progress_bar(progress, len(sessions) * len(speeds), "speed")
    fitted, why = {}, {}
    evaluations = 0
    for session in sessions:
        mine = [c for c in configs if c.session == session]
        if all(math.isnan(recorded_lone_start(c)) for c in mine):
            names = ", ".join(str(c.folder) for c in mine)
            raise SimError(f"{names}: no task ran alone in the recorded runs, and the speed is fitted on "
                           f"tasks that did (record a chain or a diamond)")
        key = SPEED + session
        for i, measure in enumerate(MEASURES):
            if i and bar is not None:
                bar.total += len(speeds)              # the next measure's speeds too
                bar.refresh()
            evaluations += len(speeds)
            recorded = [recorded_lone_start(c, measure) for c in mine]
            used = [c for c, r in zip(mine, recorded) if not math.isnan(r)]
            target = float(np.median([r for r in recorded if not math.isnan(r)]))
            starts = []
            for s in speeds:
                starts.append(float(np.median([simulated_lone_start(c, {key: float(s)}, seeds, measure)
                                               for c in used])))
                if bar is not None:
                    bar.update(1)
            try:
                fitted[key], latency, cpu, r2 = solve(speeds, starts, target)
            except SimError:
                if i == len(MEASURES) - 1:
                    raise
                continue                               # (a start with no CPU in it: noise either way)
            if cpu >= MIN_CPU:
                break
        else:
            raise SimError(f"the base profile's lone tasks hold {cpu:.3f} s of CPU work in their "
                           f"{MEASURES[measure]} (under {MIN_CPU} s): nothing recorded alone tells this "
                           f"machine's speed")
        why[session] = {"recorded": target, "latency": latency, "cpu": cpu, "r2": r2, "measure": measure,
                        "configurations": {c.name: r for c, r in zip(mine, recorded) if not math.isnan(r)}}
    if bar is not None:
        bar.close()
    objective = float(np.mean([_loss(_errors(c, fitted, seeds)) for c in configs]))
    fit = JointFit(fitted, objective, evaluations, time.perf_counter() - t0, seeds, list(configs))
    return fit, why


__all__ = ["fit_speeds", "grid", "solve", "lone_tasks", "recorded_lone_start", "simulated_lone_start", "POINTS",
           "MEASURES", "MIN_CPU"]
