"""LocalExecutor (airflow-mechanics.md §2.2): ``parallelism`` worker processes on the scheduler's
own host. Each runs ``airflow tasks run`` for the task it is handed (fork, or a fresh interpreter
with ``execute_tasks_new_python_interpreter``), so task start-up and CPU-bound task work compete
with the scheduler for the host's cores. Results come back through a result queue that ``sync``
reads once per scheduler loop.
"""
from __future__ import annotations

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

    def trigger_tasks(self, tis: list) -> float:
        runner = self.sim.task_runner
        for ti in tis:
            if self._free_workers:
                worker = self._free_workers.pop()
            else:
                worker = f"{self.host.name}/worker-{self._named}"
                self._named += 1
            runner.start(ti, self.host, worker, self._on_process_exit)
        return 0.0  # putting a workload on a multiprocessing queue is negligible

    def _on_process_exit(self, proc, state) -> None:
        self._free_workers.append(proc.worker)
        self._result_queue.append((proc.ti, proc.try_number, state))
        self.sim.scheduler.ring()

    def sync(self) -> float:
        if self._result_queue:
            results, self._result_queue = self._result_queue, []
            for ti, try_number, state in results:
                self.change_state(ti, try_number, state)
        return 0.0
