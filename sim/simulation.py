"""Wire a scenario into a running model: the SimPy environment, the metadata DB, the hosts, the
executor(s), the task runner and the scheduler; run it; hand back DataFrames and a summary."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from tqdm import tqdm

from .airflow.dag_processor import DagProcessor
from .airflow.metadata_db import MetadataDB
from .airflow.scheduler import Scheduler
from .airflow.task_runner import TaskRunner
from .airflow.triggerer import Triggerers
from .engine import Environment, later
from .executors.local import LocalExecutor
from .executors.registry import EXECUTORS
from .infra.autogroup import DATABASE_GROUP, SCHEDULER_GROUP
from .infra.host import Host
from .metrics import summarize
from .model.runtime import DagPlan, run_id_of
from .model.state_core import StateCore
from .records import Recorder, TableStream

#: How long after the horizon a simulation may run to let the last runs finish, before the
#: runs still alive are reported as stuck.
DRAIN_LIMIT = 30 * 86400.0


@dataclass
class RunResult:
    scenario: object
    executor: str
    task_instances: pd.DataFrame
    dag_runs: pd.DataFrame
    transitions: pd.DataFrame
    summary: dict
    stuck: list = field(default_factory=list)
    #: What components did besides state changes (published, delivered, result written, ...).
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Workers alive over time, per pool (Celery): time, pool, workers.
    workers: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: One row per pod, with its start-up stages (Kubernetes).
    pods: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Nodes over time, per node pool (Kubernetes): time, pool, nodes.
    nodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Tables written to files while the run went (``stream_to``): name -> CSV file. Their frames
    #: above are empty; :meth:`write` puts the files into the results folder.
    streamed: dict = field(default_factory=dict)

    def write(self, out_dir, charts: bool = True):
        """Write the results folder (atomically) and return its path."""
        from .results import write_results  # lazy: the writer (and matplotlib) only when writing
        return write_results(self, out_dir, charts=charts)


class Simulation:
    def __init__(self, scenario, *, record_transitions: bool = True, progress: bool = False,
                 skip_idle_loops: bool = True, stream_to=None):
        """``stream_to``: a folder where transitions.csv and events.csv are written while the run
        goes, a block at a time, rather than kept in memory to its end (``sim run --stream``)."""
        self.scenario = scenario
        self.seed = scenario.seed
        self.horizon = scenario.horizon
        self.airflow = scenario.airflow
        self.overheads = scenario.overheads.at_cpu_speed()     # CPU work at the hosts' speed
        self.progress = progress
        self.env = Environment()
        af = self.airflow
        #: The metadata DB's content (state, the limits' counters); the recorder stores its news.
        self.state = StateCore({"default_pool": af.default_pool_task_slot_count, **af.pools},
                               per_run=af.max_active_tasks_scope == "dag_run")
        self.recorder = Recorder(record_transitions)
        self.recorder.attach(self.state)
        if stream_to is not None:
            self.recorder.stream = TableStream(stream_to)
        #: Succeeds when every DAG run is done (or nothing can change any more).
        self.finished = self.env.event()
        self.db = MetadataDB(self.env, self.overheads.db_query_time, self.overheads.db_connections)
        self.plans = [DagPlan(d, i, self.airflow.max_active_runs_per_dag,
                              self.airflow.max_active_tasks_per_dag, self.overheads.dag_file_parse_time)
                      for i, d in enumerate(scenario.dags)]
        spec = scenario.executor
        settings = spec.settings or {}
        cores = settings.get("host_cores") or self.overheads.scheduler_host_cores
        groups = self.overheads.host_autogroup      # Linux's autogroups: sim/infra/host.py
        self.scheduler_host = Host(self.env, "scheduler", cores, autogroup=groups, group=SCHEDULER_GROUP)
        if self.overheads.metadata_db_on_scheduler_host:
            # a single-machine install's database, in a session of its own
            self.db.host = self.scheduler_host.group(DATABASE_GROUP)
        # Several schedulers (airflow-mechanics.md §1.13): each has its own host and executor. A
        # LocalExecutor is its scheduler's own; the others' infrastructure (broker, workers,
        # cluster) is shared, so they are modelled as one executor with every scheduler's slots,
        # each scheduler counting the tries it queued against its own parallelism.
        n = self.airflow.schedulers
        own = n > 1 and spec.kind == "local" and not (spec.settings or {}).get("kinds")
        par = self.airflow.parallelism
        self.executor_parallelism = par if n == 1 or own else par * n
        self.executors = self._build_executors(spec)
        shared = n > 1 and not own
        self.scheduler_processes = [(self.scheduler_host, self.executors, par, shared)]
        for i in range(1, n):
            host = Host(self.env, f"scheduler-{i}", cores, autogroup=groups, group=SCHEDULER_GROUP)
            if own:
                ex = LocalExecutor(self, par, host)
                self.scheduler_processes.append((host, {ex.name: ex}, par, False))
            else:
                self.scheduler_processes.append((host, self.executors, par, True))
        #: Executor slots of the whole deployment.
        self.total_parallelism = par * n
        #: A task's ``executor`` may name the executor by kind (``local``) or by class name.
        self.executor_aliases = {name: name for name in self.executors}
        for kind in EXECUTORS.values():
            if kind.class_name in self.executors:
                self.executor_aliases[kind.kind] = kind.class_name
        self.executor_aliases.setdefault(spec.kind, next(iter(self.executors)))
        #: Airflow 3's API server, through which tasks report (None: tasks use the DB directly).
        self.api_server = MetadataDB(self.env, self.overheads.api_request_time, self.overheads.api_server_workers) \
            if self.airflow.execution_api else None
        self.task_runner = TaskRunner(self)
        self.triggerer = Triggerers(self)
        self.scheduler = Scheduler(self)
        self.task_runner.mini_schedule = self.scheduler.mini_schedule
        self.scheduler.skip_idle_loops = skip_idle_loops
        if self.airflow.standalone_dag_processor:
            hosts = [Host(self.env, "dag-processor", self.overheads.dag_processor_host_cores)]
        else:
            hosts = [host for host, *_ in self.scheduler_processes]   # one per scheduler
        self.dag_processors = [DagProcessor(self, host) for host in hosts]

    def _build_executors(self, spec) -> dict:
        settings = spec.settings or {}
        # Airflow 2.10+ several executors: each its own, in order (the first is the default)
        kinds = settings.get("kinds") or [spec.kind]
        one = {k: v for k, v in settings.items() if k != "kinds"}
        out: dict = {}
        for kind in kinds:
            if kind not in EXECUTORS:
                raise ValueError(f"executor kind {kind!r} is not registered (sim/executors/registry.py)")
            ex = EXECUTORS[kind].build(self, one)
            out[ex.name] = ex
        return out

    def run(self) -> RunResult:
        env = self.env
        self.scheduler.start()
        for processor in self.dag_processors:
            processor.start()
        for ex in self.executors.values():
            ex.start()
        limit = self.horizon + DRAIN_LIMIT
        watchdog = env.timeout(limit)
        bar = self._progress_bar(limit) if self.progress else None
        try:
            env.run_until(self.scheduler.finished | watchdog)
        except BaseException:
            if self.recorder.stream is not None:
                self.recorder.stream.close()
            raise
        finally:
            if bar is not None:
                bar.close()
        finished = self.scheduler.finished.triggered and not self.scheduler.deadlocked
        stuck = [] if finished else self.scheduler.unfinished()
        return self._result(stuck)

    def _progress_bar(self, limit):
        """A bar over simulated time up to the horizon (tqdm hides itself when not on a terminal)."""
        env = self.env
        total = max(self.horizon, 1.0)
        bar = tqdm(total=round(total), unit="sim-s", desc=self.scenario.name, leave=False,
                   disable=None, mininterval=0.5)
        step = total / 200.0

        def tick(_e=None):
            shown = round(min(env.now, total))
            if shown > bar.n:
                bar.update(shown - bar.n)
            if not self.scheduler.finished.triggered and env.now < limit:
                later(env, step, tick)
        tick()
        return bar

    def _result(self, stuck) -> RunResult:
        rec = self.recorder
        run_ids = {}
        for row in rec.dr_rows:
            plan = self.plans[row[0]]
            sched = plan.dag.schedule
            run_ids[(row[0], row[1])] = run_id_of(plan, row[1], sched.logical_date(row[2], row[1]) if sched else row[2])
        for run in self.scheduler.unfinished_runs():
            run_ids[(run.plan.index, run.idx)] = run.run_id
        # The recorder hands its columns over as each frame is built (a run's results are built
        # once), and its strings go once the frames that use them exist: a long run does not hold
        # its results twice at its end. Tries in reading order: by DAG run, task, try.
        streamed = {}
        if rec.stream is not None:
            rec.stream.flush(rec)
            streamed = rec.stream.close()
        rec.finish()
        tis = rec.task_instances(self.plans, run_ids, release=True)
        runs = rec.dag_runs(self.plans, run_ids, release=True)
        if rec.stream is not None:                # in their files already
            trans = events = pd.DataFrame()
        else:
            trans = rec.transitions(release=True) if rec.record_transitions else pd.DataFrame()
            events = rec.events(release=True) if rec.rows("ev_time") else pd.DataFrame()
        rec.forget_strings()
        executor = self.scenario.executor.kind
        kube = [k for ex in self.executors.values() for k in ex.kubernetes_executors()]
        for k in kube:
            k.record_unfinished()
        summary = summarize(self, tis, runs, stuck)
        log = [row for ex in self.executors.values() for row in getattr(ex, "worker_count_log", [])]
        workers = pd.DataFrame(log, columns=["time", "pool", "workers"])
        pods = [k.pods_frame(self.plans, run_ids, release=True) for k in kube]
        pods = pods[0] if len(pods) == 1 else pd.concat(pods, ignore_index=True) if pods else pd.DataFrame()
        nodes = pd.DataFrame([r for k in kube for r in k.cluster.node_log], columns=["time", "pool", "nodes"])
        return RunResult(self.scenario, executor, tis, runs, trans, summary, stuck, events, workers, pods, nodes,
                         streamed)


def run(scenario, **kwargs) -> RunResult:
    """Simulate ``scenario`` (a :class:`sim.scenario.Scenario`) and return its results."""
    return Simulation(scenario, **kwargs).run()
