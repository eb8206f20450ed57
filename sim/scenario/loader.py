"""Scenario file -> :class:`Scenario`: read YAML, apply command-line overrides, validate, merge the
profile, build the model objects. Every problem becomes a :class:`ScenarioError`."""
from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Iterable

from ..airflow.config import AirflowConfig, Overheads
from ..cost.model import load_catalogue
from ..errors import ScenarioError
from ..executors.registry import EXECUTORS, kind_of
from ..files import MAX_YAML_BYTES, read_text
from ..model import durations as dist
from ..model import schedules as sch
from ..model.dag import DAG, DEFAULT_POOL, DagError, Deferral, Sensor, Task
from . import ExecutorSpec, Scenario
from . import _settings as executor_settings
from .aliases import alias_of_set_key, resolve_airflow_aliases
from .imported import import_dag
from .profiles import load_profile, merge_sections
from .schema import (DurationSpec, ScenarioFile, ScheduleSpec, allowed_keys, read_yaml, type_at, unknown_key,
                     validate)


def load_scenario(path, *, sets: Iterable[str] = (), executor: str | None = None,
                  seed: int | None = None, profile: str | None = None) -> Scenario:
    """Load, override (``--executor``, ``--seed``, ``--profile``, then each ``--set``), validate."""
    file = str(path)
    text = read_text(path, MAX_YAML_BYTES)
    return scenario_from_dict(read_yaml(text, file), file=file, sets=sets, executor=executor,
                              seed=seed, profile=profile, base_dir=Path(path).parent)


def scenario_from_dict(data, *, file: str | None = None, sets: Iterable[str] = (),
                       executor: str | None = None, seed: int | None = None,
                       profile: str | None = None, base_dir=None) -> Scenario:
    """As :func:`load_scenario`, from already-parsed YAML. ``base_dir`` anchors relative paths
    (a profile file, a DAG's ``wfcommons:`` or ``airflow_export:`` files); default: the current folder."""
    if data is None:
        raise ScenarioError(file, "the file is empty")
    if not isinstance(data, dict):
        raise ScenarioError(file, "the top level must be a mapping (name:, dags:, ...), "
                                  f"not a {type(data).__name__}")
    data = _unshare(data)
    if executor is not None and executor != (data.get("executor") or {}).get("kind", "local"):
        data["executor"] = {"kind": executor}   # the file's settings are for another executor
    if seed is not None:
        data["seed"] = seed
    if profile is not None:
        data["profile"] = profile
    resolve_airflow_aliases(data, file)
    for assignment in sets:
        apply_set(data, assignment, file)

    spec: ScenarioFile = validate(ScenarioFile, data, file)
    try:
        prof = load_profile(spec.profile, base_dir)
    except ScenarioError as e:
        if e.file is None:
            e.file = file
        raise
    problems: list[tuple[str, str]] = []
    kinds = spec.executor.kind if isinstance(spec.executor.kind, list) else [spec.executor.kind]
    kind = "+".join(kinds)
    merged = merge_sections(prof, spec.sections())
    airflow, overheads = AirflowConfig(**merged["airflow"]), Overheads(**merged["overheads"])
    major = airflow.airflow_version.split(".")[0]
    for k in kinds:
        gone = EXECUTORS[k].removed_in
        if gone is not None and major.isdigit() and int(major) >= gone:
            problems.append(("executor.kind", f"{EXECUTORS[k].class_name} was removed in Airflow {gone} (profile "
                             f"{spec.profile!r} models {airflow.airflow_version}); run both executors "
                             f"side by side instead: executor.kind: [{', '.join(EXECUTORS[k].runs_on)}]"))
    settings = spec.executor.settings()
    if len(kinds) > 1:
        settings["kinds"] = kinds
    if settings.get("worker_pools"):
        known = load_catalogue()["instance_types"]
        for i, p in enumerate(settings["worker_pools"]):
            if p.get("instance_type") and p["instance_type"] not in known:
                problems.append((f"executor.worker_pools[{i}].instance_type",
                                 f"{p['instance_type']!r} is not in the price catalogue ({', '.join(known)})"))
    settings = executor_settings(kinds, merged, settings)
    dags, first_index = [], {}
    for i, d in enumerate(spec.dags):
        if d.dag_id in first_index:
            problems.append((f"dags[{i}].dag_id", f"duplicate dag_id {d.dag_id!r} "
                                                  f"(also dags[{first_index[d.dag_id]}])"))
        first_index.setdefault(d.dag_id, i)
        dags.append(_build_dag(d, i, kinds, airflow, problems) if d.tasks is not None
                    else import_dag(d, i, kinds, airflow, problems, build_schedule(d.schedule, d.catchup_runs), base_dir))
    if problems:
        raise ScenarioError(file, problems)
    return Scenario(name=spec.name or (Path(file).stem if file else "scenario"),
                    description=spec.description, seed=spec.seed, horizon=spec.horizon,
                    profile=spec.profile, airflow=airflow, overheads=overheads,
                    executor=ExecutorSpec(kind, settings),
                    dags=dags, source=file, data=data)


# -- model objects -----------------------------------------------------------------------------
def build_distribution(spec: DurationSpec) -> dist.Distribution:
    if spec.constant is not None:
        return dist.Constant(spec.constant)
    if spec.exponential is not None:
        return dist.Exponential(spec.exponential.mean)
    if spec.lognormal is not None:
        return dist.LogNormal(spec.lognormal.mean, spec.lognormal.cv)
    if spec.uniform is not None:
        return dist.Uniform(spec.uniform.low, spec.uniform.high)
    return dist.Empirical(tuple(spec.empirical))


def build_schedule(spec: ScheduleSpec, catchup_runs: int | None = None) -> sch.Schedule:
    if catchup_runs:
        return sch.CatchUp(build_schedule(spec), catchup_runs)
    kind = spec.kind
    if kind == "every":
        return sch.Interval(spec.every)
    if kind == "cron":
        return sch.Cron(spec.cron)
    if kind == "poisson_per_hour":
        return sch.Poisson(spec.poisson_per_hour)
    if kind == "at":
        return sch.At(tuple(spec.at))
    return sch.Burst(spec.burst.runs, spec.burst.at)


def celery_queue_warnings(scenario) -> list[str]:
    """Queues used by Celery tasks that no worker pool listens to (Airflow accepts them; their
    tasks then wait in the broker until task_queued_timeout)."""
    settings = scenario.executor.settings
    kinds = settings.get("kinds") or [scenario.executor.kind]
    via_celery = {k for k in kinds if EXECUTORS[k].celery_queues}
    if not via_celery:
        return []
    hybrid = any("kubernetes_queue" in EXECUTORS[k].settings_keys for k in kinds)
    k8s_queue = settings.get("kubernetes_queue") or "kubernetes" if hybrid else None
    celery_default = kinds[0] in via_celery
    pools = settings.get("worker_pools")
    if not pools:
        return []                  # the default worker listens to every queue the DAGs use
    listened = {q for p in pools for q in (p.get("queues") or ["default"])}
    out = []
    for d in scenario.dags:
        for t in d.tasks.values():
            on_celery = (t.executor is not None and kind_of(t.executor) in via_celery) \
                or (t.executor is None and celery_default)
            if not on_celery or t.queue == k8s_queue or t.queue in listened:
                continue
            out.append(f"dag {d.dag_id!r} task {t.task_id!r}: queue {t.queue!r} has no worker "
                       f"listening (workers listen to: {', '.join(sorted(listened))}); its tasks will "
                       f"wait until task_queued_timeout")
    return out


def _build_dag(d, i: int, kinds: list, airflow: AirflowConfig,
               problems: list) -> DAG:
    tasks = []
    for task_id, t in d.tasks.items():
        where = f"dags[{i}].tasks.{task_id}"
        # Only the keys the file sets: the model's defaults are Airflow's.
        kwargs = t.model_dump(exclude_unset=True, exclude={"duration", "sensor", "expand", "deferrable"})
        if t.expand is not None:
            kwargs["expand"] = build_distribution(t.expand.count)
        if t.sensor is not None:
            kwargs["sensor"] = Sensor(build_distribution(t.sensor.wait), t.sensor.mode, t.sensor.poke_interval,
                                      t.sensor.timeout, t.sensor.soft_fail)
        if t.deferrable is not None:
            if t.sensor is not None:
                problems.append((f"{where}.deferrable", "a task is a sensor or deferrable, not both "
                                 "(model a deferrable sensor as a deferrable task)"))
            else:
                resume = build_distribution(t.deferrable.resume) if t.deferrable.resume is not None else 0.0
                kwargs["deferrable"] = Deferral(build_distribution(t.deferrable.wait), resume)
        tasks.append(Task(task_id, duration=build_distribution(t.duration), **kwargs))
        size = airflow.default_pool_task_slot_count if t.pool == DEFAULT_POOL else airflow.pools.get(t.pool)
        if size is None:
            known = [DEFAULT_POOL, *airflow.pools]
            close = difflib.get_close_matches(t.pool, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((f"{where}.pool", f"unknown pool {t.pool!r} (pools: {', '.join(known)}; "
                             f"add it under airflow.pools){hint}"))
        elif t.pool_slots > size:
            problems.append((f"{where}.pool_slots", f"{t.pool_slots} slots can never be free in pool "
                             f"{t.pool!r} of {size} slots"))
        names = set(kinds) | {EXECUTORS[k].class_name for k in kinds}
        if t.executor is not None and t.executor not in names:
            problems.append((f"{where}.executor", f"{t.executor!r} is not one of the scenario's executors "
                             f"({', '.join(kinds)}; list several as executor.kind: [a, b])"))
    dag = DAG(d.dag_id, build_schedule(d.schedule, d.catchup_runs), max_active_runs=d.max_active_runs,
              max_active_tasks=d.max_active_tasks, parse_time=d.parse_time, tasks=tasks)
    try:
        dag.set_dependencies(d.dependencies)
    except DagError as e:
        problems.append((f"dags[{i}].dependencies", str(e)))
    return dag


# -- --set overrides ---------------------------------------------------------------------------
def _unshare(x):
    """A copy without shared sub-objects: YAML anchors alias one dict, and a --set on one DAG
    must not change every DAG that uses the anchor."""
    if isinstance(x, dict):
        return {k: _unshare(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unshare(v) for v in x]
    return x


def _parse_value(text: str):
    try:
        return read_yaml(text, None)
    except ScenarioError:
        return text        # e.g. "a: b: c" -- keep it as the string the user typed


def apply_set(data: dict, assignment: str, file: str | None = None) -> None:
    """Apply one ``dotted.key=value`` override in place. Items of ``dags`` are addressed by index
    or dag_id; keys containing dots (dag ids, task ids) are matched greedily. A key that does
    not exist yet may be created only where the schema has that field."""
    key, sep, text = assignment.partition("=")
    key = alias_of_set_key(key, file).strip()
    where = f"--set {key}" if key else "--set"

    def fail(msg: str):
        raise ScenarioError(file, [(where, msg)])

    if not sep or not key:
        fail(f"expected dotted.key=value (got {assignment!r})")
    parts, value = key.split("."), _parse_value(text)
    if "" in parts:
        fail("empty key between dots")
    node, loc, i = data, [], 0
    while True:
        if isinstance(node, list):
            name = parts[i]
            if re.fullmatch(r"-?[0-9]+", name):          # not str.isdigit(): '²' is a digit to it
                idx, j = int(name), i + 1
                if not 0 <= idx < len(node):
                    fail(f"{'.'.join(parts[:i]) or 'list'} has no item {idx} (it has {len(node)})")
            elif loc == ["dags"]:
                ids = [d.get("dag_id") if isinstance(d, dict) else None for d in node]
                j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in ids), None)
                if j is None:
                    close = difflib.get_close_matches(name, [str(x) for x in ids], n=1)
                    fail(f"no DAG with dag_id {name!r} (dags: {', '.join(map(str, ids))})"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
                idx = ids.index(".".join(parts[i:j]))
            else:
                fail(f"{'.'.join(parts[:i])} is a list: address its items by index")
            step = idx
        elif isinstance(node, dict):
            j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in node), i + 1)
            step = ".".join(parts[i:j])
            if step not in node:
                allowed = allowed_keys(ScenarioFile, loc)
                if allowed is not None and step not in allowed:
                    fail(unknown_key(step, allowed))
        else:
            fail(f"{'.'.join(parts[:i])} is {node!r}, not a mapping or a list")
        if j == len(parts):
            node[step] = value
            return
        if isinstance(node, dict) and not isinstance(node.get(step), (dict, list)):
            if step in node and node[step] is not None:
                fail(f"{'.'.join(parts[:j])} is {node[step]!r}, not a mapping or a list")
            if typing.get_origin(type_at(ScenarioFile, [*loc, step])) is list:
                fail(f"{'.'.join(parts[:j])} does not exist")
            node[step] = {}       # e.g. `airflow.parallelism=8` in a file without `airflow:`
        node, loc, i = node[step], [*loc, step], j
