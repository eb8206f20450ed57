"""Task-instance and DAG-run states, with Airflow's exact names, and the one table of allowed
transitions (shared/reference/airflow-mechanics.md §1.9; Airflow's ``airflow/utils/state.py``).

An illegal transition raises :class:`IllegalTransition`, so a bookkeeping bug cannot hide.
"""
from __future__ import annotations

from enum import Enum


class TaskInstanceState(str, Enum):
    """Airflow's ``TaskInstanceState`` (plus ``NONE`` for Airflow's ``None``: created, deps not met)."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    DEFERRED = "deferred"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"
    RESTARTING = "restarting"

    # Members are singletons: identity hashing is correct and much cheaper than Enum's default.
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


class DagRunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


TI = TaskInstanceState
#: Every allowed task-instance transition, and nothing else. ``up_for_retry``/``up_for_reschedule``
#: go back to ``scheduled`` when their delay passes; ``deferred`` goes back to ``scheduled`` when
#: its trigger fires; ``queued`` can go back to ``scheduled`` when ``task_queued_timeout`` re-queues.
TI_TRANSITIONS: dict[TaskInstanceState, frozenset[TaskInstanceState]] = {
    TI.NONE: frozenset({TI.SCHEDULED, TI.UPSTREAM_FAILED, TI.SKIPPED, TI.REMOVED}),
    TI.SCHEDULED: frozenset({TI.QUEUED, TI.NONE, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED}),
    TI.QUEUED: frozenset({TI.RUNNING, TI.SCHEDULED, TI.FAILED, TI.UP_FOR_RETRY, TI.SUCCESS}),
    TI.RUNNING: frozenset({TI.SUCCESS, TI.FAILED, TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE,
                           TI.DEFERRED, TI.SKIPPED, TI.RESTARTING}),
    TI.UP_FOR_RETRY: frozenset({TI.SCHEDULED}),
    TI.UP_FOR_RESCHEDULE: frozenset({TI.SCHEDULED}),
    TI.DEFERRED: frozenset({TI.SCHEDULED, TI.FAILED}),
    TI.RESTARTING: frozenset({TI.SCHEDULED}),
    TI.SUCCESS: frozenset(),
    TI.FAILED: frozenset(),
    TI.UPSTREAM_FAILED: frozenset(),
    TI.SKIPPED: frozenset(),
    TI.REMOVED: frozenset(),
}

DR = DagRunState
DAGRUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    DR.QUEUED: frozenset({DR.RUNNING}),
    DR.RUNNING: frozenset({DR.SUCCESS, DR.FAILED}),
    DR.SUCCESS: frozenset(),
    DR.FAILED: frozenset(),
}


# The members as module constants, for the hot paths (the scheduler, the task processes, the state
# core, the executors): on Python 3.11 every ``TaskInstanceState.QUEUED`` goes through EnumType's
# ``__getattr__`` hook, 0.2 us an access and about 30 a task instance, where a module global costs
# a tenth of that. The same objects: ``QUEUED is TaskInstanceState.QUEUED``.
NONE, SCHEDULED, QUEUED, RUNNING = TI.NONE, TI.SCHEDULED, TI.QUEUED, TI.RUNNING
SUCCESS, FAILED, UP_FOR_RETRY, UP_FOR_RESCHEDULE = TI.SUCCESS, TI.FAILED, TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE
DEFERRED, UPSTREAM_FAILED, SKIPPED, REMOVED = TI.DEFERRED, TI.UPSTREAM_FAILED, TI.SKIPPED, TI.REMOVED
RESTARTING = TI.RESTARTING
DR_QUEUED, DR_RUNNING, DR_SUCCESS, DR_FAILED = DR.QUEUED, DR.RUNNING, DR.SUCCESS, DR.FAILED

#: States in which a try has ended for good (Airflow's ``State.finished``).
FINISHED = frozenset({TI.SUCCESS, TI.FAILED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED})
#: States that count against parallelism, pools and max_active_tasks (queued and running together,
#: as the scheduler's concurrency queries do: airflow-mechanics.md §1.2).
OCCUPYING = frozenset({TI.QUEUED, TI.RUNNING})


class IllegalTransition(RuntimeError):
    """A state change the transition table does not allow: always a bug in the model."""


def check_ti_transition(old: TaskInstanceState, new: TaskInstanceState, what: str = "") -> None:
    if new not in TI_TRANSITIONS[old]:
        raise IllegalTransition(f"task instance {what}: {old.value} -> {new.value} is not allowed")


def check_dagrun_transition(old: DagRunState, new: DagRunState, what: str = "") -> None:
    if new not in DAGRUN_TRANSITIONS[old]:
        raise IllegalTransition(f"dag run {what}: {old.value} -> {new.value} is not allowed")
