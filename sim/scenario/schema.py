"""The scenario file format: YAML reading, the pydantic models that validate it, the translation of
pydantic's errors into short messages for humans, and the JSON Schema for editors.

The models only check shape and values; the loader checks what needs the whole file (duplicate
dag_ids, dependencies, pools) and builds the model objects.
"""
from __future__ import annotations

import difflib
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import CroniterBadDateError, croniter
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      WithJsonSchema, field_validator, model_validator)

from ..airflow.config import AirflowConfig, CeleryConfig, KubernetesConfig, Overheads
from ..errors import ScenarioError
from ..executors import registry
from ..infra.cluster import NodePool
from ..model.dag import TRIGGER_RULES, WEIGHT_RULES
from ..model.schedules import EPOCH
from .units import FORMS, JSON_PATTERN, parse_duration

DEFAULT_PROFILE = "airflow-2.10"
#: The executor kinds and Airflow's class names, from the one registry of executors.
EXECUTOR_KINDS = tuple(registry.EXECUTORS)
EXECUTOR_NAMES = registry.names()
DURATION_KINDS = ("constant", "exponential", "lognormal", "uniform", "empirical")
SCHEDULE_KINDS = ("every", "cron", "poisson_per_hour", "at", "burst")


# -- YAML ---------------------------------------------------------------------------------------
class _DuplicateKey(yaml.MarkedYAMLError):
    pass


#: Bounds on a YAML document, counted with aliases expanded: a "billion laughs" file of a few
#: hundred bytes (anchors of lists of aliases of anchors...) expands to 10^9 nodes, and deep
#: nesting overflows the stack. The largest shipped scenario has a few hundred nodes, nested 8 deep.
MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 64


class _TooBig(yaml.MarkedYAMLError):
    pass


def _check_size(root) -> None:
    """Count ``root``'s nodes with aliases expanded, and its depth, without expanding anything
    (an alias is the anchored node itself, so each node is measured once)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size and not done:
            continue
        children = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) \
            else node.value if isinstance(node, yaml.SequenceNode) else []
        if not done:
            size[key] = -1                       # being measured (YAML has no recursive aliases here)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[key] = 1 + sum(size[id(c)] for c in children)
        depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[key] > MAX_YAML_NODES:
            raise _TooBig(problem=f"the document expands to more than {MAX_YAML_NODES:,} values "
                          "(anchors and aliases repeat what they point at); write it out with fewer "
                          "repetitions", problem_mark=node.start_mark)
        if depth[key] > MAX_YAML_DEPTH:
            raise _TooBig(problem=f"nested more than {MAX_YAML_DEPTH} levels deep",
                          problem_mark=node.start_mark)


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML silently keeps the last)
    and documents too large or too deep once aliases are expanded (see ``MAX_YAML_NODES``)."""

    def compose_document(self):
        node = super().compose_document()
        _check_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable):
                if key in seen:
                    raise _DuplicateKey(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def read_yaml(text: str, file: str | None):
    """Parse YAML; a syntax error becomes a ScenarioError naming line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (_DuplicateKey, _TooBig) as e:
        raise ScenarioError(file, f"{e.problem} at {_at(e.problem_mark)}") from None
    except RecursionError:
        raise ScenarioError(file, f"nested too deeply (at most {MAX_YAML_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = f"YAML syntax error at {_at(mark)}: {e.problem or e.context}" if mark else str(e)
        if e.context and e.context_mark and e.problem_mark and e.context_mark.line != mark.line:
            msg += f" ({e.context} at {_at(e.context_mark)})"
        raise ScenarioError(file, msg) from None
    except yaml.YAMLError as e:
        raise ScenarioError(file, f"YAML syntax error: {e}") from None


# -- field types -------------------------------------------------------------------------------
DURATION_JSON = {"anyOf": [{"type": "number", "minimum": 0},
                           {"type": "string", "pattern": JSON_PATTERN}],
                 "description": f"A duration: {FORMS}."}
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_JSON)]


def _positive(v: float) -> float:
    if not v > 0:
        raise ValueError(f"must be > 0 (got {v:g})")
    return v


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


def _at_most(n: int, pos: bool = True):
    """An integer setting that sizes memory or loops (slots, processes, workers, nodes), bounded
    so an absurd value is refused, not simulated until the machine runs out of memory."""
    return Annotated[int, Field(ge=1 if pos else 0, le=n)]


#: Upper bounds. Slots (parallelism, pod batches) are counters, so 10^9 (people write 10^6 for
#: "unlimited"). Processes and connections: 100,000, ten times the largest deployments reported.
#: Workers and nodes: Kubernetes supports 5,000 nodes per cluster, so 10,000 Celery workers or
#: 5,000 nodes per pool is past any real deployment. Schedulers: HA deployments run 2-4, and
#: each scheduler's loop is simulated (64 take 10 s for 2 hours), so 16.
SLOTS, PROCESSES, WORKERS, NODES, SCHEDULERS = 1_000_000_000, 100_000, 10_000, 5_000, 16
#: Catch-up: a per-minute DAG 19 years behind (each run's interval is held in memory).
CATCHUP_RUNS = 10_000_000
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
ID_JSON = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,250}$"}


def _id(what: str):
    def check(v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError(f"{what} {v!r} may only contain letters, digits, '_', '.' and '-' "
                             "(at most 250 characters)")
        return v
    return AfterValidator(check)


DagId = Annotated[str, _id("dag_id"), WithJsonSchema(ID_JSON)]
TaskId = Annotated[str, _id("task id"), WithJsonSchema(ID_JSON)]


def _check_cron(v: str) -> str:
    if not croniter.is_valid(v):
        raise ValueError(f"not a valid cron expression: {v!r} (five fields, minute hour "
                         "day-of-month month day-of-week, e.g. '0 * * * *', or @hourly, @daily)")
    try:
        croniter(v, EPOCH).get_next(float)
    except (CroniterBadDateError, ValueError, KeyError, OverflowError):
        raise ValueError(f"the cron expression {v!r} never fires (no such date, e.g. 30 February)") from None
    return v


Cron = Annotated[str, AfterValidator(_check_cron)]


def _join_lines(v):
    return "\n".join(v) if isinstance(v, list) and all(isinstance(s, str) for s in v) else v


Dependencies = Annotated[str, BeforeValidator(_join_lines), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
     "description": "Airflow syntax, e.g. 'T1 >> [T2, T3] >> T4'; several lines or a list allowed."})]


class Strict(BaseModel):
    # strict: YAML already types values, so "4" for an integer is a mistake, not a conversion.
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


def _exactly_one(v, kinds: tuple[str, ...], what: str):
    """Before-validator for the `{kind: params}` forms: exactly one kind key."""
    if isinstance(v, dict):
        present = [k for k in kinds if k in v]
        if len(present) > 1:
            raise ValueError(f"give exactly one {what} kind, not {' and '.join(present)}")
        if not v:
            raise ValueError(f"empty {what}; give one of: {', '.join(kinds)}")
    return v


def _one_set(model: BaseModel, kinds: tuple[str, ...], what: str) -> str:
    set_ = [k for k in kinds if getattr(model, k) is not None]
    if len(set_) != 1:
        raise ValueError(f"give exactly one {what} kind: {', '.join(kinds)}")
    return set_[0]


def _one_key_schema(scalar: dict | None):
    """JSON Schema of a `{kind: params}` model: one property, or also a bare scalar."""
    def extra(schema: dict) -> None:
        schema.update(minProperties=1, maxProperties=1)
        for prop in schema["properties"].values():   # the kinds are optional, never null
            prop.pop("default", None)
            options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options
        if scalar is not None:
            obj = dict(schema)
            schema.clear()
            schema.update(anyOf=[scalar, obj], title=obj.pop("title"),
                          description=obj.pop("description", ""))
    return extra


# -- durations ---------------------------------------------------------------------------------
class ExponentialParams(Strict):
    mean: PositiveDuration


class LogNormalParams(Strict):
    mean: PositiveDuration
    cv: NonNegFloat
    """Coefficient of variation: standard deviation / mean."""


class UniformParams(Strict):
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"low must be <= high (got low={self.low:g}s, high={self.high:g}s)")
        return self


class DurationSpec(Strict):
    """A task's duration: a constant (30s, 5m, or seconds) or one distribution."""

    model_config = ConfigDict(json_schema_extra=_one_key_schema(DURATION_JSON))
    constant: Duration | None = None
    exponential: ExponentialParams | None = None
    lognormal: LogNormalParams | None = None
    uniform: UniformParams | None = None
    empirical: Annotated[list[Duration], Field(min_length=1)] | None = None
    """Recorded durations, resampled uniformly."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v):
        if isinstance(v, (bool, int, float, str)):
            return {"constant": v}
        if not isinstance(v, dict):
            raise ValueError(f"expected a duration ({FORMS}) or one of {{exponential: {{mean}}}}, "
                             "{lognormal: {mean, cv}}, {uniform: {low, high}}, {empirical: [...]}")
        return _exactly_one(v, DURATION_KINDS, "duration")

    @model_validator(mode="after")
    def _kind(self):
        _one_set(self, DURATION_KINDS, "duration")
        return self


# -- schedules ---------------------------------------------------------------------------------
class BurstSpec(Strict):
    runs: PositiveInt
    at: Duration = 0.0


class ScheduleSpec(Strict):
    """When runs are created: exactly one of the keys."""

    model_config = ConfigDict(json_schema_extra=_one_key_schema(None))
    every: PositiveDuration | None = None
    """A fixed interval; runs are due at the end of each interval."""
    cron: Cron | None = None
    """A cron expression; runs are due at the end of each interval, as in Airflow."""
    poisson_per_hour: PositiveFloat | None = None
    """Externally triggered runs arriving as a Poisson process, mean runs per hour."""
    at: Annotated[list[Duration], Field(min_length=1)] | None = None
    """Externally triggered runs at these times."""
    burst: BurstSpec | None = None
    """`runs` runs triggered all at once at time `at`."""

    @model_validator(mode="before")
    @classmethod
    def _one(cls, v):
        return _exactly_one(v, SCHEDULE_KINDS, "schedule")

    @model_validator(mode="after")
    def _kind(self):
        _one_set(self, SCHEDULE_KINDS, "schedule")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SCHEDULE_KINDS if getattr(self, k) is not None)


# -- tasks and DAGs ----------------------------------------------------------------------------
class SensorSpec(Strict):
    """The task is a sensor: it pokes until its condition holds (``wait`` after its first poke)."""

    wait: DurationSpec
    """When the condition holds, after the first poke (a duration distribution)."""
    mode: Literal["poke", "reschedule"] = "poke"
    poke_interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 604800.0
    soft_fail: bool = False


class DeferrableSpec(Strict):
    """A deferrable operator: after its first part (the task's duration) it defers to the triggerer."""

    wait: DurationSpec
    """When the trigger's event comes, after the deferral (a duration distribution)."""
    resume: DurationSpec | None = None
    """The resumed part's duration on a worker (e.g. execute_complete); default 0."""


class ExpandSpec(Strict):
    """Dynamic task mapping: one task instance per element of a list known at run time."""

    count: DurationSpec
    """The list's length, as a distribution (rounded to a whole number); e.g. {uniform: {low: 50, high: 300}}."""


class TaskSpec(Strict):
    """An operator; names as in Airflow's BaseOperator. Unset keys take Airflow's defaults."""

    duration: DurationSpec
    queue: str = "default"
    pool: str = "default_pool"
    pool_slots: PositiveInt = 1
    priority_weight: int = 1
    weight_rule: Literal[WEIGHT_RULES] = "downstream"
    retries: NonNegInt = 0
    retry_delay: Duration = 300.0
    retry_exponential_backoff: bool = False
    max_retry_delay: Duration | None = None
    failure_probability: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Probability that one try fails."""
    failed_tries: NonNegInt = 0
    """The first tries that fail whatever ``failure_probability`` draws (a task known to fail first)."""
    trigger_rule: Literal[TRIGGER_RULES] = "all_success"
    cpu_bound: bool = False
    """True if the work competes for CPU on its host; False for a task waiting on another system."""
    cpu: PositiveFloat | None = None
    """CPU request in cores (container executors); default: the pod template's (kubernetes.default_cpu)."""
    memory: PositiveFloat | None = None
    """Memory request in MiB (container executors); default: the pod template's (kubernetes.default_memory)."""
    executor: Literal[EXECUTOR_NAMES] | None = None
    """Which of the scenario's executors runs this task (a kind or Airflow's class name)."""
    max_active_tis_per_dag: PositiveInt | None = None
    max_active_tis_per_dagrun: PositiveInt | None = None
    sensor: SensorSpec | None = None
    """Make the task a sensor; its duration is then the time of one poke."""
    deferrable: DeferrableSpec | None = None
    """Make the task deferrable: its duration is the part before it defers."""
    expand: ExpandSpec | None = None
    """Map the task over a list whose length is drawn when the run starts (Airflow's .expand())."""


#: Where a DAG's tasks come from: written out, a WfCommons trace, or an export of Airflow's history.
DAG_SOURCES = ("tasks", "wfcommons", "airflow_export")
FilePath = Annotated[str, Field(min_length=1)]


class AirflowExportSpec(Strict):
    """A DAG rebuilt from Airflow's own history: the structure, and each task's duration resampled
    from its successful tries in an export of the task_instance table."""

    task_instances: FilePath
    """CSV export of Airflow's task_instance table (a path relative to this scenario file)."""
    structure: FilePath
    """The DAG's tasks and dependencies: the JSON of Airflow's REST API GET /dags/{dag_id}/tasks
    (<dag_id>.tasks.json), a scenario file, or an Airflow DAG file (.py, needs the [airflow]
    extra); a path relative to this scenario file."""
    dag_id: DagId | None = None
    """The DAG's dag_id in the export; default: this entry's dag_id."""


def _dag_sources_schema(schema: dict) -> None:
    for key in DAG_SOURCES:                      # optional, never null
        prop = schema["properties"][key]
        prop.pop("default", None)
        options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            prop.update(options[0])
    schema["oneOf"] = [{"required": [key]} for key in DAG_SOURCES]


class DagSpec(Strict):
    """A DAG: its tasks written out (tasks, dependencies), or imported (wfcommons, airflow_export)."""

    model_config = ConfigDict(json_schema_extra=_dag_sources_schema)
    dag_id: DagId
    schedule: ScheduleSpec
    catchup_runs: _at_most(CATCHUP_RUNS) | None = None
    """Data intervals already over when the simulation starts (``catchup=True``: the DAG was
    unpaused after its ``start_date``, or the scheduler was down): their runs are all due at
    once, and the scheduler creates them one a loop, within max_active_runs. Needs an `every` or
    `cron` schedule."""
    max_active_runs: PositiveInt | None = None
    """Default: airflow.max_active_runs_per_dag."""
    max_active_tasks: PositiveInt | None = None
    """Default: airflow.max_active_tasks_per_dag."""
    parse_time: Duration | None = None
    """Time to parse this DAG's file; default: overheads.dag_file_parse_time."""
    tasks: Annotated[dict[TaskId, TaskSpec], Field(min_length=1)] | None = None
    """Task id -> task. Exactly one of tasks, wfcommons, airflow_export."""
    dependencies: Dependencies = ""
    wfcommons: FilePath | None = None
    """A WfCommons WfFormat trace (JSON, a path relative to this scenario file): its tasks, their
    recorded runtimes (constant durations), cores and memory, and its dependencies."""
    airflow_export: AirflowExportSpec | None = None
    """The DAG rebuilt from an export of Airflow's task_instance table and the DAG's structure."""

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in DAG_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DAG_SOURCES)}"
                             + (f" (got {' and '.join(given)})" if given else ""))
        if self.tasks is None and self.dependencies:
            raise ValueError(f"dependencies go with tasks; {given[0]} brings its own")
        if self.catchup_runs is not None and self.schedule.kind not in ("every", "cron"):
            raise ValueError(f"catchup_runs needs an `every` or `cron` schedule (externally triggered runs "
                             f"have no data intervals to catch up), not {self.schedule.kind!r}")
        return self


# -- Airflow settings, overheads, executor -----------------------------------------------------
class AirflowSection(Strict):
    """airflow.cfg settings by name; unset keys come from the profile."""

    parallelism: _at_most(SLOTS) = AirflowConfig.parallelism
    max_active_tasks_per_dag: PositiveInt = AirflowConfig.max_active_tasks_per_dag
    max_active_runs_per_dag: PositiveInt = AirflowConfig.max_active_runs_per_dag
    default_pool_task_slot_count: PositiveInt = AirflowConfig.default_pool_task_slot_count
    pools: dict[str, PositiveInt] | None = None
    """Extra pools, name -> slots."""
    max_tis_per_query: NonNegInt = AirflowConfig.max_tis_per_query
    """0 = up to parallelism per loop."""
    max_dagruns_to_create_per_loop: NonNegInt = AirflowConfig.max_dagruns_to_create_per_loop
    """0 = unlimited (simulator extension)."""
    max_dagruns_per_loop_to_schedule: NonNegInt = AirflowConfig.max_dagruns_per_loop_to_schedule
    """0 = unlimited (simulator extension)."""
    scheduler_idle_sleep_time: Duration = AirflowConfig.scheduler_idle_sleep_time
    schedule_after_task_execution: bool = AirflowConfig.schedule_after_task_execution
    execute_tasks_new_python_interpreter: bool = AirflowConfig.execute_tasks_new_python_interpreter
    max_active_tasks_scope: Literal["dag", "dag_run"] = AirflowConfig.max_active_tasks_scope
    """dag: Airflow 2.x (all runs of a DAG); dag_run: Airflow 3.x (per run)."""
    min_file_process_interval: Duration = AirflowConfig.min_file_process_interval
    """Seconds between re-parses of each DAG file by the DAG processor."""
    parsing_processes: _at_most(PROCESSES) = AirflowConfig.parsing_processes
    standalone_dag_processor: bool = AirflowConfig.standalone_dag_processor
    """Run the DAG processor on a host of its own instead of inside each scheduler (Airflow 3: always)."""
    task_instance_heartbeat_timeout: PositiveDuration = AirflowConfig.task_instance_heartbeat_timeout
    """A running task without a heartbeat this long is a zombie (2.x: scheduler_zombie_task_threshold)."""
    task_instance_heartbeat_timeout_detection_interval: PositiveDuration = \
        AirflowConfig.task_instance_heartbeat_timeout_detection_interval
    task_queued_timeout: Duration = AirflowConfig.task_queued_timeout
    """A task queued longer is re-queued, then failed; 0 = never."""
    task_queued_timeout_check_interval: PositiveDuration = AirflowConfig.task_queued_timeout_check_interval
    num_stuck_in_queued_retries: NonNegInt = AirflowConfig.num_stuck_in_queued_retries
    max_map_length: PositiveInt = AirflowConfig.max_map_length
    triggerer_capacity: PositiveInt = AirflowConfig.triggerer_capacity
    """[triggerer] capacity: triggers one triggerer runs at once (2.x: default_capacity)."""
    triggerers: _at_most(WORKERS) = AirflowConfig.triggerers
    """Triggerer processes in the deployment (several for HA or capacity)."""
    schedulers: _at_most(SCHEDULERS) = AirflowConfig.schedulers
    """Scheduler replicas running the loop against one metadata DB (HA, active/active); each has its
    own host and executor, and parallelism applies per scheduler."""
    execution_api: bool = AirflowConfig.execution_api
    """Airflow 3's Task SDK: tasks report their state and heartbeat through the API server, not the DB."""
    min_heartbeat_interval: PositiveDuration = AirflowConfig.min_heartbeat_interval
    """[workers] min_heartbeat_interval (3.0+): how often a running task heartbeats (with execution_api)."""
    airflow_version: str = AirflowConfig.airflow_version
    """The Airflow version the profile models (used for checks, e.g. hybrids gone in 3)."""
    loop_timers: bool = AirflowConfig.loop_timers
    """The scheduler loop's timers cut idle sleeps, each re-armed an interval after it ran (the
    intervals below, the heartbeat-timeout detection and the stuck-in-queued check); false = none."""
    pool_metrics_interval: Duration = AirflowConfig.pool_metrics_interval
    """[scheduler] pool_metrics_interval, a loop timer; 0 = not registered (Airflow 3 without metrics)."""
    trigger_timeout_check_interval: PositiveDuration = AirflowConfig.trigger_timeout_check_interval
    """[scheduler] trigger_timeout_check_interval, a loop timer."""
    parsing_cleanup_interval: PositiveDuration = AirflowConfig.parsing_cleanup_interval
    """[scheduler] parsing_cleanup_interval, a loop timer."""
    orphaned_tasks_check_interval: PositiveDuration = AirflowConfig.orphaned_tasks_check_interval
    """[scheduler] orphaned_tasks_check_interval, a loop timer."""
    metrics_enabled: bool = AirflowConfig.metrics_enabled
    """[metrics] statsd_on or otel_on, or [traces] otel_on: Airflow 3 has the pool-metrics timer only then."""


class OverheadsSection(Strict):
    """Simulated overhead timings in seconds; unset keys come from the profile."""

    scheduler_loop_base: Duration = Overheads.scheduler_loop_base
    scheduler_per_ti: Duration = Overheads.scheduler_per_ti
    """Scheduler CPU per task instance queued in the critical section or executor event processed."""
    scheduler_per_run: Duration = Overheads.scheduler_per_run
    """Scheduler CPU per running DAG run a loop examines, every loop."""
    scheduler_per_ti_examined: Duration = Overheads.scheduler_per_ti_examined
    """Scheduler CPU per not-yet-scheduled task instance of each DAG run a loop examines."""
    db_query_time: Duration = Overheads.db_query_time
    db_connections: _at_most(PROCESSES) = Overheads.db_connections
    process_start_fork: Duration = Overheads.process_start_fork
    process_start_interpreter: Duration = Overheads.process_start_interpreter
    dag_file_parse_time: Duration = Overheads.dag_file_parse_time
    mini_scheduler_queries: NonNegInt = Overheads.mini_scheduler_queries
    mini_scheduler_cpu: Duration = Overheads.mini_scheduler_cpu
    """CPU work of the mini-scheduler, while it holds its DAG run's row lock."""
    task_outcome_queries: NonNegInt = Overheads.task_outcome_queries
    """Round trips of a task's outcome write (log row, merge, update, commit)."""
    triggerer_loop_sleep: Duration = Overheads.triggerer_loop_sleep
    """Pause between two passes of a triggerer's loop (Airflow: time.sleep(1)); 0 = react at once."""
    api_request_time: Duration = Overheads.api_request_time
    """Airflow 3 API server: time to serve one Execution API request, besides its DB query."""
    api_server_workers: _at_most(PROCESSES) = Overheads.api_server_workers
    """Airflow 3 API server: requests served at once."""
    extra_dag_files: _at_most(1_000_000, pos=False) = Overheads.extra_dag_files
    """Other DAG files in the DAGs folder: parsed every min_file_process_interval, never run."""
    dag_processor_host_cores: PositiveFloat | None = Overheads.dag_processor_host_cores
    """Cores of a standalone DAG processor's host; null = unlimited."""
    scheduler_host_cores: PositiveFloat | None = Overheads.scheduler_host_cores
    """null = unlimited."""
    metadata_db_on_scheduler_host: bool = Overheads.metadata_db_on_scheduler_host
    """The metadata DB's server shares the scheduler host's cores: its queries take longer as that
    host is loaded (a single-machine install; false: a host of its own, as a managed database)."""
    host_autogroup: bool = Overheads.host_autogroup
    """Linux's group scheduling (sched_autogroup_enabled, on by default): the scheduler (with Local
    tasks), each Celery worker (with its children) and PostgreSQL share a host's cores equally as
    groups, not process by process; false: every process shares equally."""
    task_run_cpu: Duration = Overheads.task_run_cpu
    """CPU work of a task process inside its recorded run, besides the task's own work."""
    task_exit_cpu: Duration = Overheads.task_exit_cpu
    """CPU work of a task process after its outcome is written, before its slot frees."""
    task_background_cpu: Duration = Overheads.task_background_cpu
    """CPU work a try costs other processes on its host, which nobody waits for."""
    task_background_at_launch: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = \
        Overheads.task_background_at_launch
    """Share of task_background_cpu done at the try's launch (measured: 0.38); the rest of it,
    past task_background_in_run's share, at its exit."""
    task_background_in_run: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = \
        Overheads.task_background_in_run
    """Share of task_background_cpu done at the try's start_date (measured: 0.40)."""
    process_start_latency: Duration = Overheads.process_start_latency
    """Waiting (not computing) of a task process before its start_date: DB round trips, fork."""
    task_run_latency: Duration = Overheads.task_run_latency
    """Waiting of a task process inside its recorded run, besides the task's own work."""
    task_exit_latency: Duration = Overheads.task_exit_latency
    """Waiting of a task process after its outcome is written, until it has exited."""
    overhead_cv: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Overheads.overhead_cv
    """Coefficient of variation of each task process stage's overheads (gamma factor of mean 1)."""
    supervisor_late_exit_share: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Overheads.supervisor_late_exit_share
    """Airflow 3: share of task processes whose supervisor notices their exit only
    min_heartbeat_interval after the task's end (its select times out)."""
    cpu_speed: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = Overheads.cpu_speed
    """Speed of the hosts' cores relative to the profile's measuring machine (2 = twice as fast):
    Airflow's own CPU work (loop, parsing, task-process overheads) takes 1/cpu_speed as long;
    task durations and waiting do not change."""

    @model_validator(mode="after")
    def _background_shares(self):
        if self.task_background_at_launch + self.task_background_in_run > 1.0 + 1e-12:
            raise ValueError("task_background_at_launch + task_background_in_run must be at most 1 (the "
                             f"rest is done at the exit), got {self.task_background_at_launch:g} + "
                             f"{self.task_background_in_run:g}")
        return self


class CelerySection(Strict):
    """CeleryExecutor settings by their [celery] names, the broker and result-backend flavours and
    the timings of their hops; unset keys come from the profile's celery: section."""

    worker_concurrency: _at_most(WORKERS) = CeleryConfig.worker_concurrency
    worker_prefetch_multiplier: NonNegInt = CeleryConfig.worker_prefetch_multiplier
    """0 = no limit (Celery's meaning)."""
    task_acks_late: bool = CeleryConfig.task_acks_late
    operation_timeout: PositiveDuration = CeleryConfig.operation_timeout
    sync_parallelism: _at_most(PROCESSES, pos=False) = CeleryConfig.sync_parallelism
    """0 = max(1, scheduler host cores - 1)."""
    task_publish_max_retries: NonNegInt = CeleryConfig.task_publish_max_retries
    broker: Literal["redis", "rabbitmq"] = CeleryConfig.broker
    result_backend: Literal["database", "redis"] = CeleryConfig.result_backend
    """database = the metadata DB (Airflow's default), sharing its connections."""
    visibility_timeout: PositiveDuration = CeleryConfig.visibility_timeout
    publish_time: Duration = CeleryConfig.publish_time
    delivery_time: Duration = CeleryConfig.delivery_time
    send_pool_startup: Duration = CeleryConfig.send_pool_startup
    redis_write_time: Duration = CeleryConfig.redis_write_time
    fetch_base: Duration = CeleryConfig.fetch_base
    fetch_per_task: Duration = CeleryConfig.fetch_per_task
    result_backend_connect_time: Duration = CeleryConfig.result_backend_connect_time
    """The database result backend: a new connection for each of sync()'s fetches."""
    worker_preload_cpu: Duration = CeleryConfig.worker_preload_cpu
    """Start-up CPU a worker's child skips: the worker imported those modules before forking."""
    worker_startup_time: Duration = CeleryConfig.worker_startup_time
    worker_host_cores: PositiveFloat | None = CeleryConfig.worker_host_cores
    """Cores of each worker's host; null = unlimited."""
    workers_on_scheduler_host: bool = CeleryConfig.workers_on_scheduler_host
    """The workers share the scheduler's host and its cores (one machine)."""


class KedaSpec(Strict):
    """KEDA autoscaling of a worker pool, as the official Helm chart configures it."""

    min_replicas: _at_most(WORKERS, pos=False) = 0
    max_replicas: _at_most(WORKERS) = 10
    polling_interval: PositiveDuration = 5.0
    cooldown_period: Duration = 30.0
    """Only for scaling to zero (KEDA)."""
    scale_down_stabilization: Duration = 300.0
    """HPA: scale down to the highest recommendation of this window."""
    scale_down: Literal["warm", "kill"] = "warm"
    """warm: Celery warm shutdown within the grace period; kill: running tasks die."""
    termination_grace_period: Duration = 600.0

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        return self


class CrashSpec(Strict):
    at: Duration
    worker: NonNegInt = 0
    """Index of the worker in its pool (pool-0, pool-1, ...)."""


class WorkerPoolSpec(Strict):
    """Celery workers started alike: `airflow celery worker -q QUEUES` with the same host."""

    name: DagId
    queues: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: ["default"])
    replicas: _at_most(WORKERS, pos=False) | None = None
    """Workers at the start (default 1, or autoscaling.min_replicas)."""
    concurrency: _at_most(WORKERS) | None = None
    """Default: celery.worker_concurrency."""
    prefetch_multiplier: NonNegInt | None = None
    """Default: celery.worker_prefetch_multiplier."""
    host_cores: PositiveFloat | None = None
    """Default: celery.worker_host_cores."""
    instance_type: str | None = None
    """For cost: an instance type of the price catalogue (default: the catalogue's celery_worker)."""
    autoscaling: KedaSpec | None = None
    crash_rate_per_hour: NonNegFloat = 0.0
    """Crashes per worker per hour (Poisson); a fixed-size pool replaces a crashed worker."""
    crash_at: list[CrashSpec] = Field(default_factory=list)


class OutageSpec(Strict):
    start: Duration
    end: Duration

    @model_validator(mode="after")
    def _order(self):
        if not self.end > self.start:
            raise ValueError(f"an outage must end after it starts (start {self.start:g}, end {self.end:g})")
        return self


class KubernetesSection(Strict):
    """KubernetesExecutor settings by their [kubernetes_executor] names and the timings of the pod
    start-up path; unset keys come from the profile's kubernetes: section."""

    worker_pods_creation_batch_size: _at_most(SLOTS) = KubernetesConfig.worker_pods_creation_batch_size
    async_pod_creation: bool = KubernetesConfig.async_pod_creation
    pod_creation_max_concurrency: _at_most(SLOTS, pos=False) = KubernetesConfig.pod_creation_max_concurrency
    delete_worker_pods: bool = KubernetesConfig.delete_worker_pods
    delete_worker_pods_on_failure: bool = KubernetesConfig.delete_worker_pods_on_failure
    pod_launch_failure_retries: NonNegInt = KubernetesConfig.pod_launch_failure_retries
    api_create_time: Duration = KubernetesConfig.api_create_time
    bind_time: Duration = KubernetesConfig.bind_time
    image_size_mb: NonNegFloat = KubernetesConfig.image_size_mb
    pull_bandwidth_mb_s: NonNegFloat = KubernetesConfig.pull_bandwidth_mb_s
    """0 = pulls take no time."""
    init_container_time: Duration = KubernetesConfig.init_container_time
    container_start_time: Duration = KubernetesConfig.container_start_time
    airflow_boot_time: Duration = KubernetesConfig.airflow_boot_time
    watcher_delay: Duration = KubernetesConfig.watcher_delay
    default_cpu: PositiveFloat = KubernetesConfig.default_cpu
    default_memory: PositiveFloat = KubernetesConfig.default_memory
    instant_nodes: bool = KubernetesConfig.instant_nodes
    """Simulator extension: new nodes are ready at once, when a pod needs one (the ideal profile)."""


class NodePoolSpec(Strict):
    """Nodes of one instance type."""

    name: DagId
    # defaults: the model's NodePool (sim/infra/cluster.py), the one place they are written
    instance_type: str = NodePool.instance_type
    cores: PositiveFloat = NodePool.cores
    memory: PositiveFloat = NodePool.memory
    """Allocatable MiB."""
    price_per_hour: NonNegFloat = NodePool.price_per_hour
    spot: bool = NodePool.spot
    min_nodes: _at_most(NODES, pos=False) = NodePool.min_nodes
    max_nodes: _at_most(NODES) = NodePool.max_nodes
    initial_nodes: _at_most(NODES, pos=False) = NodePool.initial_nodes
    interruptions_per_hour: NonNegFloat = NodePool.interruptions_per_hour
    """Spot interruptions per node-hour (two-minute notice)."""


class AutoscalerSettings(Strict):
    scan_interval: Duration | None = None
    provision_min: Duration | None = None
    provision_max: Duration | None = None
    scale_down_unneeded_time: Duration | None = None
    scale_down_delay_after_add: Duration | None = None


class ClusterSpec(Strict):
    node_pools: Annotated[list[NodePoolSpec], Field(min_length=1)] = Field(
        default_factory=lambda: [NodePoolSpec(name="default")])
    autoscaler: Literal["cluster-autoscaler", "karpenter", "none"] = "cluster-autoscaler"
    autoscaler_settings: AutoscalerSettings | None = None
    """Override the chosen autoscaler profile key by key."""
    scoring: Literal["least_allocated", "most_allocated"] = "least_allocated"
    """kube-scheduler's NodeResourcesFit strategy (least_allocated is Kubernetes' default)."""


class ExecutorSection(BaseModel):
    """The executor: `kind` and its settings."""

    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True)
    kind: Literal[EXECUTOR_KINDS] | Annotated[list[Literal[EXECUTOR_KINDS]], Field(min_length=1)] = "local"
    """One executor, or a list: Airflow 2.10+'s several executors at once (the first is the
    default; a task picks another with its `executor`)."""
    host_cores: PositiveFloat | None = None
    """LocalExecutor: cores of its host; null = the scheduler host's (overheads.scheduler_host_cores)."""
    celery: CelerySection | None = None
    """CeleryExecutor settings; unset keys come from the profile."""
    worker_pools: list[WorkerPoolSpec] | None = None
    """CeleryExecutor: the worker pools (default: one worker listening to `default`)."""
    broker_outages: list[OutageSpec] | None = None
    """CeleryExecutor: windows when the broker is unreachable."""
    kubernetes: KubernetesSection | None = None
    """KubernetesExecutor settings; unset keys come from the profile."""
    cluster: ClusterSpec | None = None
    """KubernetesExecutor: node pools, autoscaler, scheduling strategy."""
    kubernetes_queue: str | None = None
    """CeleryKubernetesExecutor: tasks of this queue go to Kubernetes (default `kubernetes`)."""

    @model_validator(mode="after")
    def _kind_keys(self):
        kinds = self.kind if isinstance(self.kind, list) else [self.kind]
        if len(set(kinds)) != len(kinds):
            raise ValueError("an executor may appear only once in the list (two of one kind need "
                             "Airflow's multi-team mode)")
        hybrid = [k for k in kinds if len(registry.EXECUTORS[k].runs_on) > 1]
        if len(kinds) > 1 and hybrid:
            parts = " and ".join(registry.EXECUTORS[hybrid[0]].runs_on)
            raise ValueError(f"{hybrid[0]} is a hybrid of its own; list {parts} instead")
        own = sorted({"kind", *(k for kind in kinds for k in registry.EXECUTORS[kind].settings_keys)})
        wrong = [k for k in (self.model_extra or {})]
        every = dict.fromkeys(k for e in registry.EXECUTORS.values() for k in e.settings_keys)
        wrong += [k for k in every if k not in own and getattr(self, k, None) is not None]
        if wrong:
            raise ValueError("; ".join(unknown_key(k, own, f" for the {'+'.join(kinds)} executor")
                                       for k in wrong))
        if self.worker_pools:
            names = [p.name for p in self.worker_pools]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"duplicate worker pool name(s): {', '.join(dup)}")
        return self

    def settings(self) -> dict:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k != "kind"}


def _none_is_empty(v):
    return {} if v is None else v   # `airflow:` with every key commented out


class _Sections(Strict):
    airflow: AirflowSection = Field(default_factory=AirflowSection)
    overheads: OverheadsSection = Field(default_factory=OverheadsSection)

    @field_validator("airflow", "overheads", mode="before")
    @classmethod
    def _empty(cls, v):
        return _none_is_empty(v)

    def sections(self) -> dict[str, dict]:
        """Only the keys the file sets, so unset keys fall through to the profile."""
        return {"airflow": self.airflow.model_dump(exclude_unset=True),
                "overheads": self.overheads.model_dump(exclude_unset=True)}


class ProfileFile(_Sections):
    """A calibration profile: Airflow settings, overhead timings, Celery settings."""

    celery: CelerySection = Field(default_factory=CelerySection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)

    @field_validator("celery", "kubernetes", mode="before")
    @classmethod
    def _celery_empty(cls, v):
        return _none_is_empty(v)

    def sections(self) -> dict[str, dict]:
        return {**super().sections(), "celery": self.celery.model_dump(exclude_unset=True),
                "kubernetes": self.kubernetes.model_dump(exclude_unset=True)}

    description: str = ""
    extends: str | None = None
    """Start from this profile (a built-in name or a path relative to this file)."""


class ScenarioFile(_Sections):
    """A simulation scenario."""

    model_config = ConfigDict(title="sim scenario")
    name: str | None = None
    """Default: the file name without .yaml."""
    description: str = ""
    seed: NonNegInt = 0
    horizon: Duration = 86400.0
    """How long runs keep being created; the simulation ends when every run has finished."""
    profile: str = DEFAULT_PROFILE
    """A built-in profile (airflow-2.10, ideal) or a path to a profile YAML file."""
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    dags: Annotated[list[DagSpec], Field(min_length=1)]

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_empty(cls, v):
        return _none_is_empty(v)


# -- error messages ----------------------------------------------------------------------------
def unknown_key(key, allowed, where: str = "") -> str:
    msg = f"unknown key {key!r}{where}"
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    if close:
        return f"{msg}; did you mean {close[0]!r}?"
    return f"{msg} (expected one of: {', '.join(sorted(allowed))})" if allowed else msg


def _show(v) -> str:
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return str(int(v))
    return repr(v)


def _unwrap(t):
    while True:
        origin = typing.get_origin(t)
        if origin is Annotated:
            t = typing.get_args(t)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) != 1:
                return None
            t = args[0]
        else:
            return t


def type_at(root: type[BaseModel], loc) -> Any:
    """The (unwrapped) type the schema expects at a location, or None if unknown."""
    t = _unwrap(root)
    for part in loc:
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            t = field.annotation
        elif typing.get_origin(t) in (list, dict):
            t = typing.get_args(t)[-1]
        else:
            return None
        t = _unwrap(t)
    return t


def allowed_keys(root, loc) -> list[str] | None:
    """Field names at a location if it is a model (None for mappings with free keys)."""
    t = type_at(root, loc)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return None if t.model_config.get("extra") == "allow" else list(t.model_fields)
    return None


def format_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":          # pydantic marks a bad mapping key this way
            out += f".{part}" if out else str(part)
    return out


_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "dict": "a mapping (key: value)", "model": "a mapping (key: value)",
          "model_attributes": "a mapping (key: value)", "list": "a list"}


def _message(err: dict, root) -> tuple[tuple, str]:
    """(location, message) for one pydantic error."""
    kind, loc, ctx, got = err["type"], tuple(err["loc"]), err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return loc[:-1], unknown_key(loc[-1], allowed_keys(root, loc[:-1]) or [])
    if kind == "missing":
        return loc[:-1], f"missing required key {loc[-1]!r}"
    if kind in ("value_error", "assertion_error"):
        return loc, str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        close = difflib.get_close_matches(str(got), options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return loc, f"must be one of {', '.join(options)} (got {_show(got)}){hint}"
    for bound, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if bound in ctx and kind.startswith(("greater", "less")):
            return loc, f"must be {op} {_show(ctx[bound])} (got {_show(got)})"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return loc, "must not be empty" if n == 1 else f"needs at least {n} items"
    if kind == "finite_number":
        return loc, f"must be a finite number (got {_show(got)})"
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
    if base in _TYPES:
        return loc, f"expected {_TYPES[base]} (got {_show(got)})"
    return loc, err["msg"]


def _truncate_to_data(loc: tuple, data) -> tuple:
    """Cut a location where the user's data stops being a container: `duration: -5` is reported
    at `duration`, not at the `duration.constant` the shorthand expanded to."""
    node = data
    for i, part in enumerate(loc):
        if part == "[key]":
            return loc
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return loc[:i] if not isinstance(node, (dict, list)) else loc
    return loc


def problems_from(exc: ValidationError, data, root: type[BaseModel]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc, msg = _message(err, root)
        item = (format_path(_truncate_to_data(loc, data)), msg)
        if item not in problems:
            problems.append(item)
    return problems


def validate(root: type[BaseModel], data, file: str | None):
    """``root.model_validate(data)``, a ValidationError becoming a ScenarioError."""
    try:
        return root.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(file, problems_from(e, data, root)) from None


# -- JSON Schema -------------------------------------------------------------------------------
def json_schema() -> dict:
    schema = ScenarioFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_json_schema(path) -> None:
    Path(path).write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
