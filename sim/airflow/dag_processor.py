"""The DAG processor: Airflow 2's DagFileProcessorManager, or the standalone ``airflow
dag-processor`` (``[scheduler] standalone_dag_processor``, 2.3+; always separate in Airflow 3).

Every DAG file is re-parsed at most every ``min_file_process_interval`` by ``parsing_processes``
processes, and each parse writes the serialized DAG to the metadata DB (one query per file).
Parsing is CPU work on the processor's host: inside the scheduler (Airflow 2's default: a child of
each scheduler process, on its host) it competes with the scheduler loop and the LocalExecutor's
tasks for those cores; standalone it has a host of its own. Files are the scenario's DAGs (parsed
in ``dag_file_parse_time``, or the DAG's own ``parse_time``) plus ``overheads.extra_dag_files``
other files of the DAGs folder that never run; they are dealt round-robin to the processes.
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
        times = [plan.parse_time for plan in sim.plans]
        times += [sim.overheads.dag_file_parse_time] * sim.overheads.extra_dag_files
        for i, t in enumerate(times):
            self.shares[i % n] += t
        self.files = len(times)
        self.cycles = 0
        self.cpu_seconds = 0.0

    def start(self) -> None:
        if sum(self.shares) > 0.0 and self.interval > 0.0:
            self.env.process(self._loop())

    def _loop(self):
        env = self.env
        finished = self.sim.finished
        db = self.sim.db
        while not finished.triggered:
            start = env.now
            jobs = [self.host.work(share) for share in self.shares if share > 0.0]
            yield env.all_of(jobs)
            self.cpu_seconds += sum(self.shares)      # counted with the cycle, once it is done
            wait = db.book(self.files)             # write each serialized DAG
            if wait > 0.0:
                yield env.timeout(wait)
            self.cycles += 1
            # A file is not parsed again before min_file_process_interval has passed.
            rest = self.interval - (env.now - start)
            if rest > 0.0:
                yield env.timeout(rest)
