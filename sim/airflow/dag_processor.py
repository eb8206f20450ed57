"""The DAG processor: Airflow 2's DagFileProcessorManager, a child of the scheduler on its host.

Every DAG file is re-parsed at most every ``min_file_process_interval`` by ``parsing_processes``
processes. Parsing is CPU work on the scheduler's host, so a big DAGs folder slows the scheduler
loop and the LocalExecutor's tasks that share those cores. One file per DAG, parsed in
``dag_file_parse_time`` (or the DAG's own ``parse_time``); files are dealt round-robin to the
processes. A later issue adds the standalone DAG processor and Airflow 3's separate component.
"""
from __future__ import annotations


class DagProcessor:
    def __init__(self, sim, host):
        self.sim = sim
        self.env = sim.env
        self.host = host
        self.interval = sim.airflow.min_file_process_interval
        n = max(1, sim.airflow.parsing_processes)
        self.shares = [0.0] * n
        for i, plan in enumerate(sim.plans):
            self.shares[i % n] += plan.parse_time
        self.cycles = 0
        self.cpu_seconds = 0.0

    def start(self) -> None:
        if sum(self.shares) > 0.0 and self.interval > 0.0:
            self.env.process(self._loop())

    def _loop(self):
        env = self.env
        finished = self.sim.scheduler.finished
        while not finished.triggered:
            start = env.now
            jobs = [self.host.work(share) for share in self.shares if share > 0.0]
            self.cpu_seconds += sum(self.shares)
            yield env.all_of(jobs)
            self.cycles += 1
            # A file is not parsed again before min_file_process_interval has passed.
            rest = self.interval - (env.now - start)
            if rest > 0.0:
                yield env.timeout(rest)
