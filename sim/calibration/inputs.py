"""What calibration reads: exports of real runs, the DAGs' structure, the deployment's known
settings (Airflow's ``config.txt`` dump or ``--set``), and what the runs show, stage by stage.

A task's recorded ``duration`` (``start_date`` to ``end_date``) is not the task's own work: it
includes Airflow's work inside the task process (``task_run_cpu``), slowed down when other
processes share the host's cores. The simulator needs the task's own wall time, its *body*:
either known (``bodies={"chain": 0.5}``: a ``sleep 0.5``), or estimated from the export by
:func:`body_samples` (the recorded duration minus ``task_run_cpu`` stretched by the number of task
instances that were running on the same host at the time).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from ..analysis import mean_ci
from ..errors import ScenarioError, SimError
from ..executors.registry import CLASS_TO_KIND
from ..files import MAX_YAML_BYTES, read_text
from ..importers.airflow_export import observed_runs, read_dag_runs, read_rest_tasks, read_task_instances
from ..scenario.schema import ProfileFile, problems_from

#: Stages compared, as columns of :func:`sim.importers.observed_runs`, and their labels. The
#: last, Celery's hand-off, is not in an export: it is measured from the workers' logs
#: (:func:`handoff_stats`), where recorded.
STAGES = {"ready_to_queued": "ready -> queued", "queued_to_started": "queued -> started",
          "duration": "task duration", "makespan": "DAG-run makespan",
          "queued_to_executing": "queued -> executing"}
#: Celery's hand-off: from ``queued_dttm`` to the worker's ``Executing command in Celery`` line,
#: when the worker's child starts the task (``celery_handoff.csv``, written by
#: ``bench/real_airflow/celery_handoff.py``); in the model, QUEUED to the child's start.
HANDOFF = "queued_to_executing"
HANDOFF_FILE = "celery_handoff.csv"
#: The DAGs whose hand-off is scored: the chains' tasks run alone, so theirs is the hand-off
#: itself (a fan-out's tasks also wait for a worker slot, which queued -> started already scores).
HANDOFF_DAGS = ("chain",)
#: The statistic a stage is compared by (default the mean). The hand-off by its median: a few
#: tries in the logs took 2-3x the typical 7-10 ms (a log flush, a GC pause: nothing the model
#: has), which moves a 9 ms mean by a millisecond or more.
STAGE_STATISTIC = {HANDOFF: "p50"}

# -- known settings ----------------------------------------------------------------------------
#: ``config.txt`` keys (``section.key``) -> profile keys (``section.key``) taken as they are.
_CONFIG_KEYS = {
    "core.parallelism": "airflow.parallelism",
    "core.max_active_tasks_per_dag": "airflow.max_active_tasks_per_dag",
    "core.max_active_runs_per_dag": "airflow.max_active_runs_per_dag",
    "core.default_pool_task_slot_count": "airflow.default_pool_task_slot_count",
    "core.execute_tasks_new_python_interpreter": "airflow.execute_tasks_new_python_interpreter",
    "scheduler.scheduler_idle_sleep_time": "airflow.scheduler_idle_sleep_time",
    "scheduler.max_tis_per_query": "airflow.max_tis_per_query",
    "scheduler.max_dagruns_per_loop_to_schedule": "airflow.max_dagruns_per_loop_to_schedule",
    "scheduler.max_dagruns_to_create_per_loop": "airflow.max_dagruns_to_create_per_loop",
    "scheduler.schedule_after_task_execution": "airflow.schedule_after_task_execution",
    "scheduler.task_queued_timeout": "airflow.task_queued_timeout",
    "scheduler.task_queued_timeout_check_interval": "airflow.task_queued_timeout_check_interval",
    "scheduler.zombie_detection_interval": "airflow.task_instance_heartbeat_timeout_detection_interval",
    "scheduler.task_instance_heartbeat_timeout_detection_interval":
        "airflow.task_instance_heartbeat_timeout_detection_interval",
    "scheduler.scheduler_zombie_task_threshold": "airflow.task_instance_heartbeat_timeout",
    "scheduler.task_instance_heartbeat_timeout": "airflow.task_instance_heartbeat_timeout",
    "scheduler.min_file_process_interval": "airflow.min_file_process_interval",
    "scheduler.parsing_processes": "airflow.parsing_processes",
    "scheduler.pool_metrics_interval": "airflow.pool_metrics_interval",
    "scheduler.trigger_timeout_check_interval": "airflow.trigger_timeout_check_interval",
    "scheduler.parsing_cleanup_interval": "airflow.parsing_cleanup_interval",
    "scheduler.orphaned_tasks_check_interval": "airflow.orphaned_tasks_check_interval",
    "dag_processor.min_file_process_interval": "airflow.min_file_process_interval",
    "dag_processor.parsing_processes": "airflow.parsing_processes",
    "celery.worker_concurrency": "celery.worker_concurrency",
    "celery.worker_prefetch_multiplier": "celery.worker_prefetch_multiplier",
    "celery.task_acks_late": "celery.task_acks_late",
    "celery.operation_timeout": "celery.operation_timeout",
    "celery.sync_parallelism": "celery.sync_parallelism",
}


def _value(text: str):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        f = float(t)
    except ValueError:
        return t
    return int(f) if f.is_integer() and "." not in t else f


def read_config(path) -> tuple[dict, str | None]:
    """Known settings from a dump of Airflow's effective configuration, one ``section.key =
    value`` per line (``airflow config get-value`` for each key; the format of
    ``data/airflow-runs/*/config.txt``). Returns ``({"airflow.parallelism": 8, ...}, executor
    kind or None)``; keys the simulator has no use for and ``<not present ...>`` values are skipped.
    ``database.sql_alchemy_pool_size`` + ``max_overflow`` (default 10) give ``db_connections``."""
    file = str(path)
    lines = read_text(path, MAX_YAML_BYTES, "configuration").splitlines()
    raw: dict[str, str] = {}
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("cli:"):
            continue
        key, sep, value = s.partition("=")
        if not sep or "." not in key.strip():
            raise ScenarioError(file, [(f"line {i}", f"expected 'section.key = value' (got {s!r})")])
        value = value.strip()
        if value.startswith("<") and value.endswith(">"):
            continue                                  # <not present in this Airflow version>
        raw[key.strip()] = value
    out: dict = {}
    for key, value in raw.items():
        if key in _CONFIG_KEYS:
            out[_CONFIG_KEYS[key]] = _value(value)
    metrics = [raw[k] for k in ("metrics.statsd_on", "metrics.otel_on", "traces.otel_on") if k in raw]
    if metrics:
        out["airflow.metrics_enabled"] = any(_value(v) is True for v in metrics)
    broker = raw.get("celery.broker_url", "")
    if broker:
        out["celery.broker"] = "rabbitmq" if broker.startswith(("amqp", "pyamqp")) else "redis"
    backend = raw.get("celery.result_backend", "")
    if backend:
        out["celery.result_backend"] = "redis" if backend.startswith(("redis", "rediss")) else "database"
    if "database.sql_alchemy_pool_size" in raw:
        sizes = []
        for key, default in (("database.sql_alchemy_pool_size", None), ("database.sql_alchemy_max_overflow", "10")):
            v = _value(raw.get(key, default))
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ScenarioError(file, [(key, f"expected a whole number >= 0 (got {raw[key]!r})")])
            sizes.append(v)
        out["overheads.db_connections"] = sum(sizes)
    executor = CLASS_TO_KIND.get(raw.get("core.executor", "").split(",")[0].strip())
    return out, executor


#: The pools file the harness writes beside ``config.txt`` (``airflow pools export``).
POOLS_FILE = "pools.json"


def read_pools(path) -> dict:
    """The pools of ``airflow pools export`` (``{name: {"slots": n, ...}}``) as the profile's
    ``airflow.pools`` (``{name: slots}``); ``default_pool`` among them gives its slots as the
    database had them. A bad file raises :class:`ScenarioError` naming the pool and the field."""
    file = str(path)
    try:
        doc = json.loads(read_text(path, MAX_YAML_BYTES, "pools"))
    except json.JSONDecodeError as e:
        raise ScenarioError(file, [("(file)", f"not JSON: {e.msg} at line {e.lineno}")]) from None
    if not isinstance(doc, dict):
        raise ScenarioError(file, [("(file)", "expected an object of pools, name -> {slots: n, ...}")])
    out, problems = {}, []
    for name, pool in doc.items():
        slots = pool.get("slots") if isinstance(pool, dict) else None
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < 0:
            problems.append((f"{name}.slots", f"expected a whole number >= 0 (got {slots!r})"))
        else:
            out[str(name)] = slots
    if problems:
        raise ScenarioError(file, problems)
    return {"airflow.pools": out}


def check_settings(known: dict, file: str, names: dict | None = None) -> None:
    """Validate dotted settings against the profile schema (types, bounds, known keys), so a
    bad value is an error naming ``file`` and the key, not a crash mid-fit. ``names`` maps a
    profile key back to the key the user wrote (a config.txt key)."""

    nested: dict = {}
    for key, value in known.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    try:
        ProfileFile.model_validate(nested)
    except ValidationError as e:
        problems = []
        for path, msg in problems_from(e, nested, ProfileFile):
            if names and path in names:
                path = f"{names[path]} ({path})"
            problems.append((path, msg))
        raise ScenarioError(file, problems) from None


def config_names() -> dict:
    """Profile key -> the config.txt key it was read from (for messages)."""
    inverse = {}
    for key, profile_key in _CONFIG_KEYS.items():
        inverse.setdefault(profile_key, key)
    return inverse


def normalise_settings(settings) -> dict:
    """``{"airflow.parallelism": 8}`` or ``{"airflow": {"parallelism": 8}}`` -> dotted keys."""
    out: dict = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict) and "." not in key:
            for k, v in value.items():
                out[f"{key}.{k}"] = v
        else:
            out[key] = value
    for key in out:
        section = key.split(".", 1)[0]
        if section not in ("airflow", "overheads", "celery") or "." not in key:
            raise SimError(f"setting {key!r}: expected airflow.KEY, overheads.KEY or celery.KEY")
    return out


def parse_sets(assignments, flag: str = "--set") -> dict:
    """``["airflow.parallelism=8", ...]`` (the CLI's ``--set``, or ``flag``) -> dotted keys and values."""
    out = {}
    for a in assignments or ():
        key, sep, text = a.partition("=")
        if not sep or not key.strip():
            raise SimError(f"{flag} {a!r}: expected SECTION.KEY=VALUE, e.g. overheads.scheduler_host_cores=2")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[key.strip()] = text
    return normalise_settings(out)


def parse_bodies(assignments) -> dict:
    """``["chain=0.5", "fanout.end=2"]`` (the CLI's ``--body``) -> ``{"chain": 0.5, "fanout":
    {"end": 2.0}}``: the task's own work in seconds, for every task of a DAG or for one task."""
    out: dict = {}
    for a in assignments or ():
        key, sep, text = a.partition("=")
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not sep or not key.strip() or not seconds >= 0:
            raise SimError(f"--body {a!r}: expected DAG=SECONDS or DAG.TASK=SECONDS (seconds >= 0)")
        dag, _, task = key.strip().partition(".")
        if task:
            entry = out.setdefault(dag, {})
            if not isinstance(entry, dict):
                entry = out[dag] = {"*": entry}
            entry[task] = seconds
        elif isinstance(out.get(dag), dict):
            out[dag]["*"] = seconds
        else:
            out[dag] = seconds
    return out


# -- the exports -------------------------------------------------------------------------------
def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def read_runs(runs, dag_runs=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The task-instance export(s) and the dag-run export(s), each concatenated."""
    frames = [r if isinstance(r, pd.DataFrame) else read_task_instances(r) for r in _as_list(runs)]
    if not frames:
        raise SimError("no task-instance export given (--runs)")
    ti = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ti.attrs["source"] = ", ".join(str(f.attrs.get("source", "?")) for f in frames)
    drs = [d if isinstance(d, pd.DataFrame) else read_dag_runs(d) for d in _as_list(dag_runs)]
    dr = None
    if drs:
        dr = pd.concat(drs, ignore_index=True) if len(drs) > 1 else drs[0]
        dr.attrs["source"] = ", ".join(str(f.attrs.get("source", "?")) for f in drs)
    return ti, dr


def read_structures(dags) -> dict:
    """``{dag_id: DagStructure}`` from ``<dag_id>.tasks.json`` files (or structures)."""
    out = {}
    for d in _as_list(dags):
        s = d if hasattr(d, "tasks") and hasattr(d, "dag_id") else read_rest_tasks(d)
        out[s.dag_id] = s
    if not out:
        raise SimError("no DAG structure given (--dag)")
    return out


def check_exported(ti: pd.DataFrame, structures: dict) -> None:
    """Every DAG has successful tries in the export."""
    have = set(ti.loc[ti["state"] == "success", "dag_id"].dropna())
    missing = [d for d in structures if d not in have]
    if missing:
        known = ", ".join(sorted(set(ti["dag_id"].dropna()))) or "none"
        raise ScenarioError(ti.attrs.get("source"), [("column dag_id", f"no successful task instances of "
                                                     f"DAG {d!r} (the export has: {known})") for d in missing])


def observations(ti: pd.DataFrame, dr: pd.DataFrame | None, structures: dict) -> pd.DataFrame:
    """:func:`observed_runs` for the DAGs of ``structures``: tries that succeeded (a retried task's
    row is its last try, the one the export holds: its queued -> started and duration are that
    try's, its ready time unknown), of DAG runs that succeeded (when the dag-run export says),
    with ``running`` (see :func:`running_concurrency`)."""
    obs = observed_runs(ti, dr, list(structures.values()))
    obs["running"] = running_concurrency(ti).to_numpy()     # one row per export row, in order
    obs = obs[obs["dag_id"].isin(structures) & (obs["state"] == "success")]
    if dr is not None:
        ok = dr.loc[dr["state"] == "success", ["dag_id", "run_id"]]
        obs = obs.merge(ok, on=["dag_id", "run_id"])
    return obs.reset_index(drop=True)


def stage_stats(obs: pd.DataFrame) -> pd.DataFrame:
    """Per DAG and stage: n, mean, p50, and for the makespan the spread of the runs (min, max,
    standard deviation, the 95 % t-interval of the mean)."""
    rows = []
    for dag_id, g in obs.groupby("dag_id", sort=False):
        for stage in STAGES:
            if stage not in g.columns:
                continue
            if stage == "makespan":
                x = g.drop_duplicates("run_id")["makespan"].dropna().to_numpy(float)
            else:
                x = g[stage].dropna().to_numpy(float)
            if len(x) == 0:
                continue
            row = {"dag_id": dag_id, "stage": stage, "n": len(x), "mean": float(x.mean()),
                   "p50": float(np.median(x)), "min": float(x.min()), "max": float(x.max()),
                   "sd": float(x.std(ddof=1)) if len(x) > 1 else math.nan}
            half = mean_ci(x)[1]                  # 95 % Student t; NaN for a single run
            row["ci_low"], row["ci_high"] = row["mean"] - half, row["mean"] + half
            rows.append(row)
    return pd.DataFrame(rows)


def handoff_stats(path, obs: pd.DataFrame, dags=HANDOFF_DAGS) -> pd.DataFrame:
    """:func:`stage_stats` rows of Celery's hand-off (stage :data:`HANDOFF`) from a
    ``celery_handoff.csv``, for the tries of ``obs`` (the scored ones: tries that succeeded,
    of runs kept) of ``dags``; empty when the file has none of them."""
    h = pd.read_csv(path)
    missing = {"dag_id", "run_id", "task_id", "try_number", HANDOFF} - set(h.columns)
    if missing:
        raise ScenarioError(str(path), [(f"column {c}", "missing") for c in sorted(missing)])
    keys = obs.loc[obs["dag_id"].isin(dags), ["dag_id", "run_id", "task_id", "try_number"]].astype(
        {"dag_id": str, "run_id": str, "task_id": str, "try_number": int})
    h = h.astype({"dag_id": str, "run_id": str, "task_id": str, "try_number": int}).merge(keys)
    return stage_stats(h[["dag_id", "run_id", "task_id", HANDOFF]])


# -- task bodies -------------------------------------------------------------------------------
def running_concurrency(ti: pd.DataFrame) -> pd.Series:
    """For each row: the time-average number of task instances running (``start_date`` to
    ``end_date``, this one included) on the same ``hostname`` during its own run."""
    out = pd.Series(np.nan, index=ti.index)
    ok = ti["start_date"].notna() & ti["end_date"].notna()
    hosts = ti["hostname"].fillna("") if "hostname" in ti.columns else pd.Series("", index=ti.index)
    t0 = ti.loc[ok, "start_date"].min()
    for _, g in ti[ok].groupby(hosts[ok], sort=False):
        s = (g["start_date"] - t0).dt.total_seconds().to_numpy()
        e = (g["end_date"] - t0).dt.total_seconds().to_numpy()
        times = np.concatenate([s, e])
        steps = np.concatenate([np.ones_like(s), -np.ones_like(e)])
        order = np.lexsort((-steps, times))            # at equal times, starts first
        times, steps = times[order], steps[order]
        count = np.cumsum(steps)                       # running after each event
        area = np.concatenate([[0.0], np.cumsum(count[:-1] * np.diff(times))])

        def integral(t):
            i = np.searchsorted(times, t, side="right") - 1
            return area[i] + count[i] * (t - times[i])
        span = e - s
        k = np.where(span > 0, (integral(e) - integral(s)) / np.where(span > 0, span, 1.0), 1.0)
        out.loc[g.index] = np.maximum(k, 1.0)
    return out


def overhead_jitter(obs: pd.DataFrame, cores: float | None, limit: int = 64) -> list[float]:
    """Run-to-run variation of Airflow's own overheads, measured where nothing competed for the
    cores: each uncontended task instance's queued -> end time minus its task's mean (tasks with
    several such runs). The model's overheads are constants; this variation, added to known
    bodies, lets replayed runs vary as recorded ones did (mostly, whether a task just catches a
    scheduler loop or waits for the next)."""
    cycle = obs["queued_to_started"] + obs["duration"]
    quiet = obs["running"] <= (cores or 1.0)
    x = cycle[quiet]
    groups = [obs.loc[x.index, "dag_id"], obs.loc[x.index, "task_id"]]
    n = x.groupby(groups).transform("size")
    r = (x - x.groupby(groups).transform("mean"))[n >= 2].dropna().to_numpy(float)
    if len(r) > limit:                       # a deterministic spread of the pool
        r = np.sort(r)[np.linspace(0, len(r) - 1, limit).round().astype(int)]
    return [float(v) for v in r]


def body_samples(obs: pd.DataFrame, task_run_cpu: float, cores: float | None,
                 known: dict | None = None, jitter: list | None = None, tasks: dict | None = None) -> dict:
    """``{dag_id: {task_id: [seconds, ...]}}``: each task's own work, one sample per recorded run.

    Unknown bodies are estimated as the recorded duration minus ``task_run_cpu`` stretched by
    processor sharing among the task instances then running on the host, ``max(1, running /
    cores)`` (at least 0). Known bodies (``{dag_id: seconds}`` or ``{dag_id: {task_id: seconds,
    "*": default}}``) are the known value plus each value of ``jitter`` (see
    :func:`overhead_jitter`; at least 0); with ``tasks`` (``{dag_id: task ids}``) also for a task
    no try of ``obs`` has (one that failed, or never ran: upstream_failed)."""
    known = known or {}

    def known_samples(dag_id, task_id):
        """The known body's samples (its value plus each jitter), or None when it is not known."""
        k = known.get(dag_id)
        if isinstance(k, dict):
            k = k.get(task_id, k.get("*"))
        return None if k is None else [max(0.0, float(k) + j) for j in (jitter or [0.0])]

    running = obs["running"].fillna(1.0)
    stretch = (running / cores).clip(lower=1.0) if cores else 1.0
    est = (obs["duration"] - task_run_cpu * stretch).clip(lower=0.0)
    out: dict = {}
    for (dag_id, task_id), x in est.groupby([obs["dag_id"], obs["task_id"]], sort=False):
        samples = known_samples(dag_id, task_id)
        out.setdefault(dag_id, {})[task_id] = [float(v) for v in x.dropna()] if samples is None else samples
    for dag_id, ids in (tasks or {}).items():
        for task_id in ids:
            samples = None if task_id in out.get(dag_id, {}) else known_samples(dag_id, task_id)
            if samples is not None:
                out.setdefault(dag_id, {})[task_id] = samples
    return out


def slot_turnover(frame: pd.DataFrame, first_wave: float = 1.0) -> pd.Series:
    """Per fan-out DAG run: the median time from a middle task's end to the queueing of the task
    that took its slot, over the tasks queued after the first wave (more than ``first_wave``
    seconds after the first middle task was queued); the k-th of them is paired with the k-th
    middle task to end. Columns ``dag_id``, ``run_id``, ``task_id``, ``queued_at``, ``ended_at``
    (seconds or timestamps); the DAG's first and last tasks are ``start`` and ``end``. Works alike
    on an export (``observed_runs``) and on a simulation's task instances, so the two compare."""
    out = {}
    for (dag_id, run_id), g in frame.groupby(["dag_id", "run_id"], sort=False, observed=True):
        mids = g[~g["task_id"].isin(["start", "end"])]
        if len(mids) < 3:
            continue
        q, e = mids["queued_at"], mids["ended_at"]
        if pd.api.types.is_datetime64_any_dtype(q):
            t0 = q.min()
            q, e = (q - t0).dt.total_seconds(), (e - t0).dt.total_seconds()
        q = np.sort(q.to_numpy(float))
        e = np.sort(e.to_numpy(float))
        late = q[q > q[0] + first_wave]
        if len(late):
            out[(dag_id, run_id)] = float(np.median(late - e[:len(late)]))
    return pd.Series(out, dtype=float)
