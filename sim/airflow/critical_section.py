"""The scheduler's critical section and the limits it enforces (airflow-mechanics.md §1.2, §1.4).

Plain objects, no SimPy: :class:`Concurrency` counts what occupies the limits (task instances in
``queued`` or ``running``, as the scheduler's queries count them), and
:func:`executable_task_instances` is ``_executable_task_instances_to_queued``: fetch the
``scheduled`` task instances in priority order, ``max_tis`` at a time, check each against its pool,
its DAG's ``max_active_tasks``, per-task limits and its executor's free slots, starve what does not
fit and re-query only when nothing was accepted and a new starvation filter appeared.

The scheduled task instances live in a :class:`ScheduledTIs` index rather than a sorted list, so
the simulator's wall time per loop does not grow with the backlog: Airflow's query filters out
starved pools and DAGs in the database, and the index skips them a group at a time.
"""
from __future__ import annotations

from heapq import heappop, heappush

from ..model.state_core import Concurrency  # noqa: F401  (the limits' counters live in the state core)
from ..model.states import SCHEDULED


class ScheduledTIs:
    """The task instances in ``scheduled``, in the order the critical section's query returns
    them (``-priority_weight``, logical date, ...: ``ti.sort_key``; ties in the order they became
    scheduled), grouped by (pool, DAG) or, with ``max_active_tasks`` per run, (pool, DAG run): the
    two filters that starve a whole group. A heap of each group's first entry merges the groups,
    so a starved group is skipped in one step and a queued task instance leaves in O(log n)."""

    __slots__ = ("per_run", "_groups", "_heads", "_member", "_seq")

    def __init__(self, per_run: bool):
        self.per_run = per_run
        self._groups: dict = {}      # (pool, dag key) -> heap of (sort_key, seq, ti)
        self._heads: list = []       # heap of (sort_key, seq, group key); stale ones are skipped
        self._member: dict = {}      # ti -> seq of its live entry
        self._seq = 0

    def __len__(self) -> int:
        return len(self._member)

    def __bool__(self) -> bool:
        return bool(self._member)

    def _group_key(self, ti) -> tuple:
        return ti.task.pool, (ti.run if self.per_run else ti.run.plan.index)

    def add(self, ti) -> None:
        """``ti`` became ``scheduled`` (an older entry of it, if any, is dropped when met)."""
        self._seq += 1
        self._member[ti] = self._seq
        self._push((ti.sort_key, self._seq, ti))

    def _push(self, entry: tuple) -> None:
        gkey = self._group_key(entry[2])
        g = self._groups.get(gkey)
        if g is None:
            self._groups[gkey] = g = []
        heappush(g, entry)
        if g[0] is entry:
            heappush(self._heads, (entry[0], entry[1], gkey))

    def _take(self, max_tis: int, starved_pools, starved_dags, starved_tasks, starved_run_tasks,
              aside_groups: list, aside: list) -> list:
        """Up to ``max_tis`` entries, in order, that no starvation filter excludes; what the
        filters exclude is set aside (and put back by :meth:`_restore`)."""
        heads, groups, member = self._heads, self._groups, self._member
        batch: list = []
        while heads and len(batch) < max_tis:
            head = heappop(heads)
            gkey = head[2]
            g = groups.get(gkey)
            if g is None or g[0][1] != head[1]:
                continue                              # stale: the group's first entry changed
            if gkey[0] in starved_pools or gkey[1] in starved_dags:
                aside_groups.append(head)
                continue
            entry = heappop(g)
            if g:
                heappush(heads, (g[0][0], g[0][1], gkey))
            else:
                del groups[gkey]
            ti = entry[2]
            if member.get(ti) != entry[1]:
                continue                              # superseded by a newer entry
            if ti.state is not SCHEDULED:
                del member[ti]
                continue
            if ti.task in starved_tasks or (ti.run, ti.task) in starved_run_tasks:
                aside.append(entry)
                continue
            batch.append(entry)
        return batch

    def _restore(self, aside_groups: list, aside: list) -> None:
        for entry in aside:
            self._push(entry)
        for head in aside_groups:
            heappush(self._heads, head)

    def accepted(self, ti) -> None:
        del self._member[ti]


def executable_task_instances(scheduled, max_tis: int, conc: Concurrency,
                              executor_open: dict[str, int]) -> tuple[list, dict]:
    """Choose which ``scheduled`` task instances (a :class:`ScheduledTIs`, or a list sorted by
    ``sort_key``) to queue now; the chosen ones leave the index.

    Returns the accepted task instances and the starvation found (for explaining waits).
    """
    starving: dict = {}
    if max_tis <= 0 or not scheduled:
        return [], starving
    if isinstance(scheduled, list):
        index = ScheduledTIs(conc.per_run)
        for ti in scheduled:
            index.add(ti)
        scheduled = index
    pool_open = {name: conc.pool_open(name) for name in conc.pool_total}
    max_tis = min(max_tis, sum(max(0, o) for o in pool_open.values()))
    if max_tis <= 0:
        starving["pools full"] = True
        return [], starving
    starved_pools = {name for name, o in pool_open.items() if o <= 0}
    starved_dags: set = set()
    starved_tasks: set = set()
    starved_run_tasks: set = set()
    dag_extra: dict = {}
    task_extra: dict = {}
    run_task_extra: dict = {}
    dag_active = conc.dag_active
    accepted: list = []
    per_run = conc.per_run
    aside_groups: list = []
    aside: list = []
    while True:
        batch = scheduled._take(max_tis, starved_pools, starved_dags, starved_tasks, starved_run_tasks,
                                aside_groups, aside)
        before = len(starved_pools) + len(starved_dags) + len(starved_tasks) + len(starved_run_tasks)
        for entry in batch:
            ti = entry[2]
            task = ti.task
            pool = task.pool
            # Every rejection below adds a filter that excludes ``ti`` from the next pass.
            aside.append(entry)
            if pool not in pool_open:
                starved_pools.add(pool)
                starving[ti] = f"pool {pool!r} does not exist"
                continue
            if pool_open[pool] <= 0:
                starved_pools.add(pool)
                starving[ti] = f"pool {pool!r} is full"
                continue
            if task.pool_slots > conc.pool_total[pool]:
                starved_tasks.add(task)
                starving[ti] = f"pool_slots {task.pool_slots} exceed pool {pool!r} size"
                continue
            if task.pool_slots > pool_open[pool]:
                starved_tasks.add(task)
                starving[ti] = f"pool {pool!r} has fewer open slots than pool_slots"
                continue
            plan = ti.run.plan
            dkey = ti.run if per_run else plan.index
            active = ti.run.active if per_run else dag_active[plan.index]
            if active + dag_extra.get(dkey, 0) >= plan.max_active_tasks:
                starved_dags.add(dkey)
                starving[ti] = "max_active_tasks reached"
                continue
            if task.max_active_tis_per_dag is not None and \
                    conc.task_active[task] + task_extra.get(task, 0) >= task.max_active_tis_per_dag:
                starved_tasks.add(task)
                starving[ti] = "max_active_tis_per_dag reached"
                continue
            if task.max_active_tis_per_dagrun is not None:
                rk = (ti.run, task)
                if conc.run_task_active[rk] + run_task_extra.get(rk, 0) >= task.max_active_tis_per_dagrun:
                    starved_run_tasks.add(rk)
                    starving[ti] = "max_active_tis_per_dagrun reached"
                    continue
                run_task_extra[rk] = run_task_extra.get(rk, 0) + 1
            if executor_open.get(ti.executor, 0) <= 0:
                starved_tasks.add(task)
                starving[ti] = f"no open slot in {ti.executor}"
                continue
            aside.pop()
            pool_open[pool] -= task.pool_slots
            dag_extra[dkey] = dag_extra.get(dkey, 0) + 1
            if task.max_active_tis_per_dag is not None:
                task_extra[task] = task_extra.get(task, 0) + 1
            executor_open[ti.executor] -= 1
            scheduled.accepted(ti)
            accepted.append(ti)
        after = len(starved_pools) + len(starved_dags) + len(starved_tasks) + len(starved_run_tasks)
        if accepted or len(batch) < max_tis or after == before:
            scheduled._restore(aside_groups, aside)
            return accepted, starving
