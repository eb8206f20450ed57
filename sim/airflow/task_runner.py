"""What ``airflow tasks run`` does wherever a task instance is launched (Airflow 2.x).

1. the process starts (fork, or a fresh interpreter) and parses the DAG file: CPU work on the host;
2. it marks the task instance ``running`` in the metadata DB (Airflow 2's ``start_date``, which is
   why start-up and parsing fall between ``queued`` and ``start_date``);
3. the task's code runs (CPU work on the host if the task is CPU-bound, else wall time);
4. it writes the outcome (``success``, ``up_for_retry`` or ``failed``) to the DB;
5. after a success, the mini-scheduler (``schedule_after_task_execution``) schedules the same run's
   downstream tasks whose dependencies are now met;
6. the process exits and the executor learns the result.

Steps chain through event callbacks rather than a SimPy process per task: a task's life is a
straight line of timed steps, and a callback chain is the cheapest way SimPy offers to wait.
"""
from __future__ import annotations

from ..model.runtime import retry_delay
from ..model.states import TaskInstanceState as S


class Process:
    """One ``airflow tasks run`` process: what it runs, where, and whether it is still alive (a
    worker crash or a kill ends it between two steps)."""

    __slots__ = ("ti", "try_number", "host", "worker", "on_exit", "alive")

    def __init__(self, ti, host, worker, on_exit):
        self.ti = ti
        self.try_number = ti.try_number
        self.host = host
        self.worker = worker
        self.on_exit = on_exit
        self.alive = True


class TaskRunner:
    __slots__ = ("sim", "env", "db", "rec", "startup", "mini_scheduler", "mini_queries")

    def __init__(self, sim):
        self.sim = sim
        self.env = sim.env
        self.db = sim.db
        self.rec = sim.recorder
        ov, cfg = sim.overheads, sim.airflow
        self.startup = ov.process_start_interpreter if cfg.execute_tasks_new_python_interpreter else ov.process_start_fork
        self.mini_scheduler = cfg.schedule_after_task_execution
        self.mini_queries = ov.mini_scheduler_queries

    def start(self, ti, host, worker: str, on_exit) -> Process:
        """Launch ``ti`` as a process on ``host``. When it exits, ``on_exit(proc, state, row)`` is
        called with the outcome it wrote (``None`` if it found nothing to run) and the row of its
        try; a retry may already be scheduled by then, so the process keeps its own try number."""
        proc = Process(ti, host, worker, on_exit)
        if ti.state is S.QUEUED:
            ti.launched_at = self.env.now
            ti.worker = worker
        host.run(self.startup + ti.run.plan.parse_time, lambda: self._booted(proc))
        return proc

    def _booted(self, proc) -> None:
        if not proc.alive:
            return
        env = self.env
        ti = proc.ti
        if ti.state is not S.QUEUED or ti.try_number != proc.try_number:
            # Airflow's dependency check in `tasks run`: this try is no longer queued (a duplicate
            # delivery, or the scheduler already gave up on it), so the process exits at once.
            proc.on_exit(proc, None, None)
            return
        started = env.now + self.db.book(1)        # UPDATE task_instance SET state='running'
        ti.started_at = started
        self.rec.transition(ti, S.RUNNING, started, f"task process started on {proc.worker}")
        duration = ti.duration_of_try()
        if ti.task.cpu_bound and duration > 0.0:
            wait = started - env.now
            host = proc.host
            if wait > 0.0:
                env.timeout(wait).callbacks.append(lambda _e: host.run(duration, lambda: self._ended(proc)))
            else:
                host.run(duration, lambda: self._ended(proc))
        else:
            env.timeout(started - env.now + duration).callbacks.append(lambda _e: self._ended(proc))

    def _ended(self, proc) -> None:
        if not proc.alive:
            return
        env = self.env
        ti = proc.ti
        ti.ended_at = env.now
        if ti.fails_this_try():
            outcome = S.UP_FOR_RETRY if ti.try_number <= ti.task.retries else S.FAILED
        else:
            outcome = S.SUCCESS
        write = self.db.book(1)                   # the task writes its own outcome (Airflow 2)
        if write > 0.0:
            env.timeout(write).callbacks.append(lambda _e: self._written(proc, outcome))
        else:
            self._written(proc, outcome)

    def _written(self, proc, outcome) -> None:
        if not proc.alive:
            return
        ti = proc.ti
        sim = self.sim
        self.rec.transition(ti, outcome, self.env.now, "task process wrote its outcome")
        row = self.rec.try_ended(ti)
        if outcome is S.UP_FOR_RETRY:
            ti.next_retry_at = ti.ended_at + retry_delay(ti)
            sim.scheduler.retry_at(ti)
        else:
            sim.scheduler.ti_finished(ti, outcome, ti.ended_at)
        sim.scheduler.ring()
        if outcome is S.SUCCESS and self.mini_scheduler and ti.run.plan.downstream[ti.ti_index]:
            cost = self.db.book(self.mini_queries)
            if cost > 0.0:
                self.env.timeout(cost).callbacks.append(lambda _e: self._mini_schedule(proc, outcome, row))
                return
            self._mini_schedule(proc, outcome, row)
            return
        proc.on_exit(proc, outcome, row)

    def _mini_schedule(self, proc, outcome, row) -> None:
        if not proc.alive:
            return
        self.sim.scheduler.mini_schedule(proc.ti)
        proc.on_exit(proc, outcome, row)
