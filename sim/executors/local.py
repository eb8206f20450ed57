"""LocalExecutor (airflow-mechanics.md §2.2): ``parallelism`` worker processes on the scheduler's
own host. Each runs ``airflow tasks run`` for the task it is handed (fork, or a fresh interpreter
with ``execute_tasks_new_python_interpreter``), so task start-up and CPU-bound task work compete
with the scheduler for the host's cores. Results come back through a result queue that ``sync``
reads once per scheduler loop.

Airflow 3 counts differently. Its LocalExecutor puts each workload on the workers' queue and never
adds it to ``running`` (Airflow 3.3.2 ``executors/local_executor.py`` ``_process_workloads`` and
``base_executor.py`` ``trigger_tasks``; measured: 24 of a fan-out's tasks queued at once at
parallelism 8, data/airflow-runs/af3). So its open slots are ``parallelism`` minus the workloads
not yet handed over: the scheduler keeps queueing, within pools and ``max_active_tasks``, and the
``parallelism`` worker processes take the next workload from the queue as soon as they finish,
without a round trip through the scheduler. ``queued -> started`` then includes the wait for a
worker.
"""
from __future__ import annotations

from collections import deque

from .base import BaseExecutor


class LocalExecutor(BaseExecutor):
    name = "LocalExecutor"

    def __init__(self, sim, parallelism: int, host):
        super().__init__(sim, parallelism)
        self.host = host
        # QueuedLocalWorker processes, pre-spawned at start (parallelism > 0, LEdoc). Named when
        # first used (worker-0, worker-1, ...), not all at once: parallelism may be 100,000.
        self._free_workers: list[str] = []
        self._named = 0
        self._result_queue: list = []
        #: Airflow 3's accounting (module docstring): handed-over workloads hold no slot and wait
        #: in the workers' queue for one of the `parallelism` workers.
        self.workers_queue = str(sim.airflow.airflow_version).split(".")[0] >= "3"
        self._activity: deque = deque()
        self._busy = 0

    # -- Airflow 3: slots count only what is not handed over yet -----------------------------------
    def _open_slots(self) -> int:
        return self.parallelism if self.workers_queue else self.parallelism - len(self.running)

    @property
    def slots_occupied(self) -> int:
        return len(self.queued_tasks) if self.workers_queue else len(self.running) + len(self.queued_tasks)

    def trigger_tasks(self, tis: list) -> float:
        if self.workers_queue:
            now = self.env.now
            for ti in tis:
                self.running.pop((ti, ti.try_number), None)      # never in `running` (docstring)
                self.sim.state.slot_freed(ti, ti.try_number, now)  # its slot is free once handed over
            self._activity.extend((ti, ti.try_number) for ti in tis)
            self._feed()
            return 0.0
        runner = self.sim.task_runner
        for ti in tis:
            runner.start(ti, self.host, self._worker(), self._on_process_exit)
        return 0.0  # putting a workload on a multiprocessing queue is negligible

    def _worker(self) -> str:
        if self._free_workers:
            return self._free_workers.pop()
        worker = f"{self.host.name}/worker-{self._named}"
        self._named += 1
        return worker

    def _feed(self) -> None:
        """Airflow 3: free workers take workloads from the queue, in order."""
        runner = self.sim.task_runner
        while self._activity and self._busy < self.parallelism:
            ti, try_number = self._activity.popleft()
            self._busy += 1
            runner.start(ti, self.host, self._worker(), self._on_process_exit, try_number=try_number)

    def _on_process_exit(self, proc, state) -> None:
        self._free_workers.append(proc.worker)
        self._result_queue.append((proc.ti, proc.try_number, state))
        if self.workers_queue:
            self._busy -= 1
            self._feed()
        self.sim.state.changed()

    def change_state(self, ti, try_number: int, state) -> None:
        if self.workers_queue:                   # the slot was freed at the hand-over
            self.event_buffer.append((ti, try_number, state))
            return
        super().change_state(ti, try_number, state)

    def sync(self) -> float:
        if self._result_queue:
            results, self._result_queue = self._result_queue, []
            for ti, try_number, state in results:
                self.change_state(ti, try_number, state)
        return 0.0


def build_local(sim, settings: dict) -> LocalExecutor:
    """The LocalExecutor of a scenario: the scheduler host's worker processes."""
    return LocalExecutor(sim, sim.executor_parallelism, sim.scheduler_host)
