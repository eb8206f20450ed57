"""The scheduler loop, as ``SchedulerJobRunner._run_scheduler_loop`` runs it (airflow-mechanics.md §1.1).

One loop:
  A. ``_do_scheduling``: create DAG runs for due DAGs (at most ``max_dagruns_to_create_per_loop``),
     start queued runs within ``max_active_runs``, examine up to ``max_dagruns_per_loop_to_schedule``
     running runs (never-examined first, then the longest unexamined) to schedule the task instances
     whose dependencies are met and to finish runs, then the critical section queues scheduled task
     instances to their executor within parallelism, pools and the other limits;
  B. the executor heartbeat (launch queued work, ``sync`` finished work), then processing of the
     executor events.
Each part costs scheduler time: CPU on the scheduler's host (a base per loop plus a cost per task
instance touched) and metadata-DB queries. The examination's cost comes before the critical
section, which stamps QUEUED after it (as ``queued_dttm`` is), then its own cost before the
heartbeat. The loop sleeps ``scheduler_idle_sleep_time`` only when it queued nothing and
processed no event.

Idle loops are not simulated one by one: while nothing can change, an idle loop is identical to the
one before, so the scheduler waits for a *ring* (a task finished, a run is due, a retry is due) and
then resumes on the grid of loop start times it would have followed. This keeps long quiet periods
cheap without moving any loop in time.
"""
from __future__ import annotations

import math
from collections import deque

from ..engine import Loop, later
from ..model.rng import stream
from ..model.runtime import DagRun, TaskInstance, draw_deferral, draw_sensor, draw_tries
from ..model.state_core import failure_outcome
from ..model.states import (DEFERRED, DR_RUNNING, FAILED, NONE, QUEUED, REMOVED, SCHEDULED, SKIPPED, SUCCESS,
                            UP_FOR_RESCHEDULE, UP_FOR_RETRY, UPSTREAM_FAILED)
from ..model.stimuli import (CRITICAL_SECTION, DEPENDENCIES_MET, EXECUTOR_KILLED, MAPPED_EXPANSION, MINI_SCHEDULER,
                             RESCHEDULE_POKE, RETRY_DELAY_PASSED, TRIGGER_FIRED, TRIGGER_RULE, Stimulus)
from ..model.trigger_rules import READY
from . import idle_loops
from .critical_section import ScheduledTIs, executable_task_instances
from .dagrun_creation import RunCreation
from .lost_tasks import LostTasks

#: Where a scheduler woken in the middle of an idle loop resumes it (Scheduler._wake_delay).
AT_START, AT_CRITICAL_SECTION, AT_HEARTBEAT = 0, 1, 2


class SchedulerProcess:
    """One ``airflow scheduler`` process: its host, its executors (each scheduler has its own) and
    the timing of its loop. Several of them share everything else (the metadata DB)."""

    __slots__ = ("index", "name", "host", "executors", "parallelism", "rung", "loop", "doorbell", "idle_end",
                 "idle_sleep", "idle_cost", "idle_phase_x", "idle_phase_a", "idle_cpu", "resume", "skipped", "timers",
                 "idle_timed",
                 "quiet", "loops", "critical_section_busy", "cpu_seconds", "shared", "occupied")

    def __init__(self, index: int, host, executors: dict, parallelism: int, shared: bool = False):
        self.index = index
        self.name = host.name
        self.host = host
        self.executors = executors
        self.parallelism = parallelism          # the slots this scheduler's executors have
        #: Its executors' infrastructure is shared with the other schedulers' (Celery, Kubernetes):
        #: modelled as one executor; this scheduler counts the slots of the tries it queued.
        self.shared = shared
        self.occupied = 0
        self.rung = False
        self.loop = None                        # its loop (engine.Loop), once started
        self.doorbell = None                    # the loop, while it waits for a ring
        self.idle_end = self.idle_sleep = self.idle_cost = self.idle_phase_x = self.idle_phase_a = 0.0
        self.idle_cpu = 0.0
        self.timers = None                      # the loop's timers (idle_loops.LoopTimers), if modelled
        self.idle_timed = False                 # the idle stretch's loops follow the timers
        self.resume = AT_START                  # where a woken idle loop resumes (see _wake_delay)
        self.skipped = 0
        self.quiet = True
        self.loops = 0
        self.critical_section_busy = 0          # loops that found another scheduler in it
        self.cpu_seconds = 0.0


class Scheduler:
    def __init__(self, sim):
        self.sim = sim
        self.env = sim.env
        self.cfg = sim.airflow
        self.ov = sim.overheads
        self.core = core = sim.state
        self.db = sim.db
        #: The scheduler processes (airflow-mechanics.md §1.13), each with its host and executors.
        self.procs = tuple(SchedulerProcess(i, host, executors, par, shared)
                           for i, (host, executors, par, shared) in enumerate(sim.scheduler_processes))
        timer_intervals = idle_loops.intervals(self.cfg)
        if timer_intervals:
            for p in self.procs:
                p.timers = idle_loops.LoopTimers.started(timer_intervals, stream(sim.seed, f"scheduler-timers/{p.index}"))
        if any(p.shared for p in self.procs):
            core.subscribe(slot_freed=self._slot_free)
        self.all_executors = list({id(ex): ex for p in self.procs for ex in p.executors.values()}.values())
        self.default_executor = next(iter(sim.executors))
        self._cs_holder = None               # the process inside the critical section (several schedulers)
        self.executor_aliases = sim.executor_aliases
        self.plans = sim.plans
        self.conc = core.limits
        n = len(self.plans)
        self._next_idx = [0] * n
        self._active_runs = [0] * n          # queued + running, gates run creation
        self._running_runs = [0] * n         # running, gates starting queued runs
        #: the scheduled DAGs' next_dagrun pointers (one run a DAG a loop; blocked at max_active_runs)
        self.creation = RunCreation(self.cfg.max_dagruns_to_create_per_loop)
        self._queued_runs: list = []
        self._examine: deque = deque()
        self._dirty: dict = {}               # running runs with news (pending, retrying, all done), in order
        self._scheduled = ScheduledTIs(self.conc.per_run)   # the scheduled TIs, as the query reads them
        #: zombie detection and the stuck-in-queued check
        self.lost = LostTasks(self.env, self.cfg, core, sim.finished, self.all_executors, sim.task_runner.terminate,
                              self._scheduled.add, self.ring)
        core.subscribe(try_ended=self._try_ended, changed=self.ring, lost=self.lost.heartbeats_stopped,
                       resumed=self.trigger_fired)
        self._sources_left = 0
        self._triggers_pending = 0           # externally triggered sources with a timer armed
        self.starving: dict = {}             # ti -> why the last critical section passed it over
        self._unsynced: dict = {}            # deferred TI -> trigger fired, before its executor event
        self.deadlocked = False
        self._live_runs = 0
        self._uid = 0
        self._duration_rngs = [stream(sim.seed, f"durations/{p.dag_id}") for p in self.plans]
        #: Skip idle loops while nothing can change (exact up to CPU and DB contention that
        #: changes during an idle stretch); False simulates every loop, for checking that.
        self.skip_idle_loops = True
        self.skipped_loops = 0
        self.finished = sim.finished
        # statistics
        self.loops = 0
        self.busy_loops = 0
        self.cpu_seconds = 0.0
        self.db_seconds = 0.0
        self.runs_created = 0

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        horizon = self.sim.horizon
        for plan in self.plans:
            sched = plan.dag.schedule
            if sched is None:
                continue
            times = sched.times(horizon, stream(self.sim.seed, f"arrivals/{plan.dag_id}"))
            self._sources_left += 1
            if sched.scheduled:
                due = self.creation.add(plan.index, times, plan.max_active_runs)
                if due is None:
                    self._sources_left -= 1
                else:
                    self._ring_at(due)
            else:
                self._triggers_pending += 1
                self._arm_trigger(plan, times)
        for proc in self.procs:
            proc.loop = Loop(self.env, self._loop(proc))
        self.lost.start()
        if self._done():
            self.finished.succeed()

    def ring(self) -> None:
        """Something changed that a scheduler loop would act on."""
        for proc in self.procs:
            proc.rung = True
            bell = proc.doorbell
            if bell is not None:
                proc.doorbell = None
                bell.sleep(self._wake_delay(proc, self.env.now))

    @staticmethod
    def _wake_delay(proc, now: float) -> float:
        """Where the idle scheduler would be when something changes at ``now``.

        Idle loops start at ``first + k * period``; each examines the DAG runs for ``phase_x``
        seconds, then runs the critical section, then (``phase_a`` seconds after its start) the
        executor heartbeat. A change at ``now`` is first seen by the critical section of the loop
        running then if that loop is still examining (the examination saw nothing new, so it need
        not be simulated: a task instance scheduled meanwhile, by a mini-scheduler, is queued by
        this loop's critical section), else by its heartbeat if it has not reached it yet, else
        by the next loop. Under
        the loop's timers the starts come from :func:`idle_loops.locate`, which also says when the
        timers are next due: as before the loop resumed (it runs to its end) or after it (skipped)."""
        proc.resume = AT_START
        proc.skipped = 0
        if proc.idle_timed:
            k, loop_start, nxt, due_before, due_after = idle_loops.locate(
                proc.timers, proc.idle_end, proc.idle_sleep, proc.idle_cost, now)
            if k < 0:
                return max(0.0, loop_start - now)
            if now - loop_start <= proc.idle_phase_a:
                proc.timers.set(due_before)
            else:
                proc.timers.set(due_after)
        else:
            first = proc.idle_end + proc.idle_sleep
            period = proc.idle_sleep + proc.idle_cost
            if now <= first or period <= 0.0:
                return max(0.0, first - now)
            k = math.floor((now - first) / period)
            loop_start = first + k * period
            nxt = loop_start + period
        proc.skipped = k
        if now - loop_start <= 1e-12:
            return 0.0
        if now - loop_start <= proc.idle_phase_x:
            proc.resume = AT_CRITICAL_SECTION
            return loop_start + proc.idle_phase_x - now
        if now - loop_start <= proc.idle_phase_a:
            proc.resume = AT_HEARTBEAT
            return loop_start + proc.idle_phase_a - now
        proc.skipped = k + 1
        return nxt - now

    def _ring_at(self, t: float) -> None:
        delay = t - self.env.now
        if delay > 0.0:
            later(self.env, delay, lambda _e: self.ring())
        else:
            self.ring()

    # -- DAG runs -------------------------------------------------------------------------------

    def _arm_trigger(self, plan, times) -> None:
        """Externally triggered runs (API / Poisson / burst) are created at their time, queued."""
        due = next(times, None)
        if due is None:
            self._sources_left -= 1
            self._triggers_pending -= 1
            return
        delay = due - self.env.now
        later(self.env, delay if delay > 0 else 0.0, lambda _e: self._trigger(plan, times, due))

    def _trigger(self, plan, times, due) -> None:
        self._new_run(plan, due)
        nxt = next(times, None)
        while nxt is not None and nxt <= self.env.now:   # a burst: all at once
            self._new_run(plan, nxt)
            nxt = next(times, None)
        if nxt is None:
            self._sources_left -= 1
            self._triggers_pending -= 1
        else:
            delay = nxt - self.env.now
            later(self.env, delay, lambda _e: self._trigger(plan, times, nxt))
        self.ring()

    def _new_run(self, plan, due: float) -> DagRun:
        i = plan.index
        run = DagRun(plan, self._next_idx[i], due, self.env.now)
        self._next_idx[i] += 1
        self._active_runs[i] += 1
        self._live_runs += 1
        self.runs_created += 1
        self._queued_runs.append(run)
        return run

    def _create_dagruns(self, now: float) -> int:
        """``_create_dag_runs`` (:mod:`sim.airflow.dagrun_creation`): one run a due DAG, at most
        ``max_dagruns_to_create_per_loop`` DAGs; a later loop sees where each pointer moved."""
        made, last, wake = self.creation.create(now, self._active_runs,
                                                lambda i, due: self._new_run(self.plans[i], due))
        self._sources_left -= len(last)
        for due in wake:
            self._ring_at(due)
        return made

    def _start_queued_dagruns(self, now: float) -> int:
        limit = self.cfg.max_dagruns_per_loop_to_schedule or math.inf
        started = 0
        keep = []
        for run in self._queued_runs:
            i = run.plan.index
            if started < limit and self._running_runs[i] < run.plan.max_active_runs:
                self._running_runs[i] += 1
                self.core.start_run(run, now)
                self._uid = run.create_task_instances(self._uid, self._duration_rngs[i])
                run.mark_roots_ready()
                self.core.run_tis_created(run.n_schedulable)
                self._dirty[run] = None
                self._examine.appendleft(run)   # never examined: first in line
                started += 1
            else:
                keep.append(run)
        if started:
            self._queued_runs = keep
        return started

    def _finish_run(self, run: DagRun, now: float) -> None:
        self.core.end_run(run, now)
        i = run.plan.index
        self._running_runs[i] -= 1
        self._active_runs[i] -= 1
        self._live_runs -= 1
        due = self.creation.run_ended(i, run.idx, self._active_runs[i])   # next_dagrun moves back
        if due is not None:
            self._ring_at(due)
        run.release()

    # -- task instances -------------------------------------------------------------------------
    def _expand(self, ti, now: float) -> list:
        """Dynamic task mapping: the placeholder of a mapped task becomes ``map_count`` task
        instances (map_index 0..n-1) once its upstream tasks are done (airflow-mechanics.md §1.12).
        A length over max_map_length fails the expansion, as Airflow fails the task that pushed
        it; a length of 0 skips the task."""
        run, core = ti.run, self.core
        n = run.map_counts[ti.ti_index]
        j = ti.ti_index
        limit = self.cfg.max_map_length
        if n > limit or n == 0:
            state = UPSTREAM_FAILED if n > limit else SKIPPED
            why = f"expand: {n} elements exceed max_map_length {limit}" if n > limit else "expand: zero elements"
            ti.ended_at = now
            core.end_try(ti, state, now, MAPPED_EXPANSION, why)
            return []
        ti.map_index = 0
        ti.sort_key = ti.sort_key[:3] + (0,) + ti.sort_key[4:]
        out = [ti]
        plan = run.plan
        if n > 1:
            # each element's durations from a stream of its own: the same whatever the executor
            rng = stream(self.sim.seed, f"map/{plan.dag_id}/{run.idx}/{ti.task.task_id}")
            if run.n_up is None:
                run.n_up = list(plan.n_upstream)
            for d in plan.downstream[j]:
                run.n_up[d] += n - 1
            run.n_unfinished += n - 1
            run.n_schedulable += n - 1
            core.run_tis_created(n - 1)
            for k in range(1, n):
                extra = TaskInstance(self._uid, run, j, ti.task, ti.priority)
                self._uid += 1
                extra.map_index = k
                extra.sort_key = ti.sort_key[:3] + (k,) + ti.sort_key[4:]
                extra.durations = draw_tries(ti.task.duration.sample, rng, ti.task.retries + 1)
                extra.failure_draws = ti.failure_draws
                if ti.task.sensor is not None:
                    run.sensor_state[extra] = draw_sensor(ti.task, rng)
                if ti.task.deferrable is not None:
                    run.defer_state[extra] = draw_deferral(ti.task, rng)
                extra.ready_at = ti.ready_at
                out.append(extra)
        run.mapped[j] = out
        return out

    def _schedule(self, ti, now: float, stimulus: Stimulus, cause: str) -> None:
        if ti.map_index < 0 and ti.task.expand is not None:
            for mapped in self._expand(ti, now):
                self._schedule(mapped, now, stimulus, cause)
            return
        self.core.transition(ti, SCHEDULED, now, stimulus, cause)
        ti.try_number += 1
        ti.scheduled_at = now
        ti.executor = self.executor_aliases[ti.task.executor] if ti.task.executor else self.default_executor
        ti.decision = None
        self._scheduled.add(ti)

    def _examine_run(self, run: DagRun, now: float) -> bool:
        """Schedule what is ready, apply trigger-rule verdicts, finish the run when all is done.
        Returns whether anything changed."""
        changed = bool(run.pending)
        if not run.retrying:
            self._dirty.pop(run, None)             # done with its news (a retry keeps it in)
        if run.retrying:
            due = [ti for ti in run.retrying if ti.next_retry_at <= now]
            if due:
                changed = True
                run.retrying = [ti for ti in run.retrying if ti.next_retry_at > now]
                for ti in due:
                    ti.reset_try_times()
                    ti.ready_at = ti.next_retry_at
                    if ti.state is UP_FOR_RESCHEDULE:   # a sensor's next poke: the same try
                        ti.try_number -= 1
                        self._schedule(ti, now, RESCHEDULE_POKE, "sensor rescheduled: poke interval passed")
                    else:
                        if ti in run.sensor_state:        # a new try starts its sensor afresh
                            run.sensor_state[ti].first_poke = math.nan
                        if ti in run.defer_state:         # and a deferrable task from execute()
                            run.defer_state[ti].resumed = False
                        self._schedule(ti, now, RETRY_DELAY_PASSED, "retry delay passed")
        core = self.core
        while run.pending:
            pending, run.pending = run.pending, []
            for ti in pending:
                if ti.state is not NONE:
                    continue                 # the mini-scheduler got there first
                if ti.decision is READY:
                    self._schedule(ti, now, DEPENDENCIES_MET, "dependencies met")
                else:
                    ti.scheduled_at = math.nan
                    ti.ended_at = now
                    core.end_try(ti, ti.decision, now, TRIGGER_RULE, f"trigger rule {ti.task.trigger_rule}")
        if run.n_unfinished == 0:
            self._finish_run(run, now)
            self._dirty.pop(run, None)
            changed = True
        return changed

    def _try_ended(self, ti, outcome) -> None:
        """A try's end is in the DB: retry it when due, hand a deferral to the triggerer, or
        count a final state into the run."""
        if outcome is UP_FOR_RETRY or outcome is UP_FOR_RESCHEDULE:
            self.retry_at(ti)
        elif outcome is DEFERRED:
            self.deferred(ti)
        else:
            self.ti_finished(ti, outcome, ti.ended_at)

    def ti_finished(self, ti, state, at: float) -> None:
        """A task instance reached a final state in the DB: count it into its downstream."""
        run = ti.run
        run.n_unfinished -= 1
        run.upstream_finished(ti, state, at)
        self._dirty[run] = None

    def retry_at(self, ti) -> None:
        ti.run.retrying.append(ti)
        self._dirty[ti.run] = None
        self._ring_at(ti.next_retry_at)

    def mini_schedule(self, ti) -> None:
        """Airflow 2's mini-scheduler, run by a task that just succeeded: schedule the direct
        downstream task instances of its run whose dependencies are now met."""
        run = ti.run
        if run.state is not DR_RUNNING:
            return
        now = self.env.now
        for j in run.plan.downstream[ti.ti_index]:
            d = run.tis[j]
            if d.state is NONE and d.decision is READY:
                self._schedule(d, now, MINI_SCHEDULER, "mini-scheduler")
        self.ring()

    @staticmethod
    def _slot_free(ti, _try_number=None, _at=None) -> None:
        """An executor slot freed: it no longer counts against the scheduler that queued the try."""
        proc = ti.queued_by
        if proc is not None:
            proc.occupied -= 1
            ti.queued_by = None

    # -- deferred tasks (airflow-mechanics.md §1.11) -------------------------------------------
    def deferred(self, ti) -> None:
        """The task's process wrote ``deferred`` and its trigger: the triggerer takes over. The
        executor still counts the process until its heartbeat syncs the exit."""
        ti.run.defer_state[ti].resumed = True
        self._unsynced[ti] = False
        self.sim.triggerer.defer(ti, self.env.now)

    def trigger_fired(self, ti) -> None:
        """Trigger.submit_event: back to ``scheduled`` (same try), to resume on a worker. It is
        queued again only once its executor has reported the first half's exit: the executor
        knows a task by (task instance, try), and both halves share the try."""
        now = self.env.now
        ti.reset_try_times()
        ti.ready_at = ti.scheduled_at = now
        ti.decision = None
        self.core.transition(ti, SCHEDULED, now, TRIGGER_FIRED, "trigger fired: resume on a worker")
        if ti in self._unsynced:
            self._unsynced[ti] = True
        else:
            self._scheduled.add(ti)
        self.ring()

    # -- the loop -------------------------------------------------------------------------------
    def _examine_runs(self, proc, now: float) -> tuple[float, int]:
        """Part A up to the critical section: create and start DAG runs, examine running runs.
        Returns (CPU seconds, DB queries)."""
        cfg = self.cfg
        queries = 0
        created = self._create_dagruns(now) if self.creation.due(now) else 0
        started = self._start_queued_dagruns(now) if self._queued_runs else 0
        if created or started:
            queries += 1 + created
        touched = 0
        dq = self._examine
        n = min(cfg.max_dagruns_per_loop_to_schedule or len(dq), len(dq))
        if n:
            queries += 1 + n                     # select runs to examine, then each run's TIs
        changed = bool(created or started)
        if n == len(dq):
            # Every running run is examined this loop: the cost is the sum over all of them,
            # and only runs with news need the work (the same outcome, without the rotation).
            touched = self.core.schedulable_total
            if self._dirty:
                for run in list(self._dirty):
                    if run.locked:
                        continue         # a mini-scheduler holds its row (skip_locked): next loop
                    changed |= self._examine_run(run, now)
                    if run.state is not DR_RUNNING:
                        dq.remove(run)
        else:
            popleft, append = dq.popleft, dq.append
            for _ in range(n):
                run = popleft()
                touched += run.n_schedulable
                if (run.pending or run.retrying or not run.n_unfinished) and not run.locked:   # else nothing can change
                    changed |= self._examine_run(run, now)
                    if run.state is not DR_RUNNING:
                        continue
                append(run)
        # A loop that changed nothing can be repeated identically; one that did (runs created,
        # started, examined with news) costs differently from the idle loops after it.
        proc.quiet = not changed
        ov = self.ov
        return ov.scheduler_per_run * n + ov.scheduler_per_ti_examined * touched, queries

    @staticmethod
    def _open_slots(proc) -> int:
        if proc.shared:
            return proc.parallelism - proc.occupied
        occupied = 0
        for ex in proc.executors.values():
            occupied += ex.slots_occupied
        return proc.parallelism - occupied

    def _critical_section(self, proc, now: float, before: int = 2) -> tuple[float, int, int]:
        """``_critical_section_enqueue_task_instances`` (§1.2) for this process's executors,
        deciding and stamping QUEUED at ``now``. Returns (CPU seconds, DB queries, task instances
        queued). The queries: ``before`` for the pool rows' lock and the SELECT (when slots are
        open; 0 when the caller booked them), and the UPDATE to QUEUED only when it queued any
        (``_executable_task_instances_to_queued`` returns before it when nothing is executable)."""
        if not before and not self._scheduled:
            return 0.0, 0, 0                     # (the caller booked the lock and the SELECT)
        cfg = self.cfg
        executors = proc.executors
        open_slots = self._open_slots(proc)
        if open_slots <= 0:
            return 0.0, 0, 0
        queued = 0
        if self._scheduled:
            max_tis = open_slots if cfg.max_tis_per_query == 0 else min(cfg.max_tis_per_query, open_slots)
            executor_open = {name: ex.slots_available for name, ex in executors.items()}
            accepted, self.starving = executable_task_instances(self._scheduled, max_tis, self.conc,
                                                                executor_open)
            if accepted:
                transition = self.core.transition
                for ti in accepted:
                    transition(ti, QUEUED, now, CRITICAL_SECTION, "critical section")
                    ti.queued_at = now
                    executors[ti.executor].queue_workload(ti)
                queued = len(accepted)
                if proc.shared:
                    for ti in accepted:
                        ti.queued_by = proc
                    proc.occupied += queued
        return self.ov.scheduler_per_ti * queued, before + (1 if queued else 0), queued

    def _process_executor_events(self, proc):
        """Part B, second half, and part C: ``_process_executor_events``, then its cost (one
        query, CPU per event) and the rest of the loop's. Returns (events, whether the loop waits
        for that cost: its wake-up is arranged).

        The two parts' CPU is one job on the host: nothing is decided between them, and under
        processor sharing a job of ``a`` then one of ``b`` seconds ends when one of ``a + b``
        would (the host's load is the same throughout), so the loop ends at the same time with
        one wake-up fewer."""
        now = self.env.now
        n = 0
        unsynced = self._unsynced
        for ex in proc.executors.values():
            if not ex.event_buffer:
                continue
            for ti, try_number, state in ex.get_event_buffer():
                n += 1
                if state is QUEUED:
                    continue                     # Celery's task id: external_executor_id, no state change
                if unsynced and ti in unsynced:
                    # the first half of a deferred task has exited; resume it if its trigger fired
                    if unsynced.pop(ti):
                        self._scheduled.add(ti)
                    continue
                if ti.try_number == try_number and ti.state is QUEUED:
                    # The executor says the task ended but it never even started: Airflow 2
                    # treats it as "killed externally" and fails the try. (A running try is left
                    # to zombie detection in 2.x; Airflow 3 fails it here too, PR #64052.)
                    ti.ended_at = now
                    said = state.value if state is not None else "success"
                    self.core.end_try(ti, failure_outcome(ti), now, EXECUTOR_KILLED,
                                      f"executor reported {said}: killed externally")
        base = self._rest_of_loop(proc)
        if n:
            per_ti = self.ov.scheduler_per_ti
            wait = self.db.book(1)
            if per_ti > 0.0 or wait > 0.0:
                self.db_seconds += wait
                self.cpu_seconds += per_ti * n
                return n, proc.host.work_for(proc.loop, per_ti * n + base, after=wait)
        if base > 0.0:
            return n, proc.host.work_for(proc.loop, base)
        return n, False

    def _loop(self, proc):
        """One scheduler process's loop: part A (scheduling), part B (heartbeat and events),
        part C (the rest), then an idle sleep or a skip over identical idle loops. Each part is
        a method that does its work and accounting and returns what to wait for; this only
        waits (each part arranges its wake-up through ``proc.loop``, then the loop yields; one
        wake-up a part, no nested generators on the hot path)."""
        several = len(self.procs) > 1
        if several:
            # Another scheduler's idle loops take the critical section and DB connections at
            # moments of their own: skipping them would not be exact, so every loop is simulated.
            self.skip_idle_loops = False
        resume = AT_START
        last = None                  # (cpu, queries, phase_x, phase_a, the examination's queries) of part A
        while True:
            if resume == AT_HEARTBEAT:
                # Resumed in the middle of an idle loop (see _wake_delay): its part A found
                # nothing; the change that woke us is seen from the heartbeat on.
                start = self.env.now - proc.idle_phase_a
                queued = 0
                self.cpu_seconds += proc.idle_cpu
            else:
                if resume == AT_CRITICAL_SECTION:
                    # Resumed in an idle loop's examination (see _wake_delay): it found nothing;
                    # the change that woke us is seen from the critical section on.
                    start = self.env.now - proc.idle_phase_x
                    cpu, queries = proc.idle_cpu, last[4]    # (an idle critical section has no CPU)
                    self.cpu_seconds += cpu
                    phase_x = proc.idle_phase_x
                else:
                    proc.rung = False
                    start = self.env.now
                    if several:
                        cpu, queries, queued = yield from self._scheduling_part_shared(proc, start)
                    else:
                        cpu, queries, waits = self._examination_part(proc, start)
                        if waits:
                            yield
                    phase_x = self.env.now - start
                x_queries = queries
                if not several:
                    # The critical section: QUEUED is stamped now, after the examination's cost
                    # (Airflow's _do_scheduling), and its own cost comes before the heartbeat.
                    cs_cpu, cs_queries, queued, waits = self._critical_section_part(proc)
                    if waits:
                        yield
                    cpu += cs_cpu
                    queries += cs_queries
                last = (cpu, queries, phase_x, self.env.now - start, x_queries)
            resume = AT_START
            if self._heartbeat(proc):
                yield
            events, waits = self._process_executor_events(proc)     # and part C's cost
            if waits:
                yield
            self.loops += 1
            if proc.timers is not None:
                proc.timers.run(self.env.now)    # timers.run(blocking=False), at the loop's end
            if self._sources_left == 0 and self._live_runs == 0:      # _done(), inline
                self._finish()
                return
            if queued or events:
                self.busy_loops += 1
            if queued:
                # Only a loop that queued skips the idle sleep: _process_executor_events returns
                # len(event_buffer) after popping every event it processed, so a loop that only
                # processed events counts as idle and sleeps (2.10.5 and 3.3.2 alike; measured
                # in the scheduler logs: tests/test_fidelity_mechanisms.py).
                continue
            if events:
                proc.rung = True         # slots were freed: the next loop is not a repeat of this one
            outcome = yield from self._idle(proc, start, *last[:4])
            if outcome is None:
                return
            resume = outcome

    # -- the loop's parts -------------------------------------------------------------------------
    def _examination_part(self, proc, start: float):
        """Part A up to the critical section's decision, with one scheduler: the DAG runs are
        examined at the loop's start (``_schedule_all_dag_runs``), and when slots are open the
        critical section locks the pool rows and selects the scheduled task instances
        (``Pool.slots_stats(lock_rows=True)``, the SELECT ... FOR UPDATE); then their cost, DB
        queries and CPU on the host. The lock's two queries are booked with the examination's,
        before its CPU: the same time before the decision on an unshared host and one wait fewer
        per loop (Airflow runs them after it; on a shared host the CPU's share is taken a few ms
        sooner). Returns (CPU seconds, DB queries, whether the loop waits for that cost)."""
        cpu, queries = self._examine_runs(proc, start)
        if self._open_slots(proc) > 0:
            queries += 2
        self.cpu_seconds += cpu
        return cpu, queries, self._pay(proc, cpu, queries)

    def _critical_section_part(self, proc):
        """The rest of part A with one scheduler (``_critical_section_enqueue_task_instances``):
        decided and stamped now, after the examination's cost and the critical section's first
        two queries (``queued_dttm`` is set by the UPDATE that follows them), then the UPDATE and
        the CPU of queueing to the executor before the heartbeat (neither when nothing is
        queued). Returns (CPU seconds, DB queries, task instances queued, whether the loop waits
        for that cost)."""
        cpu, queries, queued = self._critical_section(proc, self.env.now, before=0)
        self.cpu_seconds += cpu
        return cpu, queries, queued, self._pay(proc, cpu, queries)

    def _pay(self, proc, cpu: float, queries: int) -> bool:
        """A part's cost: ``queries`` on the metadata DB, then ``cpu`` seconds on the scheduler's
        host. Arranges the loop's wake-up when either takes time; returns whether the loop must
        yield for it (not when nothing else was due before its end: engine.go_on)."""
        wait = self.db.book(queries) if queries else 0.0
        if cpu > 0.0 or wait > 0.0:
            self.db_seconds += wait
            return proc.host.work_for(proc.loop, cpu, after=wait)
        return False

    def _scheduling_part_shared(self, proc, start: float):
        """Part A with several schedulers: the critical section comes after the examination, and
        only one scheduler can hold it; the others skip it this loop (§1.13)."""
        cpu, queries = self._examine_runs(proc, start)
        if self._pay(proc, cpu, queries):
            yield
        queued = 0
        if self._cs_holder is None:
            self._cs_holder = proc
            cs_cpu, cs_queries, queued = self._critical_section(proc, self.env.now)
            if self._pay(proc, cs_cpu, cs_queries):
                yield
            self._cs_holder = None
            cpu += cs_cpu
            queries += cs_queries
        elif self._scheduled:
            proc.critical_section_busy += 1
            proc.quiet = False                   # work was left: this loop cannot repeat as is
        self.cpu_seconds += cpu
        proc.cpu_seconds += cpu                  # (per process: the scheduling part's CPU)
        proc.loops += 1
        return cpu, queries, queued

    def _heartbeat(self, proc):
        """Part B, first half: the executors' heartbeat (launch queued work, sync). Returns
        whether the loop waits for the scheduler time it costs."""
        cost = 0.0
        for ex in proc.executors.values():
            cost += ex.heartbeat()
        if cost > 0.0:
            return proc.loop.wait(cost)
        return False

    def _rest_of_loop(self, proc) -> float:
        """Part C, after the heartbeat: the DAG processor agent's heartbeat, the scheduler job's
        heartbeat, the executors' event logs, the timers (Airflow 2.10 _run_scheduler_loop). Its
        fixed cost lengthens every loop, but does not stand between a task's queueing and its
        launch. Accounts for it and returns its CPU seconds (run after part B's, in one job)."""
        base = self.ov.scheduler_loop_base
        if base > 0.0:
            self.cpu_seconds += base
            if len(self.procs) > 1:
                proc.cpu_seconds += base
        return base

    def _idle(self, proc, start: float, cpu: float, queries: int, phase_x: float, phase_a: float):
        """A loop that queued nothing and processed no event: sleep, or (when idle loops would
        repeat identically) wait for a ring and account for the loops skipped meanwhile.
        Returns where to resume a loop (AT_START, AT_CRITICAL_SECTION, AT_HEARTBEAT), or None
        when the loop must end."""
        env = self.env
        sleep = self.cfg.scheduler_idle_sleep_time
        timers = proc.timers                        # the loop's timers cut idle sleeps (SJR)
        timed = timers is not None and sleep > 0.0
        several = len(self.procs) > 1
        # An idle loop that saw everything and changed nothing would repeat identically.
        repeatable = not proc.rung and proc.quiet
        if repeatable:
            for ex in proc.executors.values():
                if ex.has_pending_work():
                    repeatable = False
                    break
        if repeatable and self._deadlocked():
            self.deadlocked = True
            self._finish()
            return None
        if several and self.finished.triggered:
            return None                              # another scheduler found the end
        if not repeatable or not self.skip_idle_loops:
            if sleep > 0.0:
                if proc.loop.wait(timers.sleep(env.now, sleep) if timed else sleep):
                    yield
            elif repeatable and env.now == start:
                self.skip_idle_loops = True          # a zero-cost loop cannot be stepped through
            return AT_START
        # Idle and nothing pending: idle loops would now repeat identically every sleep + (loop
        # cost), cut by the timers, so wait for a ring and resume where the loops would be.
        proc.idle_end = env.now
        proc.idle_sleep = sleep
        proc.idle_cost = env.now - start
        proc.idle_phase_x = phase_x
        proc.idle_phase_a = phase_a
        proc.idle_cpu = cpu
        proc.idle_timed = timed
        proc.doorbell = proc.loop
        yield
        if several and self.finished.triggered:
            return None
        self._count_skipped_loops(proc, proc.skipped, cpu, queries)
        return proc.resume

    def _count_skipped_loops(self, proc, skipped: int, cpu: float, queries: int) -> None:
        """The idle loops skipped while waiting count as loops: their CPU as the scheduler's and
        its host's, their queries as the database's work."""
        if not skipped:
            return
        work = skipped * (cpu + self.ov.scheduler_loop_base)
        self.loops += skipped
        if len(self.procs) > 1:
            proc.loops += skipped
            proc.cpu_seconds += work
        self.skipped_loops += skipped
        self.cpu_seconds += work
        if queries:
            self.db.repeat(skipped * queries)
        proc.host.repeat(work)

    def _finish(self) -> None:
        if not self.finished.triggered:
            self.finished.succeed()

    def _done(self) -> bool:
        return self._sources_left == 0 and self._live_runs == 0

    def _deadlocked(self) -> bool:
        """Runs are alive but nothing can ever ring again: no run will be created or triggered,
        no task is with an executor, no retry is waiting. The runs left are stuck for good."""
        if self.creation.live or self._triggers_pending or self.lost.zombies_pending or not self._live_runs:
            return False
        if self.sim.task_runner.any_alive():     # a task process is still running somewhere
            return False
        if self.sim.triggerer.busy():            # a deferred task still waits for its event
            return False
        if any(ex.queued_tasks or ex.running or ex.event_buffer for ex in self.all_executors):
            return False
        return not any(run.retrying for run in self._examine)

    # -- reporting ------------------------------------------------------------------------------
    def unfinished(self) -> list[tuple]:
        """(task instance, why it is waiting) for the runs still alive: the stuck-run report."""
        out = []
        for run in self._examine:
            for ti in [*run.tis, *(m for ms in run.mapped.values() for m in ms[1:])]:
                if ti.state in (SUCCESS, FAILED, SKIPPED, UPSTREAM_FAILED, REMOVED):
                    continue
                if ti.state is SCHEDULED:
                    why = self.starving.get(ti, "not reached by the critical section")
                elif ti.state is NONE:
                    why = "waiting for upstream tasks"
                elif ti.state is DEFERRED:
                    why = "deferred: waiting for its trigger's event in the triggerer"
                else:
                    why = f"{ti.state.value} in {ti.executor}"
                out.append((ti, why))
        for run in self._queued_runs:
            out.append((None, f"DAG run {run.plan.dag_id} {run.run_id} never started "
                              f"(max_active_runs {run.plan.max_active_runs})"))
        return out

    def unfinished_runs(self) -> list:
        return list(self._examine) + self._queued_runs
