"""Live DAG runs and task instances: the state the scheduler reads and writes.

Plain objects with ``__slots__`` (hundreds of thousands of them may be alive in a long run); no
SimPy. A :class:`DagPlan` is a DAG compiled once for the hot path: tasks in topological order,
integer indices for dependencies, effective priority weights.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from hashlib import sha1
from types import MappingProxyType

from .dag import DAG, MAX_TASK_RETRY_DELAY, Task
from .schedules import EPOCH
from .states import (DR_FAILED, DR_QUEUED, DR_SUCCESS, FAILED, NONE, SKIPPED, SUCCESS, UPSTREAM_FAILED, DagRunState,
                     TaskInstanceState as S)
from .trigger_rules import READY, decide


class DagPlan:
    """A DAG compiled for simulation."""

    __slots__ = ("dag", "dag_id", "tasks", "n", "downstream", "n_upstream", "weights", "roots",
                 "max_active_runs", "max_active_tasks", "parse_time", "run_prefix", "index",
                 "leaves", "rules", "draw_failures", "fixed_failures")

    def __init__(self, dag: DAG, index: int, default_max_active_runs: int,
                 default_max_active_tasks: int, default_parse_time: float):
        order = dag.topological_order()
        pos = {t.task_id: i for i, t in enumerate(order)}
        self.dag = dag
        self.dag_id = dag.dag_id
        self.index = index
        self.tasks: list[Task] = order
        self.n = len(order)
        self.downstream = [tuple(pos[d.task_id] for d in t.downstream) for t in order]
        self.n_upstream = [len(t.upstream) for t in order]
        self.roots = [i for i, t in enumerate(order) if not t.upstream]
        self.leaves = [i for i, t in enumerate(order) if not t.downstream]
        w = dag.priority_weights()
        self.weights = [w[t.task_id] for t in order]
        self.rules = [t.trigger_rule for t in order]
        self.draw_failures = any(t.failure_probability > 0 for t in order)
        self.fixed_failures = any(t.failed_tries > 0 for t in order)
        self.max_active_runs = dag.max_active_runs or default_max_active_runs
        self.max_active_tasks = dag.max_active_tasks or default_max_active_tasks
        self.parse_time = dag.parse_time if dag.parse_time is not None else default_parse_time
        self.run_prefix = "scheduled" if dag.schedule is not None and dag.schedule.scheduled else "manual"


class TaskInstance:
    """One task of one DAG run; the same object carries its successive tries."""

    __slots__ = ("uid", "run", "ti_index", "task", "map_index", "try_number", "state", "executor",
                 "worker", "host", "priority", "sort_key", "ready_at", "scheduled_at", "queued_at",
                 "launched_at", "started_at", "ended_at", "next_retry_at", "up_success",
                 "up_failed", "up_upstream_failed", "up_skipped", "decision", "durations", "failure_draws", "queued_by")

    def __init__(self, uid: int, run: "DagRun", ti_index: int, task: Task, priority: int):
        self.uid = uid
        self.run = run
        self.ti_index = ti_index
        self.task = task
        self.map_index = -1
        self.try_number = 0
        self.state = NONE
        self.executor = None
        self.worker = None
        self.host = None
        self.priority = priority
        # The critical section's ORDER BY: -priority_weight, logical date, map_index (§1.2).
        self.sort_key = (-priority, run.logical_date, run.idx, -1, ti_index)
        self.ready_at = self.scheduled_at = self.queued_at = math.nan
        self.launched_at = self.started_at = self.ended_at = math.nan
        self.next_retry_at = math.nan
        self.up_success = self.up_failed = self.up_upstream_failed = self.up_skipped = 0
        self.decision = None
        self.durations = None
        self.failure_draws = None
        self.queued_by = None              # the scheduler that queued it, when several share an executor

    @property
    def key(self) -> tuple:
        return (self.run.plan.dag_id, self.run.run_id, self.task.task_id, self.map_index)

    def duration_of_try(self) -> float:
        return self.durations[self.try_number - 1]

    def fails_this_try(self) -> bool:
        if self.try_number <= self.task.failed_tries:
            return True
        d = self.failure_draws
        return bool(d) and d[self.try_number - 1] < self.task.failure_probability

    def reset_try_times(self) -> None:
        self.ready_at = self.scheduled_at = self.queued_at = math.nan
        self.launched_at = self.started_at = self.ended_at = math.nan
        self.worker = None
        self.host = None

    def __repr__(self) -> str:
        return f"<TI {self.run.plan.dag_id}.{self.task.task_id} run {self.run.idx} try {self.try_number} {self.state.value}>"


class DagRun:
    __slots__ = ("plan", "idx", "due_at", "logical_date", "created_at", "started_at", "ended_at", "state", "tis",
                 "n_unfinished", "n_schedulable", "pending", "retrying", "active", "n_up", "mapped",
                 "sensor_state", "map_counts", "defer_state", "locked")

    def __init__(self, plan: DagPlan, idx: int, due_at: float, created_at: float):
        self.plan = plan
        self.idx = idx
        self.due_at = due_at
        sched = plan.dag.schedule
        self.logical_date = sched.logical_date(due_at, idx) if sched is not None else due_at
        self.created_at = created_at
        self.started_at = math.nan
        self.ended_at = math.nan
        self.state = DR_QUEUED
        self.tis: list[TaskInstance] = []
        self.n_unfinished = plan.n
        self.n_schedulable = plan.n       # TIs in None/up_for_retry/up_for_reschedule
        self.pending: list[TaskInstance] = []   # deps decided, waiting for the next examination
        self.retrying: list[TaskInstance] = []  # up_for_retry, waiting for next_retry_at
        self.active = 0                   # queued + running TIs (max_active_tasks per DAG run)
        self.n_up = None                  # upstream counts once a mapped task expanded (else the plan's)
        self.mapped: dict = {}            # task index -> its mapped task instances
        self.sensor_state: dict = {}      # sensor TI -> SensorState
        self.map_counts: dict = {}        # mapped task index -> drawn length
        self.defer_state: dict = {}       # deferrable TI -> DeferState
        self.locked = False               # a task's mini-scheduler holds the run's row lock

    @property
    def run_id(self) -> str:
        return run_id_of(self.plan, self.idx, self.logical_date)

    def create_task_instances(self, next_uid: int, rng: random.Random) -> int:
        """Create every TI (Airflow's verify_integrity) and draw each try's duration and failure
        from the DAG's own stream, in a fixed order: the same run gets the same draws whatever
        the executor (common random numbers)."""
        plan = self.plan
        tis = self.tis
        for i, task in enumerate(plan.tasks):
            ti = TaskInstance(next_uid, self, i, task, plan.weights[i])
            next_uid += 1
            tries = task.retries + 1
            ti.durations = draw_tries(task.duration.sample, rng, tries)
            if plan.draw_failures:
                ti.failure_draws = draw_tries(_uniform, rng, tries)
            elif plan.fixed_failures:
                ti.failure_draws = ()       # no draws (the stream is not touched): failed_tries alone
            if task.sensor is not None:
                # [when the condition holds, first poke of the current try]
                self.sensor_state[ti] = draw_sensor(task, rng)
            if task.deferrable is not None:
                self.defer_state[ti] = draw_deferral(task, rng)
            if task.expand is not None:
                self.map_counts[i] = max(0, int(round(task.expand.sample(rng))))
            tis.append(ti)
        return next_uid

    def mark_roots_ready(self) -> None:
        for i in self.plan.roots:
            ti = self.tis[i]
            ti.decision = READY
            ti.ready_at = self.started_at
            self.pending.append(ti)

    def upstream_finished(self, ti: TaskInstance, state: S, at: float) -> None:
        """Count a finished upstream try into its downstream TIs' trigger rules."""
        plan = self.plan
        tis = self.tis
        for j in plan.downstream[ti.ti_index]:
            d = tis[j]
            if state is SUCCESS:
                d.up_success += 1
            elif state is SKIPPED:
                d.up_skipped += 1
            elif state is UPSTREAM_FAILED:
                d.up_upstream_failed += 1
            else:
                d.up_failed += 1
            if d.decision is None and d.state is NONE:
                n_up = self.n_up[j] if self.n_up is not None else plan.n_upstream[j]
                verdict = decide(plan.rules[j], n_up, d.up_success, d.up_failed, d.up_skipped,
                                 d.up_upstream_failed)
                if verdict is not None:
                    d.decision = verdict
                    d.ready_at = max(at, self.started_at)
                    self.pending.append(d)

    def release(self) -> None:
        """The run ended: drop its references to its task instances. A run and its task
        instances refer to each other, so without this they outlive the run until Python's
        cyclic collector finds them; with it, reference counting frees each as soon as nothing
        else holds it (a try's last event may still be pending). Nothing reads them after the
        run's end: the records keep values, not objects."""
        self.tis = self.pending = self.retrying = _RELEASED
        self.mapped = self.sensor_state = self.map_counts = self.defer_state = _RELEASED_MAP

    def leaf_state(self) -> DagRunState:
        """Airflow: a run fails if any leaf failed or upstream_failed, else succeeds."""
        for i in self.plan.leaves:
            for ti in self.mapped.get(i, (self.tis[i],)):
                if ti.state in (FAILED, UPSTREAM_FAILED):
                    return DR_FAILED
        return DR_SUCCESS


#: What an ended run holds instead of its task instances (:meth:`DagRun.release`): empty, and
#: immutable, so that a bug that reached them would fail at once rather than grow them.
_RELEASED: tuple = ()
_RELEASED_MAP = MappingProxyType({})

#: Tries drawn when a task instance is created; a task with more retries draws the rest lazily.
EAGER_TRIES = 32
_uniform = random.Random.random


class LazyDraws:
    """A task instance's per-try draws when it may have many tries (``retries: 10**8``): the
    first ``EAGER_TRIES`` come from the DAG's stream like everyone's, the rest from a stream of
    the task instance's own (seeded from the DAG's stream, so still the same whatever the
    executor), drawn only when a try happens. Indexed like the list it stands for."""

    __slots__ = ("_values", "_rng", "_draw")

    def __init__(self, values: list, seed: int, draw):
        self._values = values
        self._rng = random.Random(seed)
        self._draw = draw

    def __getitem__(self, i: int) -> float:
        values = self._values
        while len(values) <= i:
            values.append(self._draw(self._rng))
        return values[i]


def draw_tries(draw, rng: random.Random, tries: int):
    """``[draw(rng) for each try]``, or a :class:`LazyDraws` past ``EAGER_TRIES`` tries."""
    if tries <= EAGER_TRIES:
        return [draw(rng) for _ in range(tries)]
    first = [draw(rng) for _ in range(EAGER_TRIES)]
    return LazyDraws(first, rng.getrandbits(64), draw)


class SensorState:
    """A sensor task instance's condition: when it holds (seconds after the try's first poke)
    and when the current try first poked (NaN before it has)."""

    __slots__ = ("holds_after", "first_poke")

    def __init__(self, holds_after: float):
        self.holds_after = holds_after
        self.first_poke = math.nan


class DeferState:
    """A deferrable task instance: when its trigger's event comes after the deferral, how long
    the resumed part (``execute_complete``) runs, and whether that part runs next."""

    __slots__ = ("trigger_wait", "resume_duration", "resumed")

    def __init__(self, trigger_wait: float, resume_duration: float):
        self.trigger_wait = trigger_wait
        self.resume_duration = resume_duration
        self.resumed = False


def draw_sensor(task: Task, rng: random.Random) -> SensorState:
    return SensorState(task.sensor.wait.sample(rng))


def draw_deferral(task: Task, rng: random.Random) -> DeferState:
    return DeferState(task.deferrable.wait.sample(rng), task.deferrable.resume.sample(rng))


def iso_of(t: float) -> datetime:
    """Simulated seconds as the wall-clock datetime they stand for (from the DAGs' start_date)."""
    return datetime.fromtimestamp(round(EPOCH.timestamp() + t, 6), tz=timezone.utc)


def run_id_of(plan: DagPlan, idx: int, logical_date: float) -> str:
    """Airflow's run_id: ``scheduled__<logical date>`` or ``manual__<logical date>`` (with the
    run's index, since simulated triggers can share a time)."""
    iso = iso_of(logical_date).isoformat()
    if plan.run_prefix == "scheduled":
        return f"scheduled__{iso}"
    return f"manual__{iso}__{idx}"


def retry_delay(ti: TaskInstance) -> float:
    """``TaskInstance.next_retry_datetime`` (airflow-mechanics.md §1.8), including Airflow's
    deterministic sha1 jitter for exponential backoff."""
    task = ti.task
    delay = task.retry_delay
    if task.retry_exponential_backoff:
        min_backoff = max(1, math.ceil(delay * 2 ** (ti.try_number - 1)))
        key = f"{ti.run.plan.dag_id}#{task.task_id}#{iso_of(ti.run.logical_date)}#{ti.try_number}"
        h = int(sha1(key.encode()).hexdigest(), 16)
        delay = min_backoff + h % min_backoff
        delay = min(delay, task.max_retry_delay or MAX_TASK_RETRY_DELAY)
    return float(delay)
