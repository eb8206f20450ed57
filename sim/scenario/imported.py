"""DAG entries of a scenario file that import their tasks instead of listing them:
``wfcommons: PATH`` (a WfCommons WfFormat trace) and
``airflow_export: {task_instances: PATH, structure: PATH}`` (Airflow's own history).

Paths are relative to the scenario file. A problem inside the referenced file is reported under
the entry's key (``dags[0].wfcommons``) with that file's name and the place in it.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from ..airflow.config import AirflowConfig
from ..errors import ScenarioError, SimError
from ..executors.registry import EXECUTORS
from ..importers import dag_from_export, load_wfcommons
from ..model.dag import DAG, DEFAULT_POOL


def import_dag(d, i: int, kinds: list, airflow: AirflowConfig, problems: list, schedule, base_dir=None) -> DAG:
    """The DAG of entry ``dags[i]`` (a validated ``DagSpec`` without ``tasks``); problems are
    appended to ``problems`` as ``(field path, message)``; ``schedule`` is the entry's, built."""
    base = Path(base_dir) if base_dir is not None else Path()

    def resolve(p: str) -> str:
        return os.path.normpath(base / p)

    if d.wfcommons is not None:
        key, files = f"dags[{i}].wfcommons", {}
    else:
        spec = d.airflow_export
        key = f"dags[{i}].airflow_export"
        ti_path, structure_path = resolve(spec.task_instances), resolve(spec.structure)
        files = {ti_path: f"{key}.task_instances", structure_path: f"{key}.structure"}
    try:
        if d.wfcommons is not None:
            dag = load_wfcommons(resolve(d.wfcommons), dag_id=d.dag_id, schedule=schedule)
        else:
            for path, where in files.items():
                if not Path(path).is_file():
                    raise ScenarioError(path, "no such file" if not Path(path).exists() else "not a file")
            dag = dag_from_export(ti_path, structure_path, dag_id=spec.dag_id or d.dag_id, schedule=schedule)
            dag.dag_id = d.dag_id
    except ScenarioError as e:
        where = files.get(os.path.normpath(e.file) if e.file else "", key)
        for path, msg in e.problems:
            problems.append((where, ": ".join(x for x in (e.file, path, msg) if x)))
        return DAG(d.dag_id, schedule)
    except SimError as e:               # e.g. a DAG file as structure without apache-airflow
        problems.append((key, str(e)))
        return DAG(d.dag_id, schedule)
    for attr in ("max_active_runs", "max_active_tasks", "parse_time"):
        if getattr(d, attr) is not None:
            setattr(dag, attr, getattr(d, attr))

    names = set(kinds) | {EXECUTORS[k].class_name for k in kinds}
    for t in dag.tasks.values():
        size = airflow.default_pool_task_slot_count if t.pool == DEFAULT_POOL else airflow.pools.get(t.pool)
        if size is None:
            known = [DEFAULT_POOL, *airflow.pools]
            close = difflib.get_close_matches(t.pool, known, n=1)
            problems.append((key, f"task {t.task_id!r}: unknown pool {t.pool!r} (pools: {', '.join(known)}; "
                                  "add it under airflow.pools)" + (f"; did you mean {close[0]!r}?" if close else "")))
        elif t.pool_slots > size:
            problems.append((key, f"task {t.task_id!r}: {t.pool_slots} slots can never be free in pool "
                                  f"{t.pool!r} of {size} slots"))
        if t.executor is not None and t.executor not in names:
            problems.append((key, f"task {t.task_id!r}: executor {t.executor!r} is not one of the "
                                  f"scenario's executors ({', '.join(kinds)})"))
    return dag
