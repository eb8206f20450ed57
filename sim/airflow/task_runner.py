"""What ``airflow tasks run`` does wherever a task instance is launched (Airflow 2.x).

1. the process starts (fork, or a fresh interpreter) and parses the DAG file: CPU work on the host;
2. it marks the task instance ``running`` in the metadata DB (Airflow 2's ``start_date``, which is
   why start-up and parsing fall between ``queued`` and ``start_date``; Airflow 3's supervisor
   marks it through the API server right after the fork, so there parsing falls inside the run);
3. the task's code runs (CPU work on the host if the task is CPU-bound, else wall time);
4. it writes the outcome (``success``, ``up_for_retry`` or ``failed``) to the DB;
5. the raw task process exits and its LocalTaskJob notices (``return_code``), then
   ``handle_task_exit`` runs the mini-scheduler (``schedule_after_task_execution``): after a
   success it schedules the same run's downstream tasks whose dependencies are now met
   (Airflow 2.10 ``local_task_job_runner.py`` ``handle_task_exit``, after the raw process ended);
6. the job ends, the process exits and the executor learns the result.

What the try costs other processes beside its path (``task_background_cpu``: mostly PostgreSQL
serving its queries) runs on the host, waited for by nobody: the shares ``task_background_at_launch``
and ``task_background_in_run`` at the launch and at ``start_date``, the rest at the exit.

Each step costs CPU work on the host (shared by processor sharing) and, separately, waiting that
uses no CPU (``*_latency``: DB round trips, fork, the job polling its child): only the CPU part
stretches when many task processes share the cores.

Steps chain through event callbacks rather than a SimPy process per task: a task's life is a
straight line of timed steps, and a callback chain is the cheapest way SimPy offers to wait. With
one step pending at a time, the process is its own timer (:func:`sim.engine.later_on`) and each
step a method taking it, made into a callbacks tuple once: no timer, closure or list per step.
"""
from __future__ import annotations

import math

from ..engine import later, later_on_last
from ..infra.autogroup import DATABASE_GROUP
from ..model.rng import gamma_sampler, stream
from ..model.state_core import failure_outcome
from ..model.states import DEFERRED, FAILED, QUEUED, RUNNING, SKIPPED, SUCCESS, UP_FOR_RESCHEDULE
from ..model.stimuli import TASK_OUTCOME, TASK_STARTED, Said


def _one() -> float:
    return 1.0


class Process:
    """One ``airflow tasks run`` process: what it runs, where, and whether it is still alive (a
    worker crash or a kill ends it between two steps)."""

    __slots__ = ("ti", "try_number", "host", "worker", "on_exit", "alive", "worker_boot", "one_shot",
                 "callbacks", "cpu", "wait", "outcome")
    _ok = True          # as a timer (engine.later_on): SimPy's loop reads it


    def __init__(self, ti, host, worker, on_exit, try_number=None):
        self.ti = ti
        self.try_number = ti.try_number if try_number is None else try_number
        self.host = host
        self.worker = worker
        self.on_exit = on_exit
        self.alive = True
        self.worker_boot = 0.0          # Airflow 3: the runner's start-up CPU, inside the run
        self.one_shot = False           # its worker runs nothing else (a pod)
        self.callbacks = None           # its pending step, when it waits as its own timer
        self.cpu = 0.0                  # the next step's CPU seconds ...
        self.wait = None                # ... the run's waiting after its CPU (None: none at all)
        self.outcome = None             # ... the outcome it wrote


class TaskRunner:
    __slots__ = ("sim", "env", "db", "core", "startup", "fresh_interpreter", "mini_scheduler", "mini_schedule", "mini_queries", "mini_cpu",
                 "outcome_queries", "live", "running",
                 "job_heartbeat", "run_cpu", "exit_cpu", "background_cpu", "background_launch", "background_run", "api", "start_latency", "run_latency",
                 "exit_latency", "_factor", "_started_on",
                 "heartbeat_interval", "_beating", "heartbeats", "late_exit_share", "_late_exit",
                 "_to_ended", "_to_written", "_to_handle", "_to_mini")

    def __init__(self, sim):
        self.sim = sim
        self.env = sim.env
        self.db = sim.db
        self.core = sim.state
        ov, cfg = sim.overheads, sim.airflow
        self.fresh_interpreter = cfg.execute_tasks_new_python_interpreter
        self.startup = ov.process_start_interpreter if self.fresh_interpreter else ov.process_start_fork
        self.mini_scheduler = cfg.schedule_after_task_execution
        self.mini_queries = ov.mini_scheduler_queries
        self.mini_cpu = ov.mini_scheduler_cpu
        self.outcome_queries = ov.task_outcome_queries
        #: schedule_after_task_execution's work on the DB: the scheduler's, wired by the simulation
        self.mini_schedule = None
        #: Airflow's own CPU work in the task process, inside the run and after it (calibrated).
        self.run_cpu = ov.task_run_cpu
        self.exit_cpu = ov.task_exit_cpu
        # a try's background CPU in three parts: at its launch, at its start_date, at its exit
        self.background_launch = ov.task_background_cpu * ov.task_background_at_launch
        self.background_run = ov.task_background_cpu * ov.task_background_in_run
        self.background_cpu = ov.task_background_cpu - self.background_launch - self.background_run
        self.start_latency = ov.process_start_latency
        self.run_latency = ov.task_run_latency
        self.exit_latency = ov.task_exit_latency
        #: each stage's overheads times a gamma factor of mean 1 (overhead_cv), from its own stream
        if ov.overhead_cv > 0.0:
            k = 1.0 / ov.overhead_cv ** 2
            self._factor = gamma_sampler(stream(sim.seed, "overheads/task-processes"), k, 1.0 / k)
        else:
            self._factor = _one
        self._started_on: dict = {}      # worker -> its "task process started on" message
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
        #: Airflow 3's supervisor notices a share of task exits only when its select() times out,
        #: min_heartbeat_interval after the task's end (Overheads.supervisor_late_exit_share).
        self.late_exit_share = ov.supervisor_late_exit_share if self.api is not None else 0.0
        self._late_exit = stream(sim.seed, "overheads/supervisor-exits").random if self.late_exit_share > 0.0 else None
        # a process's steps as the callbacks it waits with (engine.later_on), made once
        self._to_ended = (self._ended,)
        self._to_written = (self._written,)
        self._to_handle = (self._handle_task_exit,)
        self._to_mini = (self._mini_schedule,)

    def start(self, ti, host, worker: str, on_exit, try_number: int | None = None,
              startup: float | None = None, preloaded: float = 0.0) -> Process:
        """Launch ``ti`` (the try ``try_number``, default its current one) as a process on
        ``host``. When it exits, ``on_exit(proc, state)`` is called with the outcome it wrote
        (``None`` if it found nothing to run, or was terminated); a retry may already be
        scheduled by then, so the process keeps its own try number. ``preloaded``: start-up CPU
        the forked process skips because its parent imported those modules already (a Celery
        worker's, CeleryConfig.worker_preload_cpu); not with a fresh interpreter."""
        proc = Process(ti, host, worker, on_exit, try_number)
        own = self.startup if self.fresh_interpreter or preloaded <= 0.0 else max(0.0, self.startup - preloaded)
        proc.worker_boot = own if self.api is not None and startup is None else 0.0
        proc.one_shot = startup is not None        # a pod: its own start-up, one task
        self.live[proc] = None
        if ti.state is QUEUED and ti.try_number == proc.try_number:
            if ti.launched_at != ti.launched_at:     # not already handed to a pod by its executor
                ti.launched_at = self.env.now
            ti.worker = worker
            ti.host = host.name
        boot = own if startup is None else startup
        # Airflow 3's supervisor marks the try running (start_date) as soon as it has forked the
        # task process, before that process parses the DAG file (sdk/execution_time/
        # supervisor.py, ActivitySubprocess._on_child_started, 3.3.2): parsing is inside the run.
        parse = ti.run.plan.parse_time
        if self.api is not None and startup is None:
            # Airflow 3: the supervisor forks the task runner and marks the try running at once;
            # the runner's start-up and parse come after start_date (in _booted's run CPU)
            boot = parse = 0.0
        elif self.api is not None:
            parse = 0.0                          # a pod boots first, then the same as above
        # (a pod's start-up, given as `startup`, has its own stages and is not varied)
        f = self._factor() if startup is None else 1.0
        wait = self.start_latency * f
        cpu = (boot + parse) * f
        if self.background_launch > 0.0 and not proc.one_shot:      # (a pod's host goes with the pod)
            self._background(host).burn(self.background_launch)
        db_host = self.db.host
        if db_host is not None and wait > 0.0:
            # The start's waiting (the job's row, the dependency checks, the state's update) is
            # the database server's work; on a single-machine install it shares the cores, so a
            # loaded start stretches like its CPU (data/airflow-runs/start-load: parsed ->
            # start_date 6.5x and 14.4x a lone start at p16 and p32, the parse 7.4x and 15.4x)
            if db_host is host:
                cpu, wait = cpu + wait, 0.0
            elif db_host.machine is host.machine:
                # the same cores, the database's group (its session): its work first, then ours
                proc.cpu = cpu
                db_host.run(wait, self._start_up, proc)
                return proc
            else:
                wait *= db_host.stretch()
        # the start latency, then the start-up's CPU: one host job with its wait before it
        host.run(cpu, self._booted, proc, after=wait if wait > 0.0 else 0.0)
        return proc

    def _start_up(self, proc) -> None:
        """The start's database work is done (in the database's group): the start-up's CPU."""
        proc.host.run(proc.cpu, self._booted, proc)

    def _background(self, host):
        """Where a try's background CPU runs: its host; on the scheduler's machine, in the database
        server's group (it is mostly PostgreSQL serving the try's queries, and a single-machine
        install, as every measured one, runs PostgreSQL there; Linux's autogroups,
        sim/infra/host.py). On a worker's host of its own it stays in the host's own group."""
        return host.group(DATABASE_GROUP) if host.machine is self.sim.scheduler_host else host

    def _booted(self, proc) -> None:
        if not proc.alive:
            return
        env = self.env
        ti = proc.ti
        if ti.state is not QUEUED or ti.try_number != proc.try_number:
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
            later(env, self.heartbeat_interval, self._heartbeats)
        said = self._started_on.get(proc.worker)
        if said is None:                         # one message object per worker (hashed once) ...
            if proc.one_shot:                    # ... but a pod's worker never comes back: its
                said = Said("task process started on ", proc.worker)   # message stays in parts
            else:
                said = self._started_on[proc.worker] = f"task process started on {proc.worker}"
        self.core.transition(ti, RUNNING, started, TASK_STARTED, said)
        if self.background_run > 0.0 and not proc.one_shot:
            self._background(proc.host).burn(self.background_run)
        task = ti.task
        duration = ti.durations[ti.try_number - 1]
        if task.deferrable is not None and ti.run.defer_state[ti].resumed:
            duration = ti.run.defer_state[ti].resume_duration     # execute_complete
        sensor = task.sensor
        if sensor is not None:
            state = ti.run.sensor_state[ti]
            if state.first_poke != state.first_poke:
                state.first_poke = started             # the try's first poke
            if sensor.mode == "poke":
                # one process pokes every poke_interval until the condition holds or time is up
                polls = math.ceil(max(0.0, state.holds_after) / sensor.poke_interval)
                duration = min(polls * sensor.poke_interval, sensor.timeout) + duration
        f = self._factor()
        run_cpu = self.run_cpu if self.api is None else self.run_cpu + ti.run.plan.parse_time + proc.worker_boot
        run_cpu *= f
        run_wait = self.run_latency * f
        if run_wait > 0.0 and task.cpu_bound:
            duration_cpu, duration = duration, run_wait
        elif task.cpu_bound:
            duration_cpu, duration = duration, 0.0
        else:
            duration_cpu, duration = 0.0, duration + run_wait
        if duration_cpu > 0.0 or run_cpu > 0.0:
            wait = started - env.now
            if duration_cpu > 0.0 and duration > 0.0:
                # a CPU-bound body, then the run's waiting
                proc.cpu, proc.wait = run_cpu + duration_cpu, duration
            elif duration_cpu > 0.0:
                proc.cpu, proc.wait = run_cpu + duration_cpu, None
            else:
                # task_run_cpu first (the raw task process's fork, context, templates), then the
                # task's own wall time (a timer even when it is zero, as ever)
                proc.cpu, proc.wait = run_cpu, duration
            # the DB write's wait, the run's CPU, then its waiting: one host job
            proc.host.run_last(proc.cpu, self._ended, proc, after=wait if wait > 0.0 else 0.0, tail=proc.wait)
        else:
            later_on_last(env, started - env.now + duration, proc, self._to_ended)

    def _ended(self, proc) -> None:
        if not proc.alive:
            return
        if proc.ti.state is not RUNNING or proc.ti.try_number != proc.try_number:
            return           # the try was ended from outside; terminate() already ended us
        env = self.env
        ti = proc.ti
        ti.ended_at = env.now
        task = ti.task
        sensor = task.sensor
        if task.deferrable is not None and not ti.run.defer_state[ti].resumed:
            outcome = DEFERRED          # TaskDeferred: write the trigger row, free the slots
        elif ti.failure_draws is not None and ti.fails_this_try():
            outcome = failure_outcome(ti)
        elif sensor is None:
            outcome = SUCCESS
        else:
            state = ti.run.sensor_state[ti]
            wait, first = state.holds_after, state.first_poke
            elapsed = env.now - first
            if elapsed >= wait - 1e-9 and wait <= sensor.timeout:
                outcome = SUCCESS
            elif elapsed >= sensor.timeout - 1e-9:
                # AirflowSensorTimeout: skipped with soft_fail, else failed (no retry)
                outcome = SKIPPED if sensor.soft_fail else FAILED
            else:
                outcome = UP_FOR_RESCHEDULE        # reschedule mode: free the slots until the next poke
        # the task writes its outcome: the log row, the task instance's merge and update, the commit
        write = self.db.book(self.outcome_queries) if self.api is None else self._api_write()
        proc.outcome = outcome
        if write > 0.0:
            later_on_last(env, write, proc, self._to_written)
        else:
            self._written(proc)

    def _written(self, proc) -> None:
        if not proc.alive:
            return
        outcome = proc.outcome
        ti = proc.ti
        if ti.state is not RUNNING or ti.try_number != proc.try_number:
            return           # ended from outside while writing; terminate() ends the process
        self.core.end_try(ti, outcome, self.env.now, TASK_OUTCOME, "task process wrote its outcome")
        self.core.changed()
        self._teardown(proc)

    def _teardown(self, proc) -> None:
        """After the outcome is written: the raw task process finishes and exits, and its
        LocalTaskJob sees the return code (task_exit_latency); handle_task_exit runs the
        mini-scheduler (below); then the job ends and the process exits (task_exit_cpu, on the
        host), which the executor sees. Measured from the task logs: "Task exited" 33 ms and the
        mini-scheduler's commit 63 ms after end_date (data/airflow-runs/exit-path). In Airflow 3
        (no mini-scheduler) the supervisor notices some exits only at its next select time-out,
        min_heartbeat_interval later (measured: 313 of 882 tries, data/airflow-runs/af3/*/supervisor.csv)."""
        f = self._factor()
        wait = self.exit_latency * f
        if self._late_exit is not None and self._late_exit() < self.late_exit_share:
            wait += self.heartbeat_interval      # seen at the supervisor's select time-out
        proc.cpu = self.exit_cpu * f
        if wait > 0.0:
            later_on_last(self.env, wait, proc, self._to_handle)
        else:
            self._handle_task_exit(proc)

    def _handle_task_exit(self, proc) -> None:
        if not proc.alive:
            return
        run = proc.ti.run
        # Airflow 2.10's handle_task_exit runs the mini-scheduler after every exit but a deferral,
        # after a failure or a retry too (features-2's task logs: a failed task's scheduled its
        # one_failed downstream). A leaf's, which schedules nothing, is not modelled
        # (docs/background.md, "The mini-scheduler").
        if self.mini_scheduler and proc.outcome is not DEFERRED and run.plan.downstream[proc.ti.ti_index]:
            if run.locked:
                # another task's mini-scheduler holds the run's row: this one's SELECT ... FOR
                # UPDATE skip_locked finds nothing and it gives up (2.10 _schedule_downstream_tasks)
                self._job_end(proc)
                return
            # it locks the run's row, then its queries and CPU; meanwhile the scheduler's
            # examination skips the run (DagRun.next_dagruns_to_examine, skip_locked)
            run.locked = True
            cost = self.db.book(self.mini_queries)
            if self.mini_cpu > 0.0:
                proc.host.run_last(self.mini_cpu, self._mini_schedule, proc, after=cost)
            elif cost > 0.0:
                later_on_last(self.env, cost, proc, self._to_mini)
            else:
                self._mini_schedule(proc)
            return
        self._job_end(proc)

    def _mini_schedule(self, proc) -> None:
        proc.ti.run.locked = False       # (also when the process was killed meanwhile)
        if not proc.alive:
            self.core.changed()          # the run's news, passed over while locked, are examinable again
            return
        self.mini_schedule(proc.ti)
        self._job_end(proc)

    def _job_end(self, proc) -> None:
        """The job's end and the process's exit: task_exit_cpu on the host, then the executor
        learns the outcome."""
        if proc.cpu > 0.0:
            proc.host.run_last(proc.cpu, self._exited, proc)
        else:
            self._exit(proc, proc.outcome)

    def _exited(self, proc) -> None:
        if proc.alive:
            self._exit(proc, proc.outcome)

    def _exit(self, proc, outcome) -> None:
        self.live.pop(proc, None)
        key = (proc.ti, proc.try_number)
        if self.running.get(key) is proc:
            del self.running[key]
        proc.on_exit(proc, outcome)
        if self.background_cpu > 0.0 and not proc.one_shot:
            # (the rest of) other processes' share of this try, which nobody waits for (a pod's
            # host goes with the pod)
            self._background(proc.host).burn(self.background_cpu)

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
            later(self.env, self.heartbeat_interval, self._heartbeats)
        else:
            self._beating = False

    def any_alive(self) -> bool:
        """Is some task process still running? (Processes killed with their worker are dropped.)
        The oldest process answers at once when it is alive (an idle scheduler loop asks, so no
        scan per loop); the dead are dropped once they come first."""
        for proc in self.live:
            if proc.alive:
                return True
            break
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
        later(self.env, self.job_heartbeat, kill)
