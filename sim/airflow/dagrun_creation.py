"""The scheduler's creation of scheduled DAG runs: each DAG's ``DagModel.next_dagrun`` pointer.

Airflow 2.10's loop starts with ``_create_dag_runs`` over ``DagModel.dags_needing_dagruns``: at
most ``max_dagruns_to_create_per_loop`` DAGs whose ``next_dagrun_create_after`` has passed,
earliest first. Each makes the run of its ``next_dagrun`` (unless that run exists already) and
moves the pointer on one data interval (``calculate_dagrun_date_fields``), or, with
``max_active_runs`` queued and running runs, sets ``next_dagrun_create_after`` to None: blocked.
So a DAG makes at most one run a loop.

When a scheduled run ends, ``_schedule_dag_run`` points ``next_dagrun`` at the interval after
*that run's* (``calculate_dagrun_date_fields(dag, dag.get_run_data_interval(dag_run))``), or
blocks the DAG if it is still at ``max_active_runs``. With several runs of a DAG active (a
catch-up, a backlog), the pointer goes back to a run that exists, and the loops that follow walk
it forward one existing run a loop before any new run is made; each further end sends it back
again. A catch-up of more intervals than ``max_active_runs`` therefore runs in waves: measured on
real Airflow 2.10.5 (data/airflow-runs/catchup: 30 runs, ``max_active_runs`` 16, the 17th run
made only after the 16th had ended). ``airflow-2.10`` source: jobs/scheduler_job_runner.py
``_create_dag_runs``, ``_should_update_dag_next_dagruns``, ``_schedule_dag_run``;
models/dag.py ``DagModel.dags_needing_dagruns``, ``calculate_dagrun_date_fields``.

Plain objects, no SimPy: the scheduler calls :meth:`RunCreation.create` in each loop and
:meth:`RunCreation.run_ended` when a scheduled run ends.
"""
from __future__ import annotations

import math
from heapq import heappop, heappush


class _Dag:
    """One scheduled DAG's DagModel: its runs' due times so far, the pointer, what is next."""

    __slots__ = ("index", "times", "dues", "ptr", "next_due", "max_active", "seq")

    def __init__(self, index: int, times, max_active: int):
        self.index = index
        self.times = times              # the due times of the runs not made yet, in order
        self.dues: list[float] = []     # due time of each run made (by its number)
        self.ptr = 0                    # next_dagrun: the number of the run it points at
        self.next_due = next(times, None)   # the due time of run len(dues); None: no more runs
        self.max_active = max_active
        self.seq = None                 # its live entry in the heap; None: blocked or done


class RunCreation:
    """Every scheduled DAG's ``next_dagrun`` and ``next_dagrun_create_after``."""

    def __init__(self, max_per_loop: int):
        self.limit = max_per_loop or math.inf       # 0: unlimited (simulator extension)
        self._heap: list = []                       # (create_after, dag index, seq)
        self._seq = 0
        self._dags: dict[int, _Dag] = {}
        self.live = 0                               # DAGs with an entry (not blocked, not done)

    def add(self, index: int, times, max_active: int) -> float | None:
        """A scheduled DAG: returns when its first run is due (None: it has none)."""
        d = _Dag(index, times, max_active)
        if d.next_due is None:
            return None
        self._dags[index] = d
        return self._arm(d)

    def due(self, now: float) -> bool:
        """Whether some DAG's entry has come due by ``now`` (a superseded one may answer yes; the
        loop's :meth:`create` then just drops it). Most loops have none: a cheap test first."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now

    def _arm(self, d: _Dag) -> float | None:
        """Queue ``d`` for the loop at or after its pointer's run's due time (None: nothing left
        to make)."""
        due = d.dues[d.ptr] if d.ptr < len(d.dues) else d.next_due
        if due is None:
            return None
        if d.seq is None:
            self.live += 1
        self._seq += 1
        d.seq = self._seq
        heappush(self._heap, (due, d.index, self._seq))
        return due

    def _drop(self, d: _Dag) -> None:
        if d.seq is not None:
            d.seq = None
            self.live -= 1

    def create(self, now: float, active: list, make) -> tuple[int, list, list]:
        """One loop's ``_create_dag_runs``: ``make(index, due)`` creates a run (and counts it in
        ``active``, queued and running runs a DAG). Returns the runs made, the indexes of the
        DAGs that made their last run, and when the DAGs whose pointer moved are next due (each
        is seen by a later loop, never this one: one run a DAG a loop)."""
        heap = self._heap
        selected = made = 0
        moved, last = [], []
        while heap and heap[0][0] <= now and selected < self.limit:
            due, index, seq = heappop(heap)
            d = self._dags[index]
            if seq != d.seq:
                continue                            # superseded by a run's end
            self._drop(d)
            selected += 1
            if d.ptr == len(d.dues):                # its next_dagrun does not exist yet
                if active[index] >= d.max_active:
                    continue                        # blocked (next_dagrun_create_after None)
                make(index, due)
                made += 1
                d.dues.append(due)
                d.next_due = next(d.times, None)
                if d.next_due is None:
                    last.append(index)              # all its runs made: the pointer no longer matters
                    continue
            d.ptr += 1
            if active[index] >= d.max_active:
                continue                            # _should_update_dag_next_dagruns: blocked
            moved.append(d)
        wake = [t for t in map(self._arm, moved) if t is not None]
        return made, last, wake

    def run_ended(self, index: int, number: int, active: int) -> float | None:
        """Run ``number`` of DAG ``index`` ended, leaving ``active`` queued and running runs:
        the pointer goes to the interval after that run's, or the DAG is blocked at
        ``max_active_runs``. Returns when the DAG is next due (None: not queued)."""
        d = self._dags.get(index)
        if d is None or d.next_due is None:
            return None                             # not scheduled, or all its runs made
        if active >= d.max_active:
            self._drop(d)                           # blocked (again)
            return None
        if d.seq is not None and d.ptr == number + 1:
            return None                             # already there and queued: nothing changes
        self._drop(d)
        d.ptr = number + 1
        return self._arm(d)
