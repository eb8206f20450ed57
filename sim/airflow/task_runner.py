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

import math

from ..model.runtime import retry_delay
from ..model.states import TaskInstanceState as S


class Process:
    """One ``airflow tasks run`` process: what it runs, where, and whether it is still alive (a
    worker crash or a kill ends it between two steps)."""

    __slots__ = ("ti", "try_number", "host", "worker", "on_exit", "alive")

    def __init__(self, ti, host, worker, on_exit, try_number=None):
        self.ti = ti
        self.try_number = ti.try_number if try_number is None else try_number
        self.host = host
        self.worker = worker
        self.on_exit = on_exit
        self.alive = True


class TaskRunner:
    __slots__ = ("sim", "env", "db", "rec", "startup", "mini_scheduler", "mini_queries", "live", "running",
                 "job_heartbeat", "run_cpu", "exit_cpu", "api",
                 "heartbeat_interval", "_beating", "heartbeats")

    def __init__(self, sim):
        self.sim = sim
        self.env = sim.env
        self.db = sim.db
        self.rec = sim.recorder
        ov, cfg = sim.overheads, sim.airflow
        self.startup = ov.process_start_interpreter if cfg.execute_tasks_new_python_interpreter else ov.process_start_fork
        self.mini_scheduler = cfg.schedule_after_task_execution
        self.mini_queries = ov.mini_scheduler_queries
        #: Airflow's own CPU work in the task process, inside the run and after it (calibrated).
        self.run_cpu = ov.task_run_cpu
        self.exit_cpu = ov.task_exit_cpu
        self.live: dict = {}             # every process started and not exited (a set, ordered)
        self.running: dict = {}          # (ti, try) -> the process running that try
        #: [scheduler] job_heartbeat_sec (C2, 5 s): how soon a task job notices an external change
        self.job_heartbeat = 5.0
        #: Airflow 3's Task SDK: tasks talk to the API server, not the DB, and heartbeat through it.
        #: (Airflow 2's LocalTaskJob heartbeats are not counted as DB load.)
        self.api = sim.api_server
        self.heartbeat_interval = cfg.min_heartbeat_interval if self.api is not None else 0.0
        self._beating = False
        self.heartbeats = 0

    def start(self, ti, host, worker: str, on_exit, try_number: int | None = None,
              startup: float | None = None) -> Process:
        """Launch ``ti`` (the try ``try_number``, default its current one) as a process on
        ``host``. When it exits, ``on_exit(proc, state)`` is called with the outcome it wrote
        (``None`` if it found nothing to run, or was terminated); a retry may already be
        scheduled by then, so the process keeps its own try number."""
        proc = Process(ti, host, worker, on_exit, try_number)
        self.live[proc] = None
        if ti.state is S.QUEUED and ti.try_number == proc.try_number:
            if ti.launched_at != ti.launched_at:     # not already handed to a pod by its executor
                ti.launched_at = self.env.now
            ti.worker = worker
            ti.host = host.name
        boot = self.startup if startup is None else startup
        host.run(boot + ti.run.plan.parse_time, lambda: self._booted(proc))
        return proc

    def _booted(self, proc) -> None:
        if not proc.alive:
            return
        env = self.env
        ti = proc.ti
        if ti.state is not S.QUEUED or ti.try_number != proc.try_number:
            # Airflow's dependency check in `tasks run`: this try is no longer queued (a duplicate
            # delivery, or the scheduler already gave up on it), so the process exits at once.
            self._exit(proc, None)
            return
        # UPDATE task_instance SET state='running' (Airflow 3: POST /run to the API server)
        started = env.now + (self.db.book(1) if self.api is None else self._api_write())
        ti.started_at = started
        self.running[(ti, proc.try_number)] = proc
        if self.heartbeat_interval > 0.0 and not self._beating:
            self._beating = True
            env.timeout(self.heartbeat_interval).callbacks.append(self._heartbeats)
        self.rec.transition(ti, S.RUNNING, started, f"task process started on {proc.worker}")
        task = ti.task
        duration = ti.durations[ti.try_number - 1]
        if task.deferrable is not None and ti.run.defer_state[ti][2]:
            duration = ti.run.defer_state[ti][1]     # the resumed part (execute_complete)
        sensor = task.sensor
        if sensor is not None:
            state = ti.run.sensor_state[ti]
            if state[1] != state[1]:
                state[1] = started                     # the try's first poke
            if sensor.mode == "poke":
                # one process pokes every poke_interval until the condition holds or time is up
                polls = math.ceil(max(0.0, state[0]) / sensor.poke_interval)
                duration = min(polls * sensor.poke_interval, sensor.timeout) + duration
        run_cpu = self.run_cpu
        if (task.cpu_bound and duration > 0.0) or run_cpu > 0.0:
            wait = started - env.now
            host = proc.host
            if task.cpu_bound:
                def go(_e=None):
                    host.run(run_cpu + duration, lambda: self._ended(proc))
            else:
                # task_run_cpu first (the raw task process's fork, context, templates), then the
                # task's own wall time
                def go(_e=None):
                    host.run(run_cpu, lambda: env.timeout(duration).callbacks.append(
                        lambda _e: self._ended(proc)))
            if wait > 0.0:
                env.timeout(wait).callbacks.append(go)
            else:
                go()
        else:
            env.timeout(started - env.now + duration).callbacks.append(lambda _e: self._ended(proc))

    def _ended(self, proc) -> None:
        if not proc.alive:
            return
        if proc.ti.state is not S.RUNNING or proc.ti.try_number != proc.try_number:
            return           # the try was ended from outside; terminate() already ended us
        env = self.env
        ti = proc.ti
        ti.ended_at = env.now
        task = ti.task
        sensor = task.sensor
        if task.deferrable is not None and not ti.run.defer_state[ti][2]:
            outcome = S.DEFERRED          # TaskDeferred: write the trigger row, free the slots
        elif ti.failure_draws is not None and ti.fails_this_try():
            outcome = S.UP_FOR_RETRY if ti.try_number <= task.retries else S.FAILED
        elif sensor is None:
            outcome = S.SUCCESS
        else:
            wait, first = ti.run.sensor_state[ti]
            elapsed = env.now - first
            if elapsed >= wait - 1e-9 and wait <= sensor.timeout:
                outcome = S.SUCCESS
            elif elapsed >= sensor.timeout - 1e-9:
                # AirflowSensorTimeout: skipped with soft_fail, else failed (no retry)
                outcome = S.SKIPPED if sensor.soft_fail else S.FAILED
            else:
                outcome = S.UP_FOR_RESCHEDULE        # reschedule mode: free the slots until the next poke
        write = self.db.book(1) if self.api is None else self._api_write()   # the task writes its outcome
        if write > 0.0:
            env.timeout(write).callbacks.append(lambda _e: self._written(proc, outcome))
        else:
            self._written(proc, outcome)

    def _written(self, proc, outcome) -> None:
        if not proc.alive:
            return
        ti = proc.ti
        if ti.state is not S.RUNNING or ti.try_number != proc.try_number:
            return           # ended from outside while writing; terminate() ends the process
        sim = self.sim
        self.rec.transition(ti, outcome, self.env.now, "task process wrote its outcome")
        self.rec.try_ended(ti)
        if outcome is S.UP_FOR_RETRY:
            ti.next_retry_at = ti.ended_at + retry_delay(ti)
            sim.scheduler.retry_at(ti)
        elif outcome is S.UP_FOR_RESCHEDULE:
            ti.next_retry_at = ti.ended_at + ti.task.sensor.poke_interval
            sim.scheduler.retry_at(ti)
        elif outcome is S.DEFERRED:
            sim.scheduler.deferred(ti)
        else:
            sim.scheduler.ti_finished(ti, outcome, ti.ended_at)
        sim.scheduler.ring()
        if outcome is S.SUCCESS and self.mini_scheduler and ti.run.plan.downstream[ti.ti_index]:
            cost = self.db.book(self.mini_queries)
            if cost > 0.0:
                self.env.timeout(cost).callbacks.append(lambda _e: self._mini_schedule(proc, outcome))
                return
            self._mini_schedule(proc, outcome)
            return
        if self.exit_cpu > 0.0:
            self._leave(proc, outcome)
        else:
            self._exit(proc, outcome)

    def _mini_schedule(self, proc, outcome) -> None:
        if not proc.alive:
            return
        self.sim.scheduler.mini_schedule(proc.ti)
        if self.exit_cpu > 0.0:
            self._leave(proc, outcome)
        else:
            self._exit(proc, outcome)

    def _leave(self, proc, outcome) -> None:
        """The process's work after its outcome (task_exit_cpu: LocalTaskJob's handle_task_exit,
        the job's end, the interpreter's exit), then its exit, which the executor sees."""
        cpu = self.exit_cpu
        if cpu > 0.0:
            proc.host.run(cpu, lambda: self._exit(proc, outcome) if proc.alive else None)
        else:
            self._exit(proc, outcome)

    def _exit(self, proc, outcome) -> None:
        self.live.pop(proc, None)
        key = (proc.ti, proc.try_number)
        if self.running.get(key) is proc:
            del self.running[key]
        proc.on_exit(proc, outcome)

    def _api_write(self) -> float:
        """One state write by the task through the API server, which makes the DB query (Airflow
        3's Task SDK, airflow-mechanics.md §2.6); Airflow 2's tasks book the DB directly."""
        t = self.api.book(1)
        return t + self.db.book(1, at=self.env.now + t)

    def _heartbeats(self, _e=None) -> None:
        """Airflow 3: every running task's supervisor heartbeats through the API server every
        min_heartbeat_interval; each heartbeat is a request and a DB update."""
        api, db, now = self.api, self.db, self.env.now
        for _ in range(len(self.running)):
            t = api.book(1)
            db.book(1, at=now + t)
        self.heartbeats += len(self.running)
        if self.running:
            self.env.timeout(self.heartbeat_interval).callbacks.append(self._heartbeats)
        else:
            self._beating = False

    def any_alive(self) -> bool:
        """Is some task process still running? (Processes killed with their worker are dropped.)"""
        for proc in [p for p in self.live if not p.alive]:
            del self.live[proc]
        return bool(self.live)

    def terminate(self, ti, try_number: int) -> None:
        """The try was failed from outside (a zombie, a timeout) while its process may still be
        alive: Airflow 2's task job notices at its next heartbeat and terminates the task."""
        proc = self.running.get((ti, try_number))
        if proc is None or not proc.alive:
            return

        def kill(_e):
            if proc.alive:
                proc.alive = False
                self._exit(proc, None)
        self.env.timeout(self.job_heartbeat).callbacks.append(kill)
