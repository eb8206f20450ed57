"""Lost tasks (airflow-mechanics.md §1.14): what the scheduler does about tries nobody reports on.

* **Zombie detection**: a running try's process died without writing its outcome (a Celery worker
  crashed, a pod was lost); its heartbeats stop, and every
  ``task_instance_heartbeat_timeout_detection_interval`` the scheduler fails (or retries) the tries
  whose last heartbeat is older than ``task_instance_heartbeat_timeout``.
* **Stuck in queued** (``_handle_tasks_stuck_in_queued``): a try queued longer than
  ``task_queued_timeout`` is revoked and re-queued, up to ``num_stuck_in_queued_retries`` times,
  then failed.

Both are parts of Airflow's scheduler job; here they are one object the scheduler owns, given
what it works with: the state core, the executors, the task runner's ``terminate``, the
scheduler's ``requeue`` (its index of scheduled task instances) and ``ring`` (wake the loop).
"""
from __future__ import annotations

import math

from ..engine import later
from ..model.state_core import failure_outcome
from ..model.states import QUEUED, RUNNING, SCHEDULED
from ..model.stimuli import STUCK_IN_QUEUED, ZOMBIE, Stimulus


class LostTasks:
    def __init__(self, env, cfg, core, finished, executors, terminate, requeue, ring):
        self.env = env
        self.cfg = cfg
        self.core = core
        self.finished = finished
        self.executors = executors
        self.terminate = terminate
        self.requeue = requeue
        self.ring = ring
        self.zombies_pending = 0             # lost running tries not yet found by zombie detection
        self._stuck_requeues: dict = {}      # ti -> times re-queued by task_queued_timeout

    def start(self) -> None:
        interval = self.cfg.task_queued_timeout_check_interval
        if interval > 0.0 and self.cfg.task_queued_timeout > 0.0:
            later(self.env, interval, self._check_stuck_in_queued)

    def heartbeats_stopped(self, ti, died_at: float, why: str) -> None:
        """A running task's process died without writing its outcome: its heartbeats stop, and
        zombie detection (every detection interval) fails the try once the last heartbeat is
        older than task_instance_heartbeat_timeout."""
        cfg = self.cfg
        step = cfg.task_instance_heartbeat_timeout_detection_interval
        due = died_at + cfg.task_instance_heartbeat_timeout
        at = math.ceil(due / step) * step if step > 0.0 else due
        try_number = ti.try_number
        self.zombies_pending += 1
        later(self.env, max(0.0, at - self.env.now), lambda _e: self._zombie(ti, try_number, why))

    def _zombie(self, ti, try_number: int, why: str) -> None:
        self.zombies_pending -= 1
        if ti.state is not RUNNING or ti.try_number != try_number:
            return
        # As in Airflow 2.10, the try fails but the executor keeps counting the slot until it
        # hears about the key (apache/airflow#43448).
        self.fail_try(ti, ZOMBIE,
                       f"zombie: no heartbeat for {self.cfg.task_instance_heartbeat_timeout:g} s ({why})")

    def fail_try(self, ti, stimulus: Stimulus, cause: str) -> None:
        now = self.env.now
        if ti.state is RUNNING:
            self.terminate(ti, ti.try_number)
        ti.ended_at = now
        self.core.end_try(ti, failure_outcome(ti), now, stimulus, cause)
        self.ring()

    def _check_stuck_in_queued(self, _e=None) -> None:
        """_handle_tasks_stuck_in_queued: a task queued longer than task_queued_timeout is
        re-queued (back to scheduled) up to num_stuck_in_queued_retries times, then failed."""
        if self.finished.triggered:
            return
        cfg = self.cfg
        now = self.env.now
        limit = now - cfg.task_queued_timeout
        for ex in self.executors:
            # Airflow selects the queued rows from task_instance: each task instance once, and
            # only its current try (the executor may still hold an older try's key, #43448).
            stuck = {ti: None for ti, t in ex.running if t == ti.try_number}
            stuck.update(dict.fromkeys(ex.queued_tasks))
            for ti in [ti for ti in stuck if ti.state is QUEUED and ti.queued_at <= limit]:
                ex.revoke(ti, ti.try_number)
                self._stuck_requeues[ti] = n = self._stuck_requeues.get(ti, 0) + 1
                if n <= cfg.num_stuck_in_queued_retries:
                    self.core.transition(ti, SCHEDULED, now, STUCK_IN_QUEUED, f"stuck in queued for over "
                                        f"{cfg.task_queued_timeout:g} s: re-queued ({n} of "
                                        f"{cfg.num_stuck_in_queued_retries})")
                    # scheduled_at stays: the wait counts as scheduled -> queued. The abandoned
                    # attempt's launch and slot release belong to no row: the try's row tells
                    # the attempt that ran.
                    ti.queued_at = ti.launched_at = math.nan
                    ti.worker = ti.host = None
                    self.core.forget_release(ti)
                    self.requeue(ti)
                else:
                    self._stuck_requeues.pop(ti, None)
                    self.fail_try(ti, STUCK_IN_QUEUED, f"stuck in queued for over {cfg.task_queued_timeout:g} s "
                                       f"after {cfg.num_stuck_in_queued_retries} re-queues")
                self.ring()
        later(self.env, cfg.task_queued_timeout_check_interval, self._check_stuck_in_queued)
