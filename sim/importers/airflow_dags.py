"""Real Airflow DAG files, read by Airflow itself (the optional ``[airflow]`` extra).

:func:`load_airflow_dags` (``airflow_dag_files.py``) fills Airflow's ``DagBag`` from a DAG file or folder and turns each DAG
into the simulator's: tasks and dependencies; each operator's ``queue``, ``pool``, ``pool_slots``,
``priority_weight``, ``weight_rule``, ``retries``, ``retry_delay``, ``retry_exponential_backoff``,
``max_retry_delay``, ``trigger_rule``, ``executor`` (Airflow 2.10+), ``max_active_tis_per_dag``
and ``max_active_tis_per_dagrun``; the DAG's ``max_active_runs``, ``max_active_tasks`` and its
schedule (a cron expression, a fixed interval, or one run at time 0 for ``schedule=None`` and
``@once``). A DAG file says nothing about how long tasks take: durations come from an export of
the ``task_instance`` table (each task resampling its successful tries, as
:func:`~sim.importers.dag_from_export` does) or from ``default_duration``.

Operators map as follows: every operator is a task, named by its ``task_id``; an ``EmptyOperator``
takes no time (but, unlike in Airflow, still goes through the executor); a sensor is a plain task
whose duration is the whole time it took, waiting included (the DAG file does not say when its
condition will hold); a mapped operator (``.expand()``) is mapped over as many elements as it had
in each recorded run.

It needs ``apache-airflow`` (tested with 2.10.5): ``pip install 'airflow-executor-sim[airflow]'``.
Importing Airflow reads ``$AIRFLOW_HOME`` (default ``~/airflow``) and may create its config file
there, as every Airflow command does.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ScenarioError, SimError
from ..executors.registry import names
from ..model.dag import DAG, TRIGGER_RULES, WEIGHT_RULES, Task
from ..model.schedules import At, Cron, Interval

#: Executor names a task's ``executor`` may take in a scenario (kinds and Airflow's class names).
_EXECUTORS = frozenset(names())
_TRIGGER_ALIASES = {"none_failed_or_skipped": "none_failed_min_one_success", "dummy": "always"}


def _airflow():
    try:
        from airflow.models.dagbag import DagBag  # lazy: optional dependency (apache-airflow, the [airflow] extra)
    except ImportError as e:
        raise SimError("reading Airflow DAG files needs apache-airflow (the [airflow] extra: "
                       f"pip install 'airflow-executor-sim[airflow]'): {e}") from None
    return DagBag


def _import_errors(errors: dict) -> list[tuple[str, str, str]]:
    """(file, 'line N' or '', last line of the traceback) for each of DagBag's import errors."""
    out = []
    for file, trace in sorted(errors.items()):
        lines = [x for x in str(trace).strip().splitlines() if x.strip()]
        nums = re.findall(rf'File "{re.escape(str(file))}", line (\d+)', str(trace))
        out.append((str(file), f"line {nums[-1]}" if nums else "",
                    f"Airflow cannot import it: {lines[-1].strip() if lines else trace}"))
    return out


def airflow_dags(path) -> dict:
    """``{dag_id: airflow DAG}`` (sorted by dag_id) of the DAG file or folder ``path``, filled by
    Airflow's DagBag;
    an import error raises :class:`ScenarioError` naming the file and the line."""
    DagBag = _airflow()
    p = Path(path)
    if not p.exists():
        raise ScenarioError(str(path), "no such file or folder")
    bag = DagBag(dag_folder=str(p), include_examples=False, safe_mode=False, load_op_links=False)
    if bag.import_errors:
        errors = _import_errors(bag.import_errors)
        raise ScenarioError(errors[0][0], [(where, msg) for _, where, msg in errors[:1]]
                            + [("", f"{f}: {w + ': ' if w else ''}{m}") for f, w, m in errors[1:]])
    if not bag.dags:
        raise ScenarioError(str(path), "Airflow finds no DAG in it")
    return dict(sorted(bag.dags.items()))


def _seconds(v) -> float | None:
    if v is None:
        return None
    if hasattr(v, "total_seconds"):
        return float(v.total_seconds())
    return float(v)


def _weight_rule(v) -> str:
    if isinstance(v, str):
        return v
    try:
        from airflow.task.priority_strategy import airflow_priority_weight_strategies_classes  # lazy: optional dependency (apache-airflow, the [airflow] extra)
        name = airflow_priority_weight_strategies_classes.get(type(v))
    except ImportError:                                    # Airflow < 2.9: weight_rule is a str
        name = None
    return name or f"{type(v).__module__}.{type(v).__qualname__}"


def _schedule(dag, file: str):
    """The simulator's schedule of an Airflow DAG's timetable, or None (one run at 0)."""
    tt = dag.timetable
    kind = type(tt).__name__
    if kind in ("NullTimetable", "OnceTimetable"):
        return None
    if kind in ("CronDataIntervalTimetable", "CronTriggerTimetable"):
        return Cron(tt._expression)
    if kind == "DeltaDataIntervalTimetable" and hasattr(tt._delta, "total_seconds"):
        return Interval(tt._delta.total_seconds())
    raise ScenarioError(file, [(f"DAG {dag.dag_id!r}", f"its schedule ({kind}: {tt.summary}) is not "
                                                       "modelled; give the scenario's schedule instead")])


def _task_kwargs(op, file: str, problems: list) -> dict:
    where = f"DAG {op.dag_id!r} task {op.task_id!r}"
    kw = {"queue": op.queue, "pool": op.pool, "pool_slots": int(op.pool_slots),
          "priority_weight": int(op.priority_weight), "retries": int(op.retries or 0),
          "retry_exponential_backoff": bool(op.retry_exponential_backoff)}
    delay = _seconds(op.retry_delay)
    if delay is not None:
        kw["retry_delay"] = delay
    if op.max_retry_delay is not None:
        kw["max_retry_delay"] = _seconds(op.max_retry_delay)
    rule = str(getattr(op.trigger_rule, "value", op.trigger_rule))
    rule = _TRIGGER_ALIASES.get(rule, rule)
    if rule not in TRIGGER_RULES:
        problems.append((where, f"trigger rule {rule!r} is not modelled (modelled: {', '.join(TRIGGER_RULES)})"))
    kw["trigger_rule"] = rule
    weight = _weight_rule(op.weight_rule)
    if weight not in WEIGHT_RULES:
        problems.append((where, f"weight rule {weight!r} is not modelled (modelled: {', '.join(WEIGHT_RULES)})"))
    kw["weight_rule"] = weight
    executor = getattr(op, "executor", None)
    if executor:
        if executor not in _EXECUTORS:
            problems.append((where, f"executor {executor!r} is not one the simulator models "
                                    f"({', '.join(sorted(_EXECUTORS))})"))
        kw["executor"] = executor
    for key in ("max_active_tis_per_dag", "max_active_tis_per_dagrun"):
        if getattr(op, key, None) is not None:
            kw[key] = int(getattr(op, key))
    return kw


def _is_empty(op) -> bool:
    return any(c.__name__ == "EmptyOperator" for c in type(op).__mro__) or \
        getattr(op, "operator_name", None) == "EmptyOperator"


def _structure(dag, file: str, schedule) -> DAG:
    """An Airflow DAG's structure as the simulator's DAG (every duration 0 for now)."""
    problems: list = []
    tasks = []
    for op in dag.tasks:
        tasks.append(Task(op.task_id, duration=0.0, **_task_kwargs(op, file, problems)))
    if problems:
        raise ScenarioError(file, problems)
    sched = schedule if schedule is not None else (_schedule(dag, file) or At((0.0,)))
    # Airflow fills an unset limit from its own config; leave those to the scenario's settings.
    from airflow.configuration import conf  # lazy: optional dependency (apache-airflow, the [airflow] extra)
    runs, active = dag.max_active_runs, dag.max_active_tasks
    out = DAG(dag.dag_id, sched,
              max_active_runs=None if runs == conf.getint("core", "max_active_runs_per_dag") else runs,
              max_active_tasks=None if active == conf.getint("core", "max_active_tasks_per_dag") else active,
              tasks=tasks)
    for op in dag.tasks:
        for d in sorted(op.downstream_task_ids):
            out.tasks[op.task_id].set_downstream(out.tasks[d])
    out.topological_order()
    return out


def structures(path) -> list[DAG]:
    """The DAGs of a DAG file or folder with every duration 0: a structure for
    :func:`~sim.importers.dag_from_export` (``structure: my_dags.py`` in ``airflow_export``)."""
    return [_structure(af, getattr(af, "fileloc", None) or str(path), None)
            for af in airflow_dags(path).values()]
