"""Real Airflow DAG files with durations: the DAGs Airflow's DagBag reads (``airflow_dags.py``)
with each task's durations from an export of the ``task_instance`` table (``airflow_export.py``)
or a default. Needs the optional ``[airflow]`` extra."""
from __future__ import annotations

from ..errors import ScenarioError, SimError
from ..model.dag import DAG
from ..model.durations import Constant, as_distribution
from .airflow_dags import _is_empty, _structure, airflow_dags
from .airflow_export import dag_from_export


def load_airflow_dags(path, *, task_instances=None, default_duration=None, dag_ids=None,
                      schedule=None) -> list[DAG]:
    """The DAGs of an Airflow DAG file or folder, read by Airflow's DagBag.

    Durations: ``task_instances`` (an export of the ``task_instance`` table, a path or the
    DataFrame of :func:`~sim.importers.read_task_instances`) gives each task an ``Empirical`` of
    its successful tries; otherwise every task takes ``default_duration`` (a number of seconds or
    a distribution); an ``EmptyOperator`` takes 0 s either way. ``dag_ids`` keeps only those
    DAGs; ``schedule`` replaces every DAG's own (default: the DAG's cron or interval, or one run at
    time 0 for ``schedule=None`` and ``@once``).
    """
    if task_instances is None and default_duration is None:
        raise SimError("give the durations: task_instances (an export of Airflow's task_instance "
                       "table) or default_duration")
    file = str(path)
    found = airflow_dags(path)
    if dag_ids is not None:
        missing = [d for d in dag_ids if d not in found]
        if missing:
            raise ScenarioError(file, f"no DAG {', '.join(map(repr, missing))} (DAGs: {', '.join(sorted(found))})")
        found = {d: found[d] for d in dag_ids}
    out = []
    for dag_id, af in found.items():
        where = getattr(af, "fileloc", None) or file
        structure = _structure(af, where, schedule)
        empty = {op.task_id for op in af.tasks if _is_empty(op)}
        if task_instances is not None:
            dag = dag_from_export(task_instances, structure, dag_id=dag_id, schedule=structure.schedule)
        else:
            dist = as_distribution(default_duration)
            for t in structure.tasks.values():
                t.duration = dist
            dag = structure
        for tid in empty:
            dag.tasks[tid].duration = Constant(0.0)
        out.append(dag)
    return out
