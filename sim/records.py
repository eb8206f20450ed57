"""What a run records, kept columnar so millions of task instances stay cheap.

* one row per task-instance try (``task_instances.csv``),
* one row per DAG run (``dag_runs.csv``),
* every state transition, stamped with simulated time and a cause (``transitions.csv``), so a
  run can explain why a task waited.

Strings (dag ids, task ids, queues, workers, causes) are interned to small integers while the
simulation runs and turned back into text only when a DataFrame is built.
"""
from __future__ import annotations

import math
from array import array

import pandas as pd

from .model.states import (OCCUPYING, TI_TRANSITIONS, DagRunState, IllegalTransition,
                           TaskInstanceState as S)

STATES = list(S)
STATE_CODE = {s: i for i, s in enumerate(STATES)}
SCHEDULABLE = frozenset({S.NONE, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE})
_NAN = math.nan


class Interner:
    __slots__ = ("codes", "values")

    def __init__(self):
        self.codes: dict = {}
        self.values: list = []

    def __call__(self, value) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.values)
            self.values.append(value)
        return code


class Recorder:
    """Columnar store of tries, DAG runs and transitions, and the single place where a task
    instance changes state (so every change is checked against the transition table, counted
    into the concurrency limits and logged)."""

    TI_TIMES = ("ready_at", "scheduled_at", "queued_at", "launched_at", "started_at", "ended_at",
                "released_at")

    def __init__(self, record_transitions: bool = True):
        self.strings = Interner()
        self.record_transitions = record_transitions
        # task-instance tries
        self.ti_uid = array("q")
        self.ti_dag = array("l")
        self.ti_run = array("l")
        self.ti_task = array("l")
        self.ti_map = array("l")
        self.ti_try = array("l")
        self.ti_state = array("b")
        self.ti_executor = array("l")
        self.ti_queue = array("l")
        self.ti_pool = array("l")
        self.ti_worker = array("l")
        self.ti_times = {name: array("d") for name in self.TI_TIMES}
        # dag runs
        self.dr_rows: list[tuple] = []
        # transitions
        self.tr_uid = array("q")
        self.tr_from = array("b")
        self.tr_to = array("b")
        self.tr_time = array("d")
        self.tr_cause = array("l")
        self.on_occupy = None     # set by the scheduler: callbacks into the concurrency limits
        self.on_release = None

    # -- the one place a task instance changes state -------------------------------------------
    def transition(self, ti, new: S, now: float, cause: str) -> None:
        old = ti.state
        if new not in TI_TRANSITIONS[old]:
            raise IllegalTransition(f"{ti!r}: {old.value} -> {new.value} ({cause}) is not allowed")
        ti.state = new
        if (old in OCCUPYING) is not (new in OCCUPYING):
            (self.on_occupy if new in OCCUPYING else self.on_release)(ti)
        if (old in SCHEDULABLE) is not (new in SCHEDULABLE):
            ti.run.n_schedulable += 1 if new in SCHEDULABLE else -1
        if self.record_transitions:
            self.tr_uid.append(ti.uid)
            self.tr_from.append(STATE_CODE[old])
            self.tr_to.append(STATE_CODE[new])
            self.tr_time.append(now)
            self.tr_cause.append(self.strings(cause))

    # -- rows -----------------------------------------------------------------------------------
    def try_ended(self, ti, released_at: float = _NAN) -> int:
        """Append the row of the try ``ti`` just finished (or of a TI that never ran); returns
        the row number, so the executor slot's release can be filled in later."""
        s = self.strings
        run = ti.run
        self.ti_uid.append(ti.uid)
        self.ti_dag.append(run.plan.index)
        self.ti_run.append(run.idx)
        self.ti_task.append(ti.ti_index)
        self.ti_map.append(ti.map_index)
        self.ti_try.append(ti.try_number)
        self.ti_state.append(STATE_CODE[ti.state])
        self.ti_executor.append(s(ti.executor))
        self.ti_queue.append(s(ti.task.queue))
        self.ti_pool.append(s(ti.task.pool))
        self.ti_worker.append(s(ti.worker))
        t = self.ti_times
        t["ready_at"].append(ti.ready_at)
        t["scheduled_at"].append(ti.scheduled_at)
        t["queued_at"].append(ti.queued_at)
        t["launched_at"].append(ti.launched_at)
        t["started_at"].append(ti.started_at)
        t["ended_at"].append(ti.ended_at)
        t["released_at"].append(released_at)
        return len(self.ti_uid) - 1

    def set_released(self, row: int, at: float) -> None:
        self.ti_times["released_at"][row] = at

    def dag_run_ended(self, run) -> None:
        self.dr_rows.append((run.plan.index, run.idx, run.due_at, run.created_at, run.started_at,
                             run.ended_at, run.state.value))

    # -- DataFrames -----------------------------------------------------------------------------
    def task_instances(self, plans, run_ids) -> pd.DataFrame:
        vals = self.strings.values
        dag_ids = [p.dag_id for p in plans]
        task_ids = [[t.task_id for t in p.tasks] for p in plans]
        dag = list(self.ti_dag)
        run = list(self.ti_run)
        df = pd.DataFrame({
            "dag_id": [dag_ids[d] for d in dag],
            "run_id": [run_ids[(d, r)] for d, r in zip(dag, run)],
            "task_id": [task_ids[d][k] for d, k in zip(dag, self.ti_task)],
            "map_index": list(self.ti_map),
            "try_number": list(self.ti_try),
            "state": [STATES[c].value for c in self.ti_state],
            "executor": [vals[c] for c in self.ti_executor],
            "queue": [vals[c] for c in self.ti_queue],
            "pool": [vals[c] for c in self.ti_pool],
            "worker": [vals[c] for c in self.ti_worker],
            **{name: pd.array(col, dtype="float64") for name, col in self.ti_times.items()},
            "ti_uid": list(self.ti_uid),
        })
        return df

    def dag_runs(self, plans, run_ids) -> pd.DataFrame:
        rows = sorted(self.dr_rows, key=lambda r: (r[0], r[1]))
        return pd.DataFrame({
            "dag_id": [plans[r[0]].dag_id for r in rows],
            "run_id": [run_ids[(r[0], r[1])] for r in rows],
            "due_at": [r[2] for r in rows],
            "created_at": [r[3] for r in rows],
            "started_at": [r[4] for r in rows],
            "ended_at": [r[5] for r in rows],
            "state": [r[6] for r in rows],
        }, columns=["dag_id", "run_id", "due_at", "created_at", "started_at", "ended_at", "state"])

    def transitions(self) -> pd.DataFrame:
        vals = self.strings.values
        return pd.DataFrame({
            "ti_uid": list(self.tr_uid),
            "time": pd.array(self.tr_time, dtype="float64"),
            "from_state": [STATES[c].value for c in self.tr_from],
            "to_state": [STATES[c].value for c in self.tr_to],
            "cause": [vals[c] for c in self.tr_cause],
        })
