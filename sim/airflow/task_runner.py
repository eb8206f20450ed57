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

    def start(self, ti, host, worker: str, on_exit) -> None:
        """Launch ``ti`` as a process on ``host``; calls ``on_exit(ti, try_number, worker, state,
        row)`` when the process exits (a retry may already be scheduled by then, so the try and
        the worker are passed along rather than read back from ``ti``)."""
        ti.launched_at = self.env.now
        ti.worker = worker
        try_number = ti.try_number
        done = lambda t, state, row: on_exit(t, try_number, worker, state, row)  # noqa: E731
        boot = self.startup + ti.run.plan.parse_time
        host.run(boot, lambda: self._booted(ti, host, done))

    def _booted(self, ti, host, on_exit) -> None:
        env = self.env
        started = env.now + self.db.book(1)        # UPDATE task_instance SET state='running'
        ti.started_at = started
        self.rec.transition(ti, S.RUNNING, started, "task process started")
        duration = ti.duration_of_try()
        if ti.task.cpu_bound and duration > 0.0:
            wait = started - env.now
            if wait > 0.0:
                env.timeout(wait).callbacks.append(
                    lambda _e: host.run(duration, lambda: self._ended(ti, on_exit)))
            else:
                host.run(duration, lambda: self._ended(ti, on_exit))
        else:
            env.timeout(started - env.now + duration).callbacks.append(lambda _e: self._ended(ti, on_exit))

    def _ended(self, ti, on_exit) -> None:
        env = self.env
        ti.ended_at = env.now
        if ti.fails_this_try():
            outcome = S.UP_FOR_RETRY if ti.try_number <= ti.task.retries else S.FAILED
        else:
            outcome = S.SUCCESS
        write = self.db.book(1)                   # the task writes its own outcome (Airflow 2)
        if write > 0.0:
            env.timeout(write).callbacks.append(lambda _e: self._written(ti, outcome, on_exit))
        else:
            self._written(ti, outcome, on_exit)

    def _written(self, ti, outcome, on_exit) -> None:
        env = self.env
        now = env.now
        sim = self.sim
        run = ti.run
        self.rec.transition(ti, outcome, now, "task process wrote its outcome")
        row = self.rec.try_ended(ti)
        if outcome is S.UP_FOR_RETRY:
            ti.next_retry_at = ti.ended_at + retry_delay(ti)
            sim.scheduler.retry_at(ti)
        else:
            sim.scheduler.ti_finished(ti, outcome, ti.ended_at)
        sim.scheduler.ring()
        if outcome is S.SUCCESS and self.mini_scheduler and run.plan.downstream[ti.ti_index]:
            cost = self.db.book(self.mini_queries)
            if cost > 0.0:
                env.timeout(cost).callbacks.append(lambda _e: self._mini_schedule(ti, outcome, row, on_exit))
                return
            self._mini_schedule(ti, outcome, row, on_exit)
            return
        on_exit(ti, outcome, row)

    def _mini_schedule(self, ti, outcome, row, on_exit) -> None:
        self.sim.scheduler.mini_schedule(ti)
        on_exit(ti, outcome, row)
