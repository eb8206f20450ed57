"""The state core: what Airflow keeps in its metadata database, and who must hear of a change.

Airflow's components never call each other: the scheduler, the task processes, the executors'
workers and the triggerer write task-instance and DAG-run state to the database, and read it.
:class:`StateCore` plays that part. It is plain Python (no SimPy), and it

* owns task-instance and DAG-run state: every change goes through :meth:`StateCore.transition`
  or :meth:`StateCore.start_run` / :meth:`StateCore.end_run`, checked against the one table of
  allowed transitions (``sim/model/states.py``), with a handler per edge (what the edge does to
  the counters, precomputed in ``_EDGES``);
* owns the counters the limits read (:class:`Concurrency`: pools, ``max_active_tasks``, per-task
  limits, queued+running per queue) and the count of schedulable task instances;
* decides retry or fail (:func:`failure_outcome`, :meth:`StateCore.end_try`);
* stamps every change with a structured stimulus (``sim/model/stimuli.py``: a kind, the time, the
  task instance's id, the message) and every component event likewise;
* tells subscribers what changed (:meth:`StateCore.subscribe`): the recorder stores, the
  scheduler wakes up and follows up ended tries, a KEDA autoscaler reads the queue counts.

Subscribers are called in the order they subscribed, synchronously: a change and everything it
implies happen at one simulated instant, as one database transaction would.
"""
from __future__ import annotations

from collections import defaultdict

from .runtime import retry_delay
from .states import (DAGRUN_TRANSITIONS, DR_RUNNING, FAILED, NONE, OCCUPYING, TI_TRANSITIONS, UP_FOR_RESCHEDULE,
                     UP_FOR_RETRY, DagRunState as DR, IllegalTransition, TaskInstanceState as S)

#: States a task instance waits in before the scheduler may schedule it (the examination's cost).
SCHEDULABLE = frozenset({NONE, UP_FOR_RETRY, UP_FOR_RESCHEDULE})
STATES = list(S)
STATE_CODE = {s: i for i, s in enumerate(STATES)}
#: The handler of every allowed edge, precomputed for the hot path: (old, new) -> (change in
#: occupied slots, change in schedulable task instances, old state's code, new state's code).
_EDGES = {
    (old, new): ((new in OCCUPYING) - (old in OCCUPYING), (new in SCHEDULABLE) - (old in SCHEDULABLE),
                 STATE_CODE[old], STATE_CODE[new])
    for old, targets in TI_TRANSITIONS.items() for new in targets
}


def failure_outcome(ti) -> S:
    """A try that failed (or was failed from outside): retried while it has retries left
    (Airflow's ``TaskInstance.is_eligible_to_retry``), else failed for good."""
    return UP_FOR_RETRY if ti.try_number <= ti.task.retries else FAILED


class Concurrency:
    """Counters of occupied slots, updated on every transition into or out of queued/running."""

    __slots__ = ("pool_total", "pool_used", "dag_active", "task_active", "run_task_active",
                 "per_run", "queue_active")

    def __init__(self, pools: dict[str, int], per_run: bool):
        self.pool_total = dict(pools)
        self.pool_used = defaultdict(int)
        self.dag_active = defaultdict(int)       # dag index -> queued+running TIs
        self.task_active = defaultdict(int)      # task -> queued+running TIs over all runs
        self.run_task_active = defaultdict(int)  # (run, task) -> queued+running TIs
        self.per_run = per_run                   # max_active_tasks per DAG run (Airflow 3)
        self.queue_active = defaultdict(int)     # queue -> queued+running TIs (KEDA's query)

    def occupy(self, ti) -> None:
        task = ti.task
        self.pool_used[task.pool] += task.pool_slots
        self.queue_active[task.queue] += 1
        self.dag_active[ti.run.plan.index] += 1
        ti.run.active += 1
        if task.max_active_tis_per_dag is not None:
            self.task_active[task] += 1
        if task.max_active_tis_per_dagrun is not None:
            self.run_task_active[(ti.run, task)] += 1

    def release(self, ti) -> None:
        task = ti.task
        self.pool_used[task.pool] -= task.pool_slots
        self.queue_active[task.queue] -= 1
        self.dag_active[ti.run.plan.index] -= 1
        ti.run.active -= 1
        if task.max_active_tis_per_dag is not None:
            self.task_active[task] -= 1
        if task.max_active_tis_per_dagrun is not None:
            self.run_task_active[(ti.run, task)] -= 1

    def pool_open(self, pool: str) -> int:
        return self.pool_total.get(pool, 0) - self.pool_used[pool]


def _fan_out(callbacks: list):
    """One callable for the subscribers of one kind of news (the hot path calls it directly)."""
    if len(callbacks) == 1:
        return callbacks[0]
    if len(callbacks) == 2:
        first, second = callbacks

        def both(*args):
            first(*args)
            second(*args)
        return both

    def all_of(*args):
        for cb in callbacks:
            cb(*args)
    return all_of


def _nothing(*_args) -> None:
    pass


#: News the core passes on unchanged -> the public method that announces it.
_PASSED_ON = {"slot_freed": "slot_freed", "release_forgotten": "forget_release", "event": "event",
              "changed": "changed", "lost": "heartbeats_stopped", "resumed": "trigger_fired"}


class StateCore:
    """Task-instance and DAG-run state, the limits' counters, and the subscribers to changes."""

    NEWS = ("transition", "try_ended", "slot_freed", "release_forgotten", "run_ended", "event", "changed",
            "lost", "resumed")

    def __init__(self, pools: dict[str, int] | None = None, per_run: bool = False):
        #: The counters the critical section checks (queued + running task instances).
        self.limits = Concurrency(pools or {}, per_run)
        self._occupy, self._release = self.limits.occupy, self.limits.release
        #: Task instances in none/up_for_retry/up_for_reschedule of running DAG runs.
        self.schedulable_total = 0
        self._subscribers: dict[str, list] = {news: [] for news in self.NEWS}
        self._transition = self._try_ended = self._slot_freed = self._release_forgotten = _nothing
        self._run_ended = self._event = self._changed = self._lost = self._resumed = _nothing

    # -- subscriptions ----------------------------------------------------------------------------
    def subscribe(self, **callbacks) -> None:
        """Hear of changes: ``transition(ti, old_code, new_code, now, stimulus, message)``,
        ``try_ended(ti, outcome)`` (its row is final), ``slot_freed(ti, try_number, at)`` (an
        executor freed the try's slot), ``release_forgotten(ti)``, ``run_ended(run)``,
        ``event(time, kind, what, ti, try_number, who)``, ``changed()`` (something a scheduler
        loop would act on), ``lost(ti, at, why)`` (a running try's heartbeats stopped),
        ``resumed(ti)`` (a deferred try's trigger fired)."""
        for news, cb in callbacks.items():
            if news not in self._subscribers:
                raise ValueError(f"no such news {news!r} (one of {', '.join(self.NEWS)})")
            self._subscribers[news].append(cb)
            fn = _fan_out(self._subscribers[news])
            setattr(self, f"_{news}", fn)
            if news in _PASSED_ON:
                # news the core only passes on: its public method becomes the subscribers' call
                # itself (one call fewer on the hot path; the method below documents it)
                setattr(self, _PASSED_ON[news], fn)

    # -- task instances ---------------------------------------------------------------------------
    def transition(self, ti, new: S, now: float, stimulus, message: str) -> None:
        """The one place a task instance changes state."""
        old = ti.state
        edge = _EDGES.get((old, new))
        if edge is None:
            raise IllegalTransition(f"{ti!r}: {old.value} -> {new.value} ({message}) is not allowed")
        ti.state = new
        occ, sched, old_code, new_code = edge
        if occ:
            (self._occupy if occ > 0 else self._release)(ti)
        if sched:
            ti.run.n_schedulable += sched
            self.schedulable_total += sched
        self._transition(ti, old_code, new_code, now, stimulus, message)

    def end_try(self, ti, outcome: S, now: float, stimulus, message: str) -> None:
        """A try ends in ``outcome`` (its ``ended_at`` set by the caller): the state change, the
        try's row, and when it is retried or rescheduled (``next_retry_at``)."""
        self.transition(ti, outcome, now, stimulus, message)
        if outcome is UP_FOR_RETRY:
            ti.next_retry_at = ti.ended_at + retry_delay(ti)
        elif outcome is UP_FOR_RESCHEDULE:
            ti.next_retry_at = ti.ended_at + ti.task.sensor.poke_interval
        self._try_ended(ti, outcome)

    def slot_freed(self, ti, try_number: int, at: float) -> None:
        """An executor freed the slot of a try (the scheduler's sync saw it end, or it was
        revoked, or handed to a worker that needs no slot)."""
        self._slot_freed(ti, try_number, at)

    def forget_release(self, ti) -> None:
        """A queued try was revoked and re-queued under the same key: its early release belongs
        to the abandoned attempt."""
        self._release_forgotten(ti)

    # -- DAG runs ---------------------------------------------------------------------------------
    def start_run(self, run, now: float) -> None:
        _check_run(run, DR_RUNNING)
        run.state = DR_RUNNING
        run.started_at = now

    def run_tis_created(self, n: int) -> None:
        """A started run's task instances exist now (or a mapped task expanded by ``n``): that
        many more to examine."""
        self.schedulable_total += n

    def end_run(self, run, now: float) -> None:
        """Every task instance of the run is done: the run takes its leaves' verdict."""
        state = run.leaf_state()
        _check_run(run, state)
        run.state = state
        run.ended_at = now
        self._run_ended(run)

    # -- what components did, and wake-ups ----------------------------------------------------------
    def event(self, time: float, kind, what: str, ti, try_number: int, who: str) -> None:
        self._event(time, kind, what, ti, try_number, who)

    def heartbeats_stopped(self, ti, at: float, why: str) -> None:
        """A running try's process died without writing its outcome (a worker crash, a pod
        lost): nothing is written, its heartbeats just stop, which zombie detection notices."""
        self._lost(ti, at, why)

    def trigger_fired(self, ti) -> None:
        """The triggerer handled a deferred try's event (``Trigger.submit_event``)."""
        self._resumed(ti)

    def changed(self) -> None:
        """Something changed that a scheduler loop would act on (a result written, a pod's end
        reported, a task's outcome)."""
        self._changed()


def _check_run(run, new: DR) -> None:
    if new not in DAGRUN_TRANSITIONS[run.state]:
        raise IllegalTransition(f"dag run {run.plan.dag_id} {run.idx}: {run.state.value} -> {new.value} "
                                "is not allowed")
