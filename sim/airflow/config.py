"""Airflow's own configuration (names as in ``airflow.cfg``) and the simulator's overhead timings.

Defaults live in the profile files (``sim/profiles/*.yaml``), each number with its source; these
dataclasses only say which keys exist, their types and the limits of sane values.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass
class AirflowConfig:
    """Airflow settings, by their ``airflow.cfg`` names ([core], [scheduler], [operators])."""

    # Defaults are Airflow's (airflow-mechanics.md §1.3, source C2) unless a comment says otherwise.
    parallelism: int = 32                           # [core] parallelism
    max_active_tasks_per_dag: int = 16              # [core] max_active_tasks_per_dag
    max_active_runs_per_dag: int = 16               # [core] max_active_runs_per_dag
    default_pool_task_slot_count: int = 128         # [core] default_pool_task_slot_count (2.2+)
    #: Extra pools, name -> slots (``default_pool`` comes from default_pool_task_slot_count).
    pools: dict | None = None
    max_tis_per_query: int = 16                     # [scheduler], 16 since 2.7 (PR #32572)
    max_dagruns_to_create_per_loop: int = 10        # [scheduler]
    max_dagruns_per_loop_to_schedule: int = 20      # [scheduler]
    scheduler_idle_sleep_time: float = 1.0          # [scheduler] (2.2+)
    schedule_after_task_execution: bool = True      # [scheduler] mini-scheduler (2.x)
    execute_tasks_new_python_interpreter: bool = False  # [core]: fork
    #: 2.x counts max_active_tasks per DAG over all its runs; 3.x per DAG run (PR #42953).
    max_active_tasks_scope: str = "dag"
    #: The DAG processor re-parses every DAG file this often, with this many processes.
    min_file_process_interval: float = 30.0         # [scheduler]
    parsing_processes: int = 2                      # [scheduler]
    #: 2.3+: run the DAG processor as its own component (on its own host), not in each scheduler.
    standalone_dag_processor: bool = False          # [scheduler] (3.x: always)
    #: How Airflow finds tasks it lost (airflow-mechanics.md §1.14): zombies (no heartbeat) and
    #: tasks stuck in queued (re-queued up to num_stuck_in_queued_retries times, then failed).
    task_instance_heartbeat_timeout: float = 300.0  # 2.x scheduler_zombie_task_threshold
    task_instance_heartbeat_timeout_detection_interval: float = 10.0  # 2.x zombie_detection_interval
    task_queued_timeout: float = 600.0              # [scheduler] (2.6+)
    task_queued_timeout_check_interval: float = 120.0
    num_stuck_in_queued_retries: int = 2            # SJR fallback (§1.14)
    max_map_length: int = 1024                      # [core] max_map_length (2.3+)
    #: Deferred tasks wait in triggerers (§1.11): triggers each runs at most, and how many run.
    triggerer_capacity: int = 1000                  # [triggerer] capacity (2.x default_capacity)
    triggerers: int = 1                             # deployment: triggerer processes (HA: more)
    schedulers: int = 1                             # deployment: scheduler replicas (HA, §1.13)
    #: Airflow 3's Task SDK (§2.6): tasks report and heartbeat through the API server.
    execution_api: bool = False
    min_heartbeat_interval: float = 5.0             # [workers] (3.0+), C3
    airflow_version: str = "2.10"                   # what the profile models (checks only)
    #: The scheduler loop's timers (sim/airflow/idle_loops.py): each re-armed an interval after it
    #: ran, at a loop's end; an idle sleep ends when one is due (SJR: sleep(min(idle_sleep,
    #: next_event))). False = no timers cut idle sleeps (the ideal model).
    loop_timers: bool = False
    pool_metrics_interval: float = 5.0              # [scheduler]; 0 = not registered (3.x without metrics)
    trigger_timeout_check_interval: float = 15.0    # [scheduler]
    parsing_cleanup_interval: float = 60.0          # [scheduler]
    orphaned_tasks_check_interval: float = 300.0    # [scheduler]
    #: [metrics] statsd_on / otel_on or [traces] otel_on: Airflow 3 registers the pool-metrics
    #: timer only then (3.3.2 SJR _run_scheduler_loop); 2.x always does.
    metrics_enabled: bool = False

    def __post_init__(self):
        if self.pools is None:
            self.pools = {}


@dataclass
class Overheads:
    """Simulated time that Airflow's components spend, in seconds (0 everywhere = ``ideal``)."""

    #: CPU time of one scheduler loop that did nothing, and per task instance it queued in the
    #: critical section or whose executor event it processed.
    scheduler_loop_base: float = 0.0
    scheduler_per_ti: float = 0.0
    #: CPU time per running DAG run the loop examines, and per not-yet-scheduled task instance of
    #: those runs, every loop, whether anything changed or not (_schedule_dag_run: the run's DAG,
    #: task_instance_scheduling_decisions loading its task instances and checking the
    #: dependencies of those not yet scheduled). Measured on real Airflow by
    #: bench/real_airflow/examine_cost.py (docs/background.md, "What a loop costs").
    scheduler_per_run: float = 0.0
    scheduler_per_ti_examined: float = 0.0
    #: Metadata DB: service time of one query, and connections served at once.
    db_query_time: float = 0.0
    db_connections: int = 15
    #: Task start on a worker: process start-up by fork or by a fresh interpreter, then DAG parsing.
    process_start_fork: float = 0.0
    process_start_interpreter: float = 0.0
    dag_file_parse_time: float = 0.0
    #: Mini-scheduler: queries a finishing task runs to schedule its downstream tasks, and its CPU
    #: work (task_instance_scheduling_decisions over the DAG). It holds the DAG run's row lock
    #: meanwhile, and the scheduler's examination skips a locked run (skip_locked). Airflow 2.10
    #: runs it after every exit but a deferral, whatever the outcome (a leaf's is not modelled).
    mini_scheduler_queries: int = 0
    mini_scheduler_cpu: float = 0.0
    #: Round trips of the task's outcome write (_run_raw_task: the log row, the task instance's
    #: merge, its update, the commit).
    task_outcome_queries: int = 1
    #: Triggerer: the pause at the end of each pass of its loop (hard-coded time.sleep(1)).
    triggerer_loop_sleep: float = 0.0
    #: DAG processor: other files in the DAGs folder, parsed every cycle but never run; and the
    #: cores of a standalone DAG processor's host (None = unlimited).
    #: Airflow 3's API server: time to serve one Execution API request (besides its DB query) and
    #: requests served at once.
    api_request_time: float = 0.0
    api_server_workers: int = 4
    extra_dag_files: int = 0
    dag_processor_host_cores: float | None = None
    #: Cores of the scheduler's host (LocalExecutor's tasks run there too); None = unlimited.
    scheduler_host_cores: float | None = None
    #: The metadata database's server runs on the scheduler's host and shares its cores (a
    #: single-machine install, as the measuring machine of data/airflow-runs; False: a host of
    #: its own, as a managed database). Its queries are then CPU work on that host, slower as the
    #: host is loaded, and a task process's start-up waiting there (process_start_latency) too.
    metadata_db_on_scheduler_host: bool = False
    #: Linux shares a host's cores among sessions first (``kernel.sched_autogroup_enabled``, 1 by
    #: default on kernels built with CONFIG_SCHED_AUTOGROUP, as Debian's and Ubuntu's are; systemd
    #: services in cgroups of equal weight do the same): the scheduler with its LocalExecutor's
    #: task processes, each Celery worker with its children, and PostgreSQL with its backends
    #: (the task processes' background CPU and, on the host, the queries) each get an equal share
    #: however many processes the others run (sim/infra/host.py, *Groups*; measured with it off:
    #: data/airflow-runs/autogroup-off). False: every process shares equally (autogroup off).
    host_autogroup: bool = True
    #: CPU work of a task process besides the task's own work, on its host (processor sharing):
    #: inside the recorded run (start_date to end_date: forking the raw task process, loading its
    #: context and rendering templates, the operator's set-up, recording the outcome), and after
    #: the outcome is written, before the executor's slot frees (LocalTaskJob's handle_task_exit
    #: with the mini-scheduler's DAG subset, the job's end, the process exit). `sim calibrate`.
    task_run_cpu: float = 0.0
    task_exit_cpu: float = 0.0
    #: CPU work a try costs other processes on its host, which the task's own path does not wait for
    #: (done in shares, below; by default all once the executor has learned the outcome): what
    #: measured totals show beyond a lone task's path (real Airflow 2.10 on 2 cores used 0.70-0.87
    #: core-seconds per try, lone or loaded, by /proc/stat, while a lone try's start, run and exit
    #: take about 0.6 s of wall time; data/airflow-runs/new-session, machine-busy). It slows
    #: whatever else runs on the host.
    task_background_cpu: float = 0.0
    #: When that background CPU is done: these shares at the try's launch (before its start_date)
    #: and at its start_date; the rest at its exit. airflow-2.10 has the measured 0.38 and 0.40 (its
    #: fit staged: first at 0, 0); airflow-3's background is 0. Measured on real tries, PostgreSQL's
    #: CPU (most of that work) fell 0.38 before start_date, 0.40 during the run and 0.22 after the
    #: end (process-cpu: 0.34-0.41 / 0.38-0.41 / 0.22-0.25 over three configurations;
    #: docs/background.md, "Work beside a try").
    task_background_at_launch: float = 0.0
    task_background_in_run: float = 0.0
    #: Wall time of a task process that is *waiting*, not computing (DB round trips and lock
    #: waits, connection set-up, fork and exec, the job's polling of its child): before its
    #: start_date, inside its run, and after its outcome until the process has exited. Waiting
    #: does not slow other processes down, so it does not stretch with the number of tasks
    #: ending together as CPU work does (issue #11's slot-turnover measurements). The start's
    #: waiting is the database's work (the job's row, the dependency checks, the state's update):
    #: with the database on the task's host (metadata_db_on_scheduler_host) it is CPU there.
    process_start_latency: float = 0.0
    task_run_latency: float = 0.0
    task_exit_latency: float = 0.0
    #: Run-to-run variation of a task process's overheads: each stage (start, run, exit) of each
    #: process scales its CPU work and waiting by a gamma-distributed factor of mean 1 and this
    #: coefficient of variation (its own random stream). 0 = constant overheads. A few per cent of
    #: variation is what keeps real scheduler loops from locking onto task durations.
    overhead_cv: float = 0.0
    #: Airflow 3's supervisor: the share of task processes whose exit it notices only when its
    #: wait for the process's sockets times out, ``[workers] min_heartbeat_interval`` after the
    #: task's end (``ActivitySubprocess._monitor_subprocess`` waits in ``select`` up to that long
    #: once the sockets are closed; 3.3.2). The worker, Celery child or pod stays busy meanwhile.
    #: Airflow 2's LocalTaskJob polls its child instead, so 0 there.
    supervisor_late_exit_share: float = 0.0
    #: Speed of the hosts' cores relative to the machine the profile's CPU figures were measured
    #: on: Airflow's own CPU work (the loop, DAG parsing, task-process start-up, run and exit) takes
    #: ``1/cpu_speed`` as long. Not the tasks' own work (durations are as given) nor waiting (DB,
    #: network, latencies). The same cloud VM type measured at two times of one day differed
    #: by about 10 % (docs/background.md, "The machine's speed").
    cpu_speed: float = 1.0

    #: The fields that are CPU work on a host, scaled by cpu_speed.
    CPU_WORK = ("scheduler_loop_base", "scheduler_per_ti", "scheduler_per_run", "scheduler_per_ti_examined",
                "process_start_fork", "process_start_interpreter",
                "dag_file_parse_time", "task_run_cpu", "task_exit_cpu", "task_background_cpu", "mini_scheduler_cpu")

    def at_cpu_speed(self) -> "Overheads":
        """These overheads with the CPU work divided by ``cpu_speed`` (itself when it is 1)."""
        if self.cpu_speed == 1.0:
            return self
        return replace(self, **{k: getattr(self, k) / self.cpu_speed for k in self.CPU_WORK})


def field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


def from_section(cls, section: dict | None):
    """An instance of the config dataclass ``cls`` from a settings section (its own keys only)."""
    names = set(field_names(cls))
    return cls(**{k: v for k, v in (section or {}).items() if k in names})


@dataclass
class CeleryConfig:
    """CeleryExecutor settings by their ``[celery]`` names (airflow-mechanics.md §2.3), plus the
    broker and result-backend flavours and the simulated timings of their hops."""

    # Defaults are the celery provider's (airflow-mechanics.md §2.3, source CP).
    worker_concurrency: int = 16
    worker_prefetch_multiplier: int = 1
    task_acks_late: bool = True
    operation_timeout: float = 1.0
    sync_parallelism: int = 0
    task_publish_max_retries: int = 3
    broker: str = "redis"                  # redis | rabbitmq (broker_url default redis://)
    result_backend: str = "database"       # database (the metadata DB) | redis
    visibility_timeout: float = 86400.0    # 24 h in the current provider (PR #54480)
    #: Simulated timings (seconds; 0 here, the profile's celery: section sets them): one apply_async to the broker; broker -> worker delivery;
    #: starting the process pool that sends in parallel; a result write to a Redis backend; the
    #: bulk state fetch of sync() (one round trip plus a cost per running task); the database
    #: result backend's new connection per fetch (result_backend_connect_time, below).
    publish_time: float = 0.0
    delivery_time: float = 0.0
    send_pool_startup: float = 0.0
    redis_write_time: float = 0.0
    fetch_base: float = 0.0
    fetch_per_task: float = 0.0
    #: The database result backend opens a new connection for every fetch made by the scheduler:
    #: celery's SessionManager pools connections only in a process that has forked since it was
    #: made (a worker's child), and gives the scheduler's a NullPool engine
    #: (celery/backends/database/session.py, get_engine).
    result_backend_connect_time: float = 0.0
    #: CPU a task process's start-up skips in a Celery worker's child: the worker imported the
    #: expensive modules once before forking (the provider's on_celery_import_modules: jinja2.ext,
    #: the LocalTaskJob runner, macros, the bash and python operators, numpy, kubernetes.client);
    #: a LocalExecutor's workers do not. Not with execute_tasks_new_python_interpreter.
    worker_preload_cpu: float = 0.0
    #: A new worker's start-up (pod scheduled, image present, Celery and Airflow imported).
    worker_startup_time: float = 0.0
    worker_host_cores: float | None = None
    #: The workers run on the scheduler's own host and share its cores (a one-machine deployment),
    #: instead of hosts of their own with worker_host_cores.
    workers_on_scheduler_host: bool = False



@dataclass
class KubernetesConfig:
    """KubernetesExecutor settings by their ``[kubernetes_executor]`` names (airflow-mechanics.md
    §2.4) and the simulated timings of the pod start-up path (profile ``kubernetes:`` section)."""

    # Defaults are the cncf.kubernetes provider's (airflow-mechanics.md §2.4, source KP).
    worker_pods_creation_batch_size: int = 1
    async_pod_creation: bool = False
    pod_creation_max_concurrency: int = 0
    delete_worker_pods: bool = True
    delete_worker_pods_on_failure: bool = False
    pod_launch_failure_retries: int = 1
    #: Start-up path timings (seconds; 0 here, the profile's kubernetes: section sets them).
    api_create_time: float = 0.0
    bind_time: float = 0.0
    image_size_mb: float = 0.0
    pull_bandwidth_mb_s: float = 0.0
    init_container_time: float = 0.0
    container_start_time: float = 0.0
    airflow_boot_time: float = 0.0
    watcher_delay: float = 0.0
    #: Pod requests when a task sets none (cores, MiB): ASSUMPTION, as in the profile.
    default_cpu: float = 1.0
    default_memory: float = 512.0
    #: Simulator extension: a pod that no node can take gets a node that is ready at once (no
    #: scan interval, no provisioning time). The ideal profile sets it: node start-up is overhead.
    instant_nodes: bool = False
