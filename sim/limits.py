"""Bounded work: estimate what a scenario will simulate before running it, and refuse what would
not finish or would not fit in memory.

A scenario that validates may still ask for 10^9 DAG runs (``every: 1s`` over a 100-year horizon),
a burst of 10^7 runs, or 10^8 tries of a task that always fails. The simulator keeps every task
instance of a run alive and one record per try, about 0.5-1 KB each and 5-10 microseconds of
work each (``sim bench``: 1,000,000 task instances take about 1 GB and a few minutes). So before
running, the work is estimated as expected task-instance tries (plus sensor pokes) and compared
with a limit, ``DEFAULT_MAX_TASK_INSTANCES``, which ``--max-task-instances N`` raises.

The default, 5,000,000, is five times the largest workload the project benchmarks (``sim bench
--task-instances 1000000``, issue #2); past it a run
takes tens of minutes and several GB, which deserves a deliberate flag. The largest shipped
scenario (mmc-poisson) is about 4,300.
"""
from __future__ import annotations

import math
from datetime import datetime

from croniter import croniter

from .airflow import idle_loops
from .errors import SimError
from .model import schedules as sch

DEFAULT_MAX_TASK_INSTANCES = 5_000_000
#: A periodic process's wake-up costs about a tenth of a task-instance try (sim bench, profiled):
#: the limit on wake-ups is this many times the limit on tries.
WAKEUPS_PER_TRY = 10
FLAG = "--max-task-instances"


def expected_runs(schedule, horizon: float) -> float:
    """Expected number of DAG runs due within ``horizon`` (exact but for Poisson arrivals)."""
    if schedule is None:
        return 0.0
    if isinstance(schedule, sch.CatchUp):
        return float(schedule.runs) + expected_runs(schedule.base, horizon)
    if isinstance(schedule, sch.Interval):
        return math.floor(horizon / schedule.every) if horizon >= schedule.every else 0.0
    if isinstance(schedule, sch.Poisson):
        return schedule.per_hour * horizon / 3600.0
    if isinstance(schedule, sch.At):
        return float(sum(1 for t in schedule.at if t <= horizon))
    if isinstance(schedule, sch.Burst):
        return float(schedule.runs) if schedule.at <= horizon else 0.0
    if isinstance(schedule, sch.Cron):
        # Count the first fires; past 1,000 of them, extrapolate at the rate they came.
        it = croniter(schedule.expression, schedule.start_date)
        last = 0.0
        for n in range(1, 1001):
            try:
                t = (it.get_next(datetime) - schedule.start_date).total_seconds()
            except (ValueError, OverflowError, KeyError):    # past the year 9999, or never fires
                return (n - 1) * horizon / last if last else float(n - 1)
            if t > horizon:
                return float(n - 1)
            last = t
        return 1000.0 * horizon / last if last > 0 else math.inf
    return 1.0                                              # an unknown kind: count one run


def expected_tries(task) -> float:
    """Expected tries of one task instance: 1 + p + p^2 + ... + p^retries for failure
    probability p, and a sensor's pokes (in either mode, each poke is work for the engine)."""
    p, r = task.failure_probability, task.retries
    known = min(task.failed_tries, r + 1)          # tries that fail whatever is drawn come first
    rest = r + 1 - known
    tries = known + (float(rest) if p >= 1 else (1.0 - p ** rest) / (1.0 - p))
    if task.sensor is not None and task.sensor.mode == "reschedule":   # poke mode pokes in one try
        s = task.sensor
        tries *= max(1.0, min(s.wait.mean, s.timeout) / s.poke_interval)
    if task.deferrable is not None:
        tries *= 2                                          # the resumed half is a second trip
    return tries


def expected_width(task, max_map_length: int) -> float:
    """Task instances per run: 1, or a mapped task's expected list length (at most max_map_length,
    beyond which the expansion fails)."""
    if task.expand is None:
        return 1.0
    return max(0.0, min(task.expand.mean, float(max_map_length)))


def estimate(scenario) -> dict:
    """``{"runs": ..., "task_instances": ..., "tries": ...}``, expected over the horizon."""
    runs = tis = tries = 0.0
    cap = scenario.airflow.max_map_length
    for dag in scenario.dags:
        n = expected_runs(dag.schedule, scenario.horizon)
        runs += n
        for task in dag.tasks.values():
            w = expected_width(task, cap)
            tis += n * w
            tries += n * w * expected_tries(task)
    return {"runs": runs, "task_instances": tis, "tries": tries, "wakeups": timer_wakeups(scenario)}


def timer_wakeups(scenario) -> float:
    """Wake-ups of the periodic processes (zombie and stuck-in-queued checks, the DAG processor's
    cycles, the pool-metrics timer, heartbeats, KEDA polling) over the simulated time: the
    horizon plus the longest DAG's critical path. Tiny intervals over a long horizon are work
    even when no task runs."""
    a = scenario.airflow
    longest = max((d.critical_path() for d in scenario.dags), default=0.0)
    span = scenario.horizon + (longest if math.isfinite(longest) else 0.0)
    rates = [a.schedulers / a.task_instance_heartbeat_timeout_detection_interval,
             1.0 / a.task_queued_timeout_check_interval]
    if a.min_file_process_interval > 0:
        processors = 1 if a.standalone_dag_processor else a.schedulers
        rates.append(processors * min(a.parsing_processes, len(scenario.dags) + scenario.overheads.extra_dag_files)
                     / a.min_file_process_interval)
    timers = idle_loops.intervals(a)
    if timers and (a.schedulers > 1 or timers[0] < 1.0):
        # One scheduler's idle loops are skipped, a timer run at a time (sim/airflow/idle_loops.py):
        # cheap unless a timer runs more often than loops would start anyway (Airflow's shortest
        # is 5 s); several schedulers simulate every loop.
        rates.append(a.schedulers / timers[0])
    if a.execution_api:
        rates.append(1.0 / a.min_heartbeat_interval)
    for pool in (scenario.executor.settings or {}).get("worker_pools") or []:
        keda = pool.get("autoscaling") or {}
        if keda:
            rates.append(1.0 / (keda.get("polling_interval") or 5.0))
    return span * sum(rates)


def _n(x: float) -> str:
    return f"{x:,.0f}" if x < 1e12 else f"{x:.3g}"


def check_work(scenario, limit: int | None = DEFAULT_MAX_TASK_INSTANCES) -> dict:
    """Raise SimError if ``scenario`` would simulate more than ``limit`` task-instance tries."""
    est = estimate(scenario)
    if limit is None:
        return est
    where = f"{scenario.source}: " if getattr(scenario, "source", None) else ""
    if not est["tries"] <= limit:                        # also catches nan and inf
        raise SimError(
            f"{where}the scenario would simulate about {_n(est['tries'])} task-instance tries "
            f"({_n(est['runs'])} DAG runs, {_n(est['task_instances'])} task instances over a horizon of "
            f"{scenario.horizon:g} s), more than the limit of {limit:,}; shorten the horizon, slow the "
            f"schedules or lower retries, or raise the limit with {FLAG} N")
    if not est["wakeups"] <= WAKEUPS_PER_TRY * limit:
        raise SimError(
            f"{where}the scenario's periodic processes (zombie and queued checks, DAG parsing, timers) "
            f"would wake about {_n(est['wakeups'])} times over {scenario.horizon:g} s, more than the "
            f"limit of {WAKEUPS_PER_TRY * limit:,} ({WAKEUPS_PER_TRY} x {FLAG}); shorten the horizon, "
            f"lengthen the intervals, or raise the limit with {FLAG} N")
    return est


def add_argument(parser) -> None:
    """The ``--max-task-instances`` option of the commands that simulate a scenario."""
    parser.add_argument(FLAG, dest="max_task_instances", type=int, default=DEFAULT_MAX_TASK_INSTANCES,
                        metavar="N", help="refuse scenarios expected to simulate more task-instance "
                        f"tries than this (default {DEFAULT_MAX_TASK_INSTANCES:,})")


def check_limit_flag(limit: int) -> None:
    if limit < 1:
        raise SimError(f"{FLAG} must be at least 1 (got {limit})")
