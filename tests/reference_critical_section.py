"""The critical section's selection as it was written before the ScheduledTIs index (a linear scan
of the scheduled task instances sorted by sort_key): the reference the index must reproduce
exactly. Not a test module itself."""
from sim.model.states import TaskInstanceState as S


def reference_executable_task_instances(scheduled: list, max_tis: int, conc,
                                        executor_open: dict[str, int]) -> tuple[list, dict]:
    """Choose which ``scheduled`` task instances (sorted by priority) to queue now.

    Returns the accepted task instances and the starvation found (for explaining waits).
    """
    starving: dict = {}
    if max_tis <= 0 or not scheduled:
        return [], starving
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
    while True:
        batch = []
        for ti in scheduled:
            if ti.state is not S.SCHEDULED:
                continue
            task = ti.task
            if task.pool in starved_pools or task in starved_tasks:
                continue
            dkey = ti.run if per_run else ti.run.plan.index
            if dkey in starved_dags or (ti.run, task) in starved_run_tasks:
                continue
            batch.append(ti)
            if len(batch) == max_tis:
                break
        before = len(starved_pools) + len(starved_dags) + len(starved_tasks) + len(starved_run_tasks)
        for ti in batch:
            task = ti.task
            pool = task.pool
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
            pool_open[pool] -= task.pool_slots
            dag_extra[dkey] = dag_extra.get(dkey, 0) + 1
            if task.max_active_tis_per_dag is not None:
                task_extra[task] = task_extra.get(task, 0) + 1
            executor_open[ti.executor] -= 1
            accepted.append(ti)
        after = len(starved_pools) + len(starved_dags) + len(starved_tasks) + len(starved_run_tasks)
        if accepted or len(batch) < max_tis or after == before:
            return accepted, starving
